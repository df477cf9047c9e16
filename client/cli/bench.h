#ifndef RATELIMIT_CLIENT_CLI_BENCH_H_
#define RATELIMIT_CLIENT_CLI_BENCH_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "ratelimit/client.h"

namespace ratelimit {

struct BenchOptions {
  int concurrency = 64;
  // The run ends at whichever comes first; zero requests means no count limit.
  absl::Duration duration = absl::Seconds(10);
  int64_t requests = 0;
  int64_t keys = 10000;
  // "uniform" or "zipf".
  std::string distribution = "uniform";
  double zipf_exponent = 1.0;
  CheckParams check;  // key is the prefix of generated keys
  bool progress = true;
};

struct BenchReport {
  int64_t calls = 0;
  int64_t allowed = 0;
  int64_t denied = 0;
  int64_t errors = 0;
  int64_t from_redis = 0;
  int64_t from_memory = 0;
  int64_t decided_locally = 0;
  absl::Duration elapsed;
  double throughput = 0;  // calls per second
  absl::Duration p50, p90, p99, p999, max;
  std::string first_error;
};

// A closed loop: `concurrency` checks in flight at all times, each answered one replaced by a
// new one, until the duration or the request count runs out. Progress goes to stderr.
BenchReport RunBench(Client& client, const BenchOptions& options);

std::string FormatReport(const BenchReport& report);
std::string ReportJson(const BenchReport& report);

}  // namespace ratelimit

#endif  // RATELIMIT_CLIENT_CLI_BENCH_H_
