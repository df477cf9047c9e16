#include "server/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lib/memory_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace ratelimit {
namespace {

namespace prom = ::prometheus;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// Fit for answers from memory (tens of microseconds) up to a Redis timeout.
const prom::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prom::Histogram::BucketBoundaries{
      0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,    0.01,    0.025,  0.05,    0.1,    0.25,  1.0};
  return *buckets;
}

// A family of one unlabelled sample, for values read at scrape time.
prom::MetricFamily SingleValueFamily(std::string name, std::string help, prom::MetricType type,
                                     double value) {
  prom::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prom::ClientMetric metric;
  (type == prom::MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
  family.metric.push_back(metric);
  return family;
}

prom::MetricFamily GaugeFamily(std::string name, std::string help, double value) {
  return SingleValueFamily(std::move(name), std::move(help), prom::MetricType::Gauge, value);
}

prom::MetricFamily CounterFamily(std::string name, std::string help, double value) {
  return SingleValueFamily(std::move(name), std::move(help), prom::MetricType::Counter, value);
}

// Reads the memory store's gauges when scraped, so the hot path never writes them.
class StoreCollector final : public prom::Collectable {
 public:
  explicit StoreCollector(const MemoryStore& store) : store_(store) {}
  std::vector<prom::MetricFamily> Collect() const override {
    return {GaugeFamily("ratelimit_memory_store_entries", "Entries in the memory store now.",
                        static_cast<double>(store_.size())),
            GaugeFamily("ratelimit_memory_store_max_size", "The memory store's bound.",
                        static_cast<double>(store_.max_size()))};
  }

 private:
  const MemoryStore& store_;
};

// The process metrics other Prometheus clients export by default, read from /proc/self.
class ProcessCollector final : public prom::Collectable {
 public:
  std::vector<prom::MetricFamily> Collect() const override {
    std::vector<prom::MetricFamily> families;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

    // Fields after the command name, which is in parentheses and may hold spaces.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(stat.substr(close + 2));
      std::vector<std::string> f;
      for (std::string s; fields >> s;) f.push_back(s);
      // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
      if (f.size() > 21) {
        const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        families.push_back(CounterFamily("process_cpu_seconds_total",
                                         "Total user and system CPU time spent in seconds.", cpu));
        families.push_back(GaugeFamily("process_virtual_memory_bytes",
                                       "Virtual memory size in bytes.", std::stod(f[20])));
        families.push_back(GaugeFamily("process_resident_memory_bytes",
                                       "Resident memory size in bytes.", std::stod(f[21]) * page));
        families.push_back(GaugeFamily("process_start_time_seconds",
                                       "Start time of the process since unix epoch in seconds.",
                                       BootTime() + std::stod(f[19]) / ticks));
      }
    }

    families.push_back(GaugeFamily("process_open_fds", "Number of open file descriptors.",
                                   static_cast<double>(OpenFds())));
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    families.push_back(GaugeFamily("process_max_fds", "Maximum number of open file descriptors.",
                                   static_cast<double>(limit.rlim_cur)));
    return families;
  }

 private:
  static double BootTime() {
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
    }
    return 0;
  }

  static int OpenFds() {
    std::error_code error;
    int count = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
         !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
      ++count;
    }
    return std::max(0, count - 1);  // Not the descriptor the iterator itself holds.
  }
};

}  // namespace

Metrics::Metrics(int64_t max_key_prefixes)
    : registry_(std::make_shared<prom::Registry>()), max_key_prefixes_(max_key_prefixes) {
  auto& requests = prom::BuildCounter()
                       .Name("ratelimit_requests_total")
                       .Help("Answered checks, by decision and by the store that decided.")
                       .Register(*registry_);
  for (int allowed = 0; allowed < 2; ++allowed) {
    for (int redis = 0; redis < 2; ++redis) {
      requests_[allowed][redis] = &requests.Add(
          {{"allowed", allowed ? "true" : "false"}, {"source", redis ? "redis" : "memory"}});
    }
  }

  rejected_family_ = &prom::BuildCounter()
                          .Name("ratelimit_rejected_total")
                          .Help("Denied checks, by the key's text before its first ':'.")
                          .Register(*registry_);
  rejected_other_ = &rejected_family_->Add({{"key_prefix", "other"}});

  breaker_state_ = &prom::BuildGauge()
                        .Name("circuit_breaker_state")
                        .Help("State of the circuit breaker: 0 CLOSED, 1 HALF_OPEN, 2 OPEN.")
                        .Register(*registry_)
                        .Add({{"name", "redis"}});
  breaker_failures_ = &prom::BuildCounter()
                           .Name("circuit_breaker_failures_total")
                           .Help("Failures recorded by the circuit breaker.")
                           .Register(*registry_)
                           .Add({{"name", "redis"}});
  auto& transitions = prom::BuildCounter()
                          .Name("circuit_breaker_transitions_total")
                          .Help("Circuit breaker transitions, by the state entered.")
                          .Register(*registry_);
  for (BreakerState state : {BreakerState::kClosed, BreakerState::kHalfOpen, BreakerState::kOpen}) {
    breaker_transitions_[static_cast<int>(state)] =
        &transitions.Add({{"name", "redis"}, {"to", std::string(BreakerStateName(state))}});
  }

  auto& check_duration = prom::BuildHistogram()
                             .Name("ratelimit_check_duration_seconds")
                             .Help("Time to answer a check, by the store that decided.")
                             .Register(*registry_);
  check_duration_[0] = &check_duration.Add({{"source", "memory"}}, LatencyBuckets());
  check_duration_[1] = &check_duration.Add({{"source", "redis"}}, LatencyBuckets());
  redis_duration_ = &prom::BuildHistogram()
                         .Name("ratelimit_redis_command_duration_seconds")
                         .Help("Time from sending a Redis command to its reply or failure.")
                         .Register(*registry_)
                         .Add({}, LatencyBuckets());
  auto& redis_errors = prom::BuildCounter()
                           .Name("ratelimit_redis_errors_total")
                           .Help("Failed Redis commands, by kind: timeout, connection or reply.")
                           .Register(*registry_);
  redis_timeouts_ = &redis_errors.Add({{"kind", "timeout"}});
  redis_connection_errors_ = &redis_errors.Add({{"kind", "connection"}});
  redis_reply_errors_ = &redis_errors.Add({{"kind", "reply"}});
}

absl::string_view Metrics::KeyPrefix(absl::string_view key) {
  absl::string_view prefix = key.substr(0, key.find(':'));
  return prefix.empty() ? "unknown" : prefix;
}

prom::Counter& Metrics::RejectedCounter(absl::string_view key) {
  const absl::string_view prefix = KeyPrefix(key);
  {
    absl::ReaderMutexLock lock(&prefixes_mu_);
    if (auto it = prefixes_.find(prefix); it != prefixes_.end()) return *it->second;
    if (static_cast<int64_t>(prefixes_.size()) >= max_key_prefixes_) return *rejected_other_;
  }
  absl::MutexLock lock(&prefixes_mu_);
  if (auto it = prefixes_.find(prefix); it != prefixes_.end()) return *it->second;
  // Callers choose the keys: past the cap, new prefixes share one series.
  if (static_cast<int64_t>(prefixes_.size()) >= max_key_prefixes_ || prefix == "other") {
    return *rejected_other_;
  }
  prom::Counter& counter = rejected_family_->Add({{"key_prefix", std::string(prefix)}});
  prefixes_.emplace(std::string(prefix), &counter);
  return counter;
}

void Metrics::RecordCheck(absl::string_view key, const Decision& decision,
                          std::chrono::nanoseconds took) {
  const bool redis = decision.source == Source::kRedis;
  requests_[decision.allowed][redis]->Increment();
  check_duration_[redis]->Observe(Seconds(took));
  if (!decision.allowed) RejectedCounter(key).Increment();
}

void Metrics::RecordRedisCall(const absl::Status& status, std::chrono::nanoseconds took) {
  redis_duration_->Observe(Seconds(took));
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return;
    case absl::StatusCode::kDeadlineExceeded:
      redis_timeouts_->Increment();
      return;
    case absl::StatusCode::kUnavailable:
      redis_connection_errors_->Increment();
      return;
    default:
      redis_reply_errors_->Increment();
      return;
  }
}

void Metrics::RecordBreakerTransition(BreakerState to) {
  breaker_state_->Set(static_cast<double>(static_cast<int>(to)));
  breaker_transitions_[static_cast<int>(to)]->Increment();
}

void Metrics::RecordBreakerFailure() { breaker_failures_->Increment(); }

void Metrics::AddScrapeTimeCollectors(const MemoryStore& store) {
  store_collector_ = std::make_shared<StoreCollector>(store);
  process_collector_ = std::make_shared<ProcessCollector>();
}

std::vector<std::weak_ptr<prom::Collectable>> Metrics::Collectables() const {
  std::vector<std::weak_ptr<prom::Collectable>> all = {registry_};
  if (store_collector_ != nullptr) all.push_back(store_collector_);
  if (process_collector_ != nullptr) all.push_back(process_collector_);
  return all;
}

}  // namespace ratelimit
