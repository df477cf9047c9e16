// ratelimit-cli: check, peek, reset and health from a shell, and a load generator.
// Exit codes: 0 allowed (or healthy), 1 denied (or not serving), 2 any error.

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/bench.h"
#include "grpcpp/security/credentials.h"
#include "lib/flag_parser.h"
#include "nlohmann/json.hpp"
#include "ratelimit/client.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "The service's gRPC address.");
ABSL_FLAG(bool, tls, false,
          "Speak TLS, verifying the server against the system's CA certificates or --tls-ca.");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA certificates to verify the server with; implies --tls.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain, for a server that asks for one; needs --tls-key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, key, "", "The allowance's key (bench: the prefix of generated keys).");
ABSL_FLAG(int64_t, limit, 0, "Units per window.");
ABSL_FLAG(absl::Duration, window, absl::Seconds(60), "The window, e.g. 1s, 1m, 1h.");
ABSL_FLAG(int64_t, cost, 1, "Units this check spends.");
ABSL_FLAG(std::string, algorithm, "fixed_window", "fixed_window, sliding_window or token_bucket.");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(2), "How long each call may take.");
ABSL_FLAG(std::string, fail_mode, "open",
          "When the service cannot answer a check: open (allow) or closed (deny).");
ABSL_FLAG(int32_t, concurrency, 64, "bench: calls in flight.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "bench: how long to run.");
ABSL_FLAG(int64_t, requests, 0, "bench: stop after this many calls (0: no count limit).");
ABSL_FLAG(int64_t, keys, 10000, "bench: distinct keys to spread the calls over.");
ABSL_FLAG(std::string, distribution, "uniform", "bench: uniform or zipf.");
ABSL_FLAG(double, zipf_exponent, 1.0, "bench: the Zipf exponent s.");
ABSL_FLAG(bool, progress, true, "bench: a live progress line on stderr while it runs.");

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;

constexpr int kExitAllowed = 0;
constexpr int kExitDenied = 1;
constexpr int kExitError = 2;

const FlagSet& CliFlags() {
  static const auto* set =
      new FlagSet{{"target",   "tls",      "tls_ca",       "tls_cert",      "tls_key",
                   "key",      "limit",    "window",       "cost",          "algorithm",
                   "json",     "deadline", "fail_mode",    "concurrency",   "duration",
                   "requests", "keys",     "distribution", "zipf_exponent", "progress"},
                  "RATELIMIT_CLI_"};
  return *set;
}

std::string Usage() {
  return absl::StrCat(
      "ratelimit-cli: talk to a ratelimit-server.\n\n"
      "Usage: ratelimit-cli COMMAND [--flag=value ...]\n\n"
      "Commands:\n"
      "  check    spend --cost from the allowance (--key, --limit, --window, --algorithm)\n"
      "  peek     what check would answer, spending nothing\n"
      "  reset    clear the allowance (--key, --window, --algorithm)\n"
      "  health   the service's health; exit 0 while it serves\n"
      "  bench    a closed-loop load generator (--concurrency, --duration, --requests, --keys,\n"
      "           --distribution)\n\n"
      "Exit codes: 0 allowed or healthy, 1 denied or not serving, 2 any error.\n"
      "Flags (each also from RATELIMIT_CLI_<NAME>):\n",
      FlagUsage(CliFlags()));
}

int Fail(const std::string& message) {
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json{{"error", message}}.dump() << "\n";
  } else {
    std::cerr << "ratelimit-cli: " << message << "\n";
  }
  return kExitError;
}

absl::StatusOr<pb::Algorithm> ParseAlgorithm(const std::string& name) {
  if (name == "fixed_window") return pb::ALGORITHM_FIXED_WINDOW;
  if (name == "sliding_window") return pb::ALGORITHM_SLIDING_WINDOW;
  if (name == "token_bucket") return pb::ALGORITHM_TOKEN_BUCKET;
  return absl::InvalidArgumentError(
      "--algorithm: must be fixed_window, sliding_window or token_bucket");
}

// Plaintext unless a TLS flag is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials() {
  const std::string ca_path = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert_path = absl::GetFlag(FLAGS_tls_cert);
  const std::string key_path = absl::GetFlag(FLAGS_tls_key);
  if (!absl::GetFlag(FLAGS_tls) && ca_path.empty() && cert_path.empty() && key_path.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (cert_path.empty() != key_path.empty()) {
    return FlagError(cert_path.empty() ? "tls_cert" : "tls_key",
                     "--tls-cert and --tls-key go together");
  }
  grpc::SslCredentialsOptions ssl;
  for (auto [name, path, pem] : {std::tuple{"tls_ca", &ca_path, &ssl.pem_root_certs},
                                 std::tuple{"tls_cert", &cert_path, &ssl.pem_cert_chain},
                                 std::tuple{"tls_key", &key_path, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> text = ReadPemFlagFile(name, *path);
    if (!text.ok()) return text.status();
    *pem = *std::move(text);
  }
  return grpc::SslCredentials(ssl);
}

// Rounded to microseconds: nanoseconds are noise at a shell.
std::string Format(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Microseconds(1)));
}

std::string SourceName(const CheckResult& r) {
  if (r.decided_locally) return "local";
  return r.source == pb::SOURCE_REDIS ? "redis" : "memory";
}

int PrintCheck(const absl::StatusOr<CheckResult>& result) {
  if (!result.ok()) return Fail(result.status().ToString());
  const CheckResult& r = *result;
  if (r.decided_locally) {
    // The service did not answer: that is an error for a person at a shell, whatever the fail
    // mode would have decided.
    return Fail(absl::StrCat("no answer from the service (fail mode would ",
                             r.allowed ? "allow" : "deny", "): ", r.service_status.ToString()));
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json{{"allowed", r.allowed},
                                {"limit", r.limit},
                                {"remaining", r.remaining},
                                {"reset_after_ms", absl::ToInt64Milliseconds(r.reset_after)},
                                {"retry_after_ms", absl::ToInt64Milliseconds(r.retry_after)},
                                {"source", SourceName(r)}}
                     .dump()
              << "\n";
  } else {
    std::cout << (r.allowed ? "allowed" : "denied") << "  remaining " << r.remaining << "/"
              << r.limit << "  reset after " << Format(r.reset_after);
    if (!r.allowed) std::cout << "  retry after " << Format(r.retry_after);
    std::cout << "  (" << SourceName(r) << ")\n";
  }
  return r.allowed ? kExitAllowed : kExitDenied;
}

int PrintHealth(const absl::StatusOr<pb::HealthSummary>& health) {
  if (!health.ok()) return Fail(health.status().ToString());
  std::string breaker = pb::BreakerState_Name(health->breaker_state());
  breaker =
      breaker.substr(breaker.rfind('_') == std::string::npos ? 0 : sizeof("BREAKER_STATE_") - 1);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json{{"serving", health->serving()},
                                {"backend", health->backend()},
                                {"redis_connected", health->redis_connected()},
                                {"breaker_state", breaker},
                                {"memory_store",
                                 {{"size", health->memory_store().size()},
                                  {"max_size", health->memory_store().max_size()}}}}
                     .dump()
              << "\n";
  } else {
    std::cout << (health->serving() ? "serving" : "NOT serving") << "  backend "
              << health->backend() << "  redis " << (health->redis_connected() ? "up" : "down")
              << "  breaker " << breaker << "  memory store " << health->memory_store().size()
              << "/" << health->memory_store().max_size() << "\n";
  }
  return health->serving() ? kExitAllowed : kExitDenied;
}

int Run(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  // Start-up, before any other thread exists.
  const auto getenv = [](const char* n) {
    return std::getenv(n);  // NOLINT(concurrency-mt-unsafe)
  };
  if (absl::Status s = ParseFlags(CliFlags(), args, getenv, &positional); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (positional.size() != 1)
    return Fail("expected one command: check, peek, reset, health or bench");
  const std::string& command = positional[0];

  ClientOptions options;
  options.deadline = absl::GetFlag(FLAGS_deadline);
  if (options.deadline <= absl::ZeroDuration()) return Fail("--deadline: must be positive");
  const std::string fail_mode = absl::GetFlag(FLAGS_fail_mode);
  if (fail_mode != "open" && fail_mode != "closed")
    return Fail("--fail-mode: must be open or closed");
  options.fail_mode = fail_mode == "open" ? FailMode::kOpen : FailMode::kClosed;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials();
  if (!credentials.ok()) return Fail(std::string(credentials.status().message()));
  options.credentials = *std::move(credentials);
  Client client(absl::GetFlag(FLAGS_target), options);

  if (command == "health") return PrintHealth(client.Health());

  absl::StatusOr<pb::Algorithm> algorithm = ParseAlgorithm(absl::GetFlag(FLAGS_algorithm));
  if (!algorithm.ok()) return Fail(std::string(algorithm.status().message()));
  CheckParams params{absl::GetFlag(FLAGS_key), absl::GetFlag(FLAGS_limit),
                     absl::GetFlag(FLAGS_window), absl::GetFlag(FLAGS_cost), *algorithm};

  if (command == "check") return PrintCheck(client.Check(params));
  if (command == "peek") return PrintCheck(client.Peek(params));
  if (command == "reset") {
    absl::Status status = client.Reset(params.key, params.window, params.algorithm);
    if (!status.ok()) return Fail(status.ToString());
    if (absl::GetFlag(FLAGS_json))
      std::cout << nlohmann::json{{"reset", true}}.dump() << "\n";
    else
      std::cout << "reset\n";
    return kExitAllowed;
  }
  if (command == "bench") {
    BenchOptions bench;
    bench.concurrency = absl::GetFlag(FLAGS_concurrency);
    bench.duration = absl::GetFlag(FLAGS_duration);
    bench.requests = absl::GetFlag(FLAGS_requests);
    bench.keys = absl::GetFlag(FLAGS_keys);
    bench.distribution = absl::GetFlag(FLAGS_distribution);
    bench.zipf_exponent = absl::GetFlag(FLAGS_zipf_exponent);
    bench.progress = absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO);
    bench.check = params;
    if (bench.check.key.empty()) bench.check.key = "bench:";
    if (bench.check.limit <= 0) bench.check.limit = 1'000'000;
    if (bench.concurrency < 1 || bench.concurrency > 100'000) {
      return Fail("--concurrency: must be from 1 to 100000");
    }
    if (bench.duration <= absl::ZeroDuration() || bench.duration > absl::Hours(24)) {
      return Fail("--duration: must be more than 0 and at most 24h");
    }
    if (bench.requests < 0) return Fail("--requests: must not be negative");
    if (bench.keys < 1 || bench.keys > 10'000'000)
      return Fail("--keys: must be from 1 to 10000000");
    if (bench.distribution != "uniform" && bench.distribution != "zipf") {
      return Fail("--distribution: must be uniform or zipf");
    }
    if (!(bench.zipf_exponent > 0) || bench.zipf_exponent > 10) {
      return Fail("--zipf-exponent: must be more than 0 and at most 10");
    }
    // Connect first, so that the first calls do not measure the connection.
    client.WaitForConnected(options.deadline);
    BenchReport report = RunBench(client, bench);
    std::cout << (absl::GetFlag(FLAGS_json) ? ReportJson(report) + "\n" : FormatReport(report));
    return report.errors == 0 ? kExitAllowed : kExitError;
  }
  return Fail("unknown command '" + command + "': expected check, peek, reset, health or bench");
}

}  // namespace
}  // namespace ratelimit

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "help") {
      std::cout << ratelimit::Usage();
      return 0;
    }
  }
  return ratelimit::Run(args);
}
