#ifndef RATELIMIT_SERVER_CONFIG_H_
#define RATELIMIT_SERVER_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/circuit_breaker.h"
#include "lib/redis_url.h"

namespace ratelimit {

// TLS for the gRPC port: the files' paths (for the log) and their PEM text, read at start-up.
struct TlsConfig {
  std::string cert_path;
  std::string key_path;
  // Empty: clients are not asked for a certificate.
  std::string client_ca_path;
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;
};

// The server's effective configuration, validated.
struct ServerConfig {
  std::string grpc_address;
  // Absent: the gRPC port is plaintext.
  std::optional<TlsConfig> tls;
  // Empty: no admin endpoint.
  std::string admin_address;
  // "user:password"; empty: the admin endpoint needs no authentication.
  std::string admin_basic_auth;
  int64_t metrics_max_key_prefixes = 100;
  // Absent: memory mode.
  std::optional<RedisEndpoint> redis;
  std::string redis_prefix;
  absl::Duration redis_timeout;
  CircuitBreaker::Options breaker;
  int64_t memory_store_max_size = 0;
  absl::Duration shutdown_grace;
  std::string log_level;
};

// Reads the flags: each from its RATELIMIT_* environment variable first (RATELIMIT_REDIS for
// --redis, and so on), then from `args` (without the program name), which wins. `--name=value`
// and `--name value` both work, with dashes or underscores in the name. An unknown flag or an
// invalid value is InvalidArgument naming the flag.
absl::StatusOr<ServerConfig> LoadServerConfig(
    const std::vector<std::string>& args, const std::function<const char*(const char*)>& getenv);

// True when `args` asks for --help.
bool WantsHelp(const std::vector<std::string>& args);

// The --help text: every flag, its default, its environment variable and what it does.
std::string ServerUsage();

// One line for the start-up log, with the Redis password hidden.
std::string DescribeConfig(const ServerConfig& config);

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_CONFIG_H_
