#include "server/config.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "lib/flag_parser.h"

ABSL_FLAG(std::string, grpc_address, "127.0.0.1:50051", "Address the gRPC service listens on.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for the gRPC port; with --tls-key, the port speaks TLS only.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates; when set, gRPC clients must present a certificate they signed.");
ABSL_FLAG(std::string, admin_address, "127.0.0.1:9464",
          "Address of the admin HTTP endpoint (GET /metrics, GET /health). Empty: none.");
ABSL_FLAG(std::string, admin_basic_auth, "",
          "user:password that the admin endpoint requires. Empty: no authentication.");
ABSL_FLAG(int64_t, metrics_max_key_prefixes, 100,
          "Most distinct key_prefix label values; later prefixes count as \"other\".");
ABSL_FLAG(std::string, redis, "",
          "Redis URL, redis://[[user]:password@]host[:port][/db]. Empty: memory mode, no Redis.");
ABSL_FLAG(std::string, redis_prefix, "ratelimit:", "Prefix of every Redis key the service writes.");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Milliseconds(100),
          "Longest wait for a Redis reply before the check is answered from memory.");
ABSL_FLAG(int32_t, breaker_failure_threshold, 5,
          "Consecutive Redis failures that open the circuit breaker.");
ABSL_FLAG(absl::Duration, breaker_open_duration, absl::Seconds(10),
          "How long the breaker stays open before probing Redis again.");
ABSL_FLAG(int32_t, breaker_half_open_probes, 1,
          "Checks let through to Redis at once while the breaker is half-open.");
ABSL_FLAG(int64_t, memory_store_max_size, 10000,
          "Most allowances the in-memory store holds; the least recently used gives way.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM or SIGINT, how long calls in flight may take to finish.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error or off.");

namespace ratelimit {
namespace {

// The flags this file defines, by name, in the order --help lists them.
const FlagSet& ServerFlags() {
  static const auto* set = new FlagSet{{
                                           "grpc_address",
                                           "tls_cert",
                                           "tls_key",
                                           "tls_client_ca",
                                           "admin_address",
                                           "admin_basic_auth",
                                           "metrics_max_key_prefixes",
                                           "redis",
                                           "redis_prefix",
                                           "redis_timeout",
                                           "breaker_failure_threshold",
                                           "breaker_open_duration",
                                           "breaker_half_open_probes",
                                           "memory_store_max_size",
                                           "shutdown_grace",
                                           "log_level",
                                       },
                                       "RATELIMIT_"};
  return *set;
}

// "host:port", "[v6 address]:port": a host, and a port number gRPC and CivetWeb will take as it
// is (0 picks a free port). The host itself is left to the resolver.
bool IsHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  const bool bracketed = absl::StartsWith(host, "[") && absl::EndsWith(host, "]");
  if (!bracketed && (absl::StrContains(host, ':') || absl::StrContains(host, '[') ||
                     absl::StrContains(host, ']'))) {
    return false;  // An IPv6 address goes in brackets: "[::1]:50051".
  }
  int number = 0;
  return port.size() <= 5 && absl::c_all_of(port, absl::ascii_isdigit) &&
         absl::SimpleAtoi(port, &number) && number <= 65535;
}

absl::StatusOr<std::optional<TlsConfig>> ValidateTls() {
  TlsConfig tls;
  tls.cert_path = absl::GetFlag(FLAGS_tls_cert);
  tls.key_path = absl::GetFlag(FLAGS_tls_key);
  tls.client_ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  if (tls.cert_path.empty() && tls.key_path.empty()) {
    if (!tls.client_ca_path.empty()) {
      return FlagError("tls_client_ca", "needs --tls-cert and --tls-key");
    }
    return std::nullopt;
  }
  if (tls.key_path.empty()) return FlagError("tls_key", "must be set together with --tls-cert");
  if (tls.cert_path.empty()) return FlagError("tls_cert", "must be set together with --tls-key");

  absl::StatusOr<std::string> cert = ReadPemFlagFile("tls_cert", tls.cert_path);
  if (!cert.ok()) return cert.status();
  tls.cert_pem = *std::move(cert);
  absl::StatusOr<std::string> key = ReadPemFlagFile("tls_key", tls.key_path);
  if (!key.ok()) return key.status();
  tls.key_pem = *std::move(key);
  if (!tls.client_ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFlagFile("tls_client_ca", tls.client_ca_path);
    if (!ca.ok()) return ca.status();
    tls.client_ca_pem = *std::move(ca);
  }
  return tls;
}

absl::StatusOr<ServerConfig> Validate() {
  ServerConfig config;
  config.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  if (!IsHostPort(config.grpc_address)) {
    return FlagError("grpc_address", "must be host:port, with a port from 0 to 65535");
  }
  absl::StatusOr<std::optional<TlsConfig>> tls = ValidateTls();
  if (!tls.ok()) return tls.status();
  config.tls = *std::move(tls);

  config.admin_address = absl::GetFlag(FLAGS_admin_address);
  if (!config.admin_address.empty() && !IsHostPort(config.admin_address)) {
    return FlagError("admin_address",
                     "must be host:port, with a port from 0 to 65535, or empty for none");
  }
  config.admin_basic_auth = absl::GetFlag(FLAGS_admin_basic_auth);
  if (!config.admin_basic_auth.empty()) {
    const size_t colon = config.admin_basic_auth.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == config.admin_basic_auth.size()) {
      return FlagError("admin_basic_auth", "must be user:password");
    }
  }
  config.metrics_max_key_prefixes = absl::GetFlag(FLAGS_metrics_max_key_prefixes);
  if (config.metrics_max_key_prefixes < 0 || config.metrics_max_key_prefixes > 100'000) {
    return FlagError("metrics_max_key_prefixes", "must be from 0 to 100000");
  }

  const std::string redis = absl::GetFlag(FLAGS_redis);
  if (!redis.empty()) {
    absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(redis);
    if (!endpoint.ok()) return FlagError("redis", endpoint.status().message());
    config.redis = *endpoint;
  }
  config.redis_prefix = absl::GetFlag(FLAGS_redis_prefix);

  config.redis_timeout = absl::GetFlag(FLAGS_redis_timeout);
  if (config.redis_timeout <= absl::ZeroDuration() || config.redis_timeout > absl::Minutes(1)) {
    return FlagError("redis_timeout", "must be more than 0 and at most 1m");
  }

  config.breaker.failure_threshold = absl::GetFlag(FLAGS_breaker_failure_threshold);
  if (config.breaker.failure_threshold < 1) {
    return FlagError("breaker_failure_threshold", "must be at least 1");
  }
  config.breaker.open_duration = absl::GetFlag(FLAGS_breaker_open_duration);
  if (config.breaker.open_duration <= absl::ZeroDuration() ||
      config.breaker.open_duration > absl::Hours(1)) {
    return FlagError("breaker_open_duration", "must be more than 0 and at most 1h");
  }
  config.breaker.half_open_probes = absl::GetFlag(FLAGS_breaker_half_open_probes);
  if (config.breaker.half_open_probes < 1) {
    return FlagError("breaker_half_open_probes", "must be at least 1");
  }

  config.memory_store_max_size = absl::GetFlag(FLAGS_memory_store_max_size);
  if (config.memory_store_max_size < 1 || config.memory_store_max_size > 100'000'000) {
    return FlagError("memory_store_max_size", "must be from 1 to 100000000");
  }

  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (config.shutdown_grace < absl::ZeroDuration() || config.shutdown_grace > absl::Minutes(10)) {
    return FlagError("shutdown_grace", "must be from 0 to 10m");
  }

  config.log_level = absl::GetFlag(FLAGS_log_level);
  static const auto* levels =
      new std::vector<std::string>{"trace", "debug", "info", "warn", "error", "off"};
  if (std::find(levels->begin(), levels->end(), config.log_level) == levels->end()) {
    return FlagError("log_level", "must be one of trace, debug, info, warn, error, off");
  }
  return config;
}

}  // namespace

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "-help" || arg == "--helpfull") return true;
    if (arg == "--") break;
  }
  return false;
}

absl::StatusOr<ServerConfig> LoadServerConfig(
    const std::vector<std::string>& args, const std::function<const char*(const char*)>& getenv) {
  if (absl::Status s = ParseFlags(ServerFlags(), args, getenv); !s.ok()) return s;
  return Validate();
}

std::string ServerUsage() {
  return absl::StrCat(
      "ratelimit-server: answers whether a key may spend part of its allowance now.\n\n"
      "Usage: ratelimit-server [--flag=value ...]\n"
      "Every flag can also be set through its environment variable; the command line wins.\n\n",
      FlagUsage(ServerFlags()));
}

std::string DescribeConfig(const ServerConfig& config) {
  const absl::string_view tls = !config.tls                          ? "off"
                                : config.tls->client_ca_path.empty() ? "on"
                                                                     : "on, client certificates";
  return absl::StrCat("grpc_address=", config.grpc_address, " tls=", tls, " admin_address=",
                      config.admin_address.empty() ? "none" : config.admin_address,
                      " admin_basic_auth=", config.admin_basic_auth.empty() ? "off" : "on",
                      " metrics_max_key_prefixes=", config.metrics_max_key_prefixes,
                      " redis=", config.redis ? RedactedUrl(*config.redis) : "none (memory mode)",
                      " redis_prefix=", config.redis_prefix,
                      " redis_timeout=", absl::FormatDuration(config.redis_timeout),
                      " breaker_failure_threshold=", config.breaker.failure_threshold,
                      " breaker_open_duration=", absl::FormatDuration(config.breaker.open_duration),
                      " breaker_half_open_probes=", config.breaker.half_open_probes,
                      " memory_store_max_size=", config.memory_store_max_size,
                      " shutdown_grace=", absl::FormatDuration(config.shutdown_grace),
                      " log_level=", config.log_level);
}

}  // namespace ratelimit
