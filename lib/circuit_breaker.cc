#include "lib/circuit_breaker.h"

#include "absl/strings/str_cat.h"
#include "lib/logging.h"

namespace ratelimit {

absl::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "CLOSED";
    case BreakerState::kHalfOpen:
      return "HALF_OPEN";
    case BreakerState::kOpen:
      return "OPEN";
  }
  return "UNKNOWN";
}

CircuitBreaker::CircuitBreaker(std::string name, Options options, const Clock& clock,
                               Listener listener)
    : name_(std::move(name)), options_(options), clock_(clock), listener_(std::move(listener)) {}

CircuitBreaker::Admission CircuitBreaker::Admit() {
  if (state_.load(std::memory_order_acquire) == BreakerState::kClosed) return Admission::kAllowed;

  absl::MutexLock lock(&mu_);
  switch (state_.load(std::memory_order_relaxed)) {
    case BreakerState::kClosed:
      return Admission::kAllowed;
    case BreakerState::kOpen:
      if (clock_.Now() - opened_at_ < options_.open_duration) return Admission::kRejected;
      TransitionLocked(BreakerState::kHalfOpen,
                       absl::StrCat("open for ", absl::FormatDuration(options_.open_duration)));
      break;
    case BreakerState::kHalfOpen:
      break;
  }
  if (probes_in_flight_ >= options_.half_open_probes) return Admission::kRejected;
  ++probes_in_flight_;
  return Admission::kProbe;
}

void CircuitBreaker::RecordSuccess(Admission admission) {
  if (admission == Admission::kAllowed) {
    // Avoid writing the shared line on every success.
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
      consecutive_failures_.store(0, std::memory_order_relaxed);
    }
    return;
  }
  if (admission != Admission::kProbe) return;
  absl::MutexLock lock(&mu_);
  --probes_in_flight_;
  if (state_.load(std::memory_order_relaxed) == BreakerState::kHalfOpen) {
    TransitionLocked(BreakerState::kClosed, "probe succeeded");
  }
}

void CircuitBreaker::RecordFailure(Admission admission, absl::string_view reason) {
  if (admission == Admission::kRejected) return;
  if (listener_.on_failure) listener_.on_failure();

  absl::MutexLock lock(&mu_);
  const BreakerState state = state_.load(std::memory_order_relaxed);
  if (admission == Admission::kProbe) {
    --probes_in_flight_;
    if (state == BreakerState::kHalfOpen) {
      TransitionLocked(BreakerState::kOpen, absl::StrCat("probe failed: ", reason));
    }
    return;
  }
  // A call admitted while CLOSED that fails after the breaker moved on changes nothing.
  if (state != BreakerState::kClosed) return;
  const int failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures >= options_.failure_threshold) {
    TransitionLocked(BreakerState::kOpen,
                     absl::StrCat(failures, " consecutive failures, last: ", reason));
  }
}

void CircuitBreaker::TransitionLocked(BreakerState to, absl::string_view reason) {
  const BreakerState from = state_.load(std::memory_order_relaxed);
  if (from == to) return;
  if (to == BreakerState::kOpen) opened_at_ = clock_.Now();
  consecutive_failures_.store(0, std::memory_order_relaxed);
  state_.store(to, std::memory_order_release);

  if (to == BreakerState::kOpen) {
    spdlog::warn("circuit breaker '{}' {} -> {}: {}", name_, BreakerStateName(from),
                 BreakerStateName(to), reason);
  } else {
    spdlog::info("circuit breaker '{}' {} -> {}: {}", name_, BreakerStateName(from),
                 BreakerStateName(to), reason);
  }
  if (listener_.on_transition) listener_.on_transition(from, to);
}

}  // namespace ratelimit
