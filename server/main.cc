// ratelimit-server: the gRPC rate-limit service. See README.md for flags and examples.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "google/protobuf/stubs/logging.h"
#include "lib/logging.h"
#include "server/config.h"
#include "server/server.h"

namespace {

void ConfigureLogging(const std::string& level) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
  // libprotobuf writes a line to stderr for every request it cannot parse (a key that is not
  // UTF-8, say), whatever the log level, and any caller can send those. Such requests are
  // refused by gRPC either way; their lines go to the debug level.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel severity, const char* /*file*/,
                                     int /*line*/, const std::string& message) {
    if (severity >= google::protobuf::LOGLEVEL_FATAL) {
      spdlog::critical("protobuf: {}", message);
    } else {
      spdlog::debug("protobuf: {}", message);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (ratelimit::WantsHelp(args)) {
    std::cout << ratelimit::ServerUsage();
    return 0;
  }
  absl::StatusOr<ratelimit::ServerConfig> config =
      // Start-up, before any other thread exists.
      ratelimit::LoadServerConfig(args, [](const char* name) {
        return std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
      });
  if (!config.ok()) {
    std::cerr << "ratelimit-server: " << config.status().message() << "\n";
    return 2;
  }
  ConfigureLogging(config->log_level);
  // Debian's Abseil checks every lock for potential deadlocks, which costs a graph update per
  // acquisition on the hot path; the tests keep the check, production does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread; this one waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  spdlog::info("starting: {}", ratelimit::DescribeConfig(*config));
  ratelimit::RateLimitServer server(*config);
  if (absl::Status status = server.Start(); !status.ok()) {
    spdlog::error("{}", status.message());
    return 1;
  }

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  server.Shutdown(config->shutdown_grace);
  return 0;
}
