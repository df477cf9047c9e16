#ifndef RATELIMIT_SERVER_METRICS_H_
#define RATELIMIT_SERVER_METRICS_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "lib/circuit_breaker.h"
#include "lib/limit.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ratelimit {

class MemoryStore;

// The service's Prometheus metrics. Families are registered once, and the label children the
// hot path uses are looked up once and kept. Thread-safe.
class Metrics {
 public:
  explicit Metrics(int64_t max_key_prefixes);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One answered Check: the decision, where it came from and how long it took.
  void RecordCheck(absl::string_view key, const Decision& decision, std::chrono::nanoseconds took);
  // One Redis call the limiter made, and its outcome.
  void RecordRedisCall(const absl::Status& status, std::chrono::nanoseconds took);
  void RecordBreakerTransition(BreakerState to);
  void RecordBreakerFailure();

  // Adds gauges read at scrape time: the memory store's size and bound, and the process's.
  // Call once, before the admin server starts.
  void AddScrapeTimeCollectors(const MemoryStore& store);

  // What the admin server serves at /metrics.
  std::vector<std::weak_ptr<prometheus::Collectable>> Collectables() const;

  // The label the rejected counter uses for `key`: its text before the first ':'.
  static absl::string_view KeyPrefix(absl::string_view key);

 private:
  prometheus::Counter& RejectedCounter(absl::string_view key);

  std::shared_ptr<prometheus::Registry> registry_;
  const int64_t max_key_prefixes_;

  prometheus::Counter* requests_[2][2];  // [allowed][source is redis]
  prometheus::Family<prometheus::Counter>* rejected_family_;
  prometheus::Counter* rejected_other_;
  prometheus::Gauge* breaker_state_;
  prometheus::Counter* breaker_failures_;
  prometheus::Counter* breaker_transitions_[3];  // by BreakerState
  prometheus::Histogram* check_duration_[2];     // [source is redis]
  prometheus::Histogram* redis_duration_;
  prometheus::Counter* redis_timeouts_;
  prometheus::Counter* redis_connection_errors_;
  prometheus::Counter* redis_reply_errors_;

  std::shared_ptr<prometheus::Collectable> store_collector_;
  std::shared_ptr<prometheus::Collectable> process_collector_;

  absl::Mutex prefixes_mu_;
  absl::flat_hash_map<std::string, prometheus::Counter*> prefixes_ ABSL_GUARDED_BY(prefixes_mu_);
};

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_METRICS_H_
