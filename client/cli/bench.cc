#include "client/cli/bench.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"

namespace ratelimit {
namespace {

// Rounded to microseconds: nanoseconds are noise in a report.
std::string Format(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Microseconds(1)));
}

// Latencies in buckets 1% apart, from 1 µs to about 100 s: percentiles within 1% without
// keeping every sample, and lock-free to record.
class LatencyHistogram {
 public:
  void Record(absl::Duration d) {
    const double us = std::max(1.0, absl::ToDoubleMicroseconds(d));
    const size_t bucket =
        std::min(kBuckets - 1, static_cast<size_t>(std::log(us) / std::log(kGrowth)));
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    int64_t max = max_us_.load(std::memory_order_relaxed);
    const auto value = static_cast<int64_t>(us);
    while (value > max && !max_us_.compare_exchange_weak(max, value)) {
    }
  }

  // The upper bound of the bucket that holds quantile `q`.
  absl::Duration Quantile(double q) const {
    int64_t total = 0;
    for (const auto& c : counts_) total += c.load();
    if (total == 0) return absl::ZeroDuration();
    const auto rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(total)));
    int64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i].load();
      if (seen >= rank) return absl::Microseconds(std::pow(kGrowth, static_cast<double>(i + 1)));
    }
    return Max();
  }

  absl::Duration Max() const { return absl::Microseconds(max_us_.load()); }

 private:
  static constexpr double kGrowth = 1.01;
  static constexpr size_t kBuckets = 1900;  // 1.01^1900 µs is about 160 s.
  std::array<std::atomic<int64_t>, kBuckets> counts_{};
  std::atomic<int64_t> max_us_{0};
};

// Draws key indexes, uniformly or by Zipf's law (rank r with weight 1 / r^s).
class KeyPicker {
 public:
  KeyPicker(int64_t keys, const std::string& distribution, double exponent) : keys_(keys) {
    if (distribution != "zipf") return;
    cdf_.reserve(keys);
    double sum = 0;
    for (int64_t r = 1; r <= keys; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r), exponent);
      cdf_.push_back(sum);
    }
    for (double& c : cdf_) c /= sum;
  }

  int64_t Pick() const {
    thread_local std::mt19937_64 rng(std::random_device{}());
    if (cdf_.empty()) return std::uniform_int_distribution<int64_t>(0, keys_ - 1)(rng);
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  }

 private:
  const int64_t keys_;
  std::vector<double> cdf_;
};

struct Counters {
  std::atomic<int64_t> started{0};
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> allowed{0};
  std::atomic<int64_t> denied{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> from_redis{0};
  std::atomic<int64_t> from_memory{0};
  std::atomic<int64_t> local{0};
  std::atomic<int> in_flight{0};
  absl::Mutex mu;
  std::string first_error ABSL_GUARDED_BY(mu);
};

class Loop {
 public:
  Loop(Client& client, const BenchOptions& options)
      : client_(client),
        options_(options),
        picker_(options.keys, options.distribution, options.zipf_exponent) {
    keys_.reserve(options.keys);
    for (int64_t i = 0; i < options.keys; ++i) keys_.push_back(absl::StrCat(options.check.key, i));
  }

  BenchReport Run() {
    start_ = absl::Now();
    deadline_ = start_ + options_.duration;
    for (int i = 0; i < options_.concurrency; ++i) {
      counters_.in_flight.fetch_add(1);
      Next();
    }
    std::thread progress([this] { Progress(); });
    done_.WaitForNotification();
    const absl::Duration elapsed = absl::Now() - start_;
    stop_progress_.Notify();
    progress.join();

    BenchReport report;
    report.calls = counters_.calls.load();
    report.allowed = counters_.allowed.load();
    report.denied = counters_.denied.load();
    report.errors = counters_.errors.load();
    report.from_redis = counters_.from_redis.load();
    report.from_memory = counters_.from_memory.load();
    report.decided_locally = counters_.local.load();
    report.elapsed = elapsed;
    report.throughput = static_cast<double>(report.calls) / absl::ToDoubleSeconds(elapsed);
    report.p50 = latency_.Quantile(0.50);
    report.p90 = latency_.Quantile(0.90);
    report.p99 = latency_.Quantile(0.99);
    report.p999 = latency_.Quantile(0.999);
    report.max = latency_.Max();
    absl::MutexLock lock(&counters_.mu);
    report.first_error = counters_.first_error;
    return report;
  }

 private:
  // Starts one more check, or retires this slot when the run is over.
  void Next() {
    const bool over_count =
        options_.requests > 0 && counters_.started.fetch_add(1) >= options_.requests;
    if (over_count || absl::Now() >= deadline_) {
      if (counters_.in_flight.fetch_sub(1) == 1) done_.Notify();
      return;
    }
    CheckParams params = options_.check;
    params.key = keys_[picker_.Pick()];
    const absl::Time sent = absl::Now();
    client_.CheckAsync(params, [this, sent](absl::StatusOr<CheckResult> result) {
      latency_.Record(absl::Now() - sent);
      counters_.calls.fetch_add(1, std::memory_order_relaxed);
      if (!result.ok() || result->decided_locally) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        if (result.ok()) counters_.local.fetch_add(1, std::memory_order_relaxed);
        absl::MutexLock lock(&counters_.mu);
        if (counters_.first_error.empty()) {
          counters_.first_error =
              result.ok() ? result->service_status.ToString() : result.status().ToString();
        }
      } else {
        (result->allowed ? counters_.allowed : counters_.denied)
            .fetch_add(1, std::memory_order_relaxed);
        (result->source == ratelimit::v1::SOURCE_REDIS ? counters_.from_redis
                                                       : counters_.from_memory)
            .fetch_add(1, std::memory_order_relaxed);
      }
      Next();
    });
  }

  void Progress() {
    if (!options_.progress) return;
    int64_t last_calls = 0;
    absl::Time last = start_;
    while (!stop_progress_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      const absl::Time now = absl::Now();
      const int64_t calls = counters_.calls.load();
      const double rate =
          static_cast<double>(calls - last_calls) / absl::ToDoubleSeconds(now - last);
      std::fprintf(stderr, "\r[%6.1fs] %12lld calls  %10.0f/s  p99 %-10s errors %lld   ",
                   absl::ToDoubleSeconds(now - start_), static_cast<long long>(calls), rate,
                   Format(latency_.Quantile(0.99)).c_str(),
                   static_cast<long long>(counters_.errors.load()));
      std::fflush(stderr);
      last_calls = calls;
      last = now;
    }
    std::fprintf(stderr, "\n");
  }

  Client& client_;
  const BenchOptions& options_;
  KeyPicker picker_;
  std::vector<std::string> keys_;
  Counters counters_;
  LatencyHistogram latency_;
  absl::Time start_;
  absl::Time deadline_;
  absl::Notification done_;
  absl::Notification stop_progress_;
};

std::string Share(int64_t part, int64_t whole) {
  return whole == 0 ? "0.0%" : absl::StrFormat("%.1f%%", 100.0 * part / whole);
}

}  // namespace

BenchReport RunBench(Client& client, const BenchOptions& options) {
  auto loop = std::make_unique<Loop>(client, options);
  return loop->Run();
}

std::string FormatReport(const BenchReport& r) {
  const int64_t answered = r.allowed + r.denied;
  std::string out = absl::StrFormat(
      "calls        %d in %s\n"
      "throughput   %.0f checks/s\n"
      "latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n"
      "decisions    allowed %d  denied %d  errors %d\n"
      "source       redis %s  memory %s\n",
      r.calls, Format(r.elapsed), r.throughput, Format(r.p50), Format(r.p90), Format(r.p99),
      Format(r.p999), Format(r.max), r.allowed, r.denied, r.errors, Share(r.from_redis, answered),
      Share(r.from_memory, answered));
  if (!r.first_error.empty()) absl::StrAppend(&out, "first error  ", r.first_error, "\n");
  return out;
}

std::string ReportJson(const BenchReport& r) {
  auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
  nlohmann::json j = {
      {"calls", r.calls},
      {"elapsed_seconds", absl::ToDoubleSeconds(r.elapsed)},
      {"throughput_per_second", r.throughput},
      {"latency_ms",
       {{"p50", ms(r.p50)},
        {"p90", ms(r.p90)},
        {"p99", ms(r.p99)},
        {"p999", ms(r.p999)},
        {"max", ms(r.max)}}},
      {"allowed", r.allowed},
      {"denied", r.denied},
      {"errors", r.errors},
      {"decided_locally", r.decided_locally},
      {"source", {{"redis", r.from_redis}, {"memory", r.from_memory}}},
  };
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j.dump();
}

}  // namespace ratelimit
