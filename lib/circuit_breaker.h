#ifndef RATELIMIT_LIB_CIRCUIT_BREAKER_H_
#define RATELIMIT_LIB_CIRCUIT_BREAKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lib/clock.h"

namespace ratelimit {

enum class BreakerState : int { kClosed = 0, kHalfOpen = 1, kOpen = 2 };

absl::string_view BreakerStateName(BreakerState state);

// Guards calls to a dependency. CLOSED lets every call through and counts consecutive failures;
// at the threshold it turns OPEN and lets nothing through. After the open duration it turns
// HALF_OPEN and lets a few probes through: a probe's success closes it, a failure opens it again.
// Thread-safe; Admit() in the CLOSED state takes no lock.
class CircuitBreaker {
 public:
  struct Options {
    int failure_threshold = 5;
    absl::Duration open_duration = absl::Seconds(10);
    int half_open_probes = 1;
  };

  // Called on each transition (under the breaker's lock, so keep it short) and on each failure.
  struct Listener {
    std::function<void(BreakerState from, BreakerState to)> on_transition;
    std::function<void()> on_failure;
  };

  // What Admit() grants. A probe's outcome decides the HALF_OPEN state; a plain call's outcome
  // counts toward the threshold only while CLOSED.
  enum class Admission { kRejected, kAllowed, kProbe };

  CircuitBreaker(std::string name, Options options, const Clock& clock, Listener listener = {});
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  Admission Admit();
  void RecordSuccess(Admission admission);
  // `reason` explains the failure in the log line if this failure opens the breaker.
  void RecordFailure(Admission admission, absl::string_view reason);

  BreakerState state() const { return state_.load(std::memory_order_acquire); }
  const std::string& name() const { return name_; }

 private:
  void TransitionLocked(BreakerState to, absl::string_view reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const Options options_;
  const Clock& clock_;
  const Listener listener_;

  // Written under mu_, read without it on the fast path.
  std::atomic<BreakerState> state_{BreakerState::kClosed};
  std::atomic<int> consecutive_failures_{0};

  absl::Mutex mu_;
  absl::Time opened_at_ ABSL_GUARDED_BY(mu_);
  // Every probe reports exactly once, so this stays exact across transitions.
  int probes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_CIRCUIT_BREAKER_H_
