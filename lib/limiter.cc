#include "lib/limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ratelimit {

Limiter::Limiter(MemoryStore& memory, RemoteStore* remote, CircuitBreaker* breaker,
                 Observer observer)
    : memory_(memory), remote_(remote), breaker_(breaker), observer_(std::move(observer)) {}

bool Limiter::using_remote() const {
  return remote_ != nullptr && breaker_->state() == BreakerState::kClosed && remote_->connected();
}

void Limiter::Check(const LimitRequest& request, bool spend, DecisionCallback done) {
  if (remote_ == nullptr) {
    done(memory_.Check(request, spend));
    return;
  }
  const CircuitBreaker::Admission admission = breaker_->Admit();
  if (admission == CircuitBreaker::Admission::kRejected) {
    done(memory_.Check(request, spend));
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  remote_->Check(request, spend,
                 [this, request, spend, admission, start,
                  done = std::move(done)](const absl::StatusOr<Decision>& decision) {
                   RecordRemoteResult(admission, decision.status(), start);
                   if (decision.ok()) {
                     done(*decision);
                     return;
                   }
                   // The caller gets an answer now, from memory; the breaker decides whether
                   // the next one tries Redis.
                   done(memory_.Check(request, spend));
                 });
}

void Limiter::ProbeIfDue() {
  if (remote_ == nullptr || breaker_->state() == BreakerState::kClosed) return;
  const CircuitBreaker::Admission admission = breaker_->Admit();
  // kAllowed means the breaker closed meanwhile: no probe is wanted, and this call's failure
  // would count toward opening it.
  if (admission != CircuitBreaker::Admission::kProbe) return;
  const auto start = std::chrono::steady_clock::now();
  const LimitRequest probe{AllowanceId{kProbeKey, Algorithm::kFixedWindow, 1000}, int64_t{1} << 40,
                           1};
  remote_->Check(probe, /*spend=*/true,
                 [this, admission, start](const absl::StatusOr<Decision>& decision) {
                   RecordRemoteResult(admission, decision.status(), start);
                 });
}

void Limiter::RecordRemoteResult(CircuitBreaker::Admission admission, const absl::Status& status,
                                 std::chrono::steady_clock::time_point start) {
  if (observer_.on_remote_result) {
    observer_.on_remote_result(status, std::chrono::steady_clock::now() - start);
  }
  if (status.ok()) {
    breaker_->RecordSuccess(admission);
  } else {
    breaker_->RecordFailure(admission, status.message());
  }
}

void Limiter::Reset(const AllowanceId& id, ResetCallback done) {
  memory_.Reset(id);
  if (remote_ == nullptr) {
    done(absl::OkStatus());
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  remote_->Reset(id, [this, start, done = std::move(done)](const absl::Status& status) {
    if (observer_.on_remote_result) {
      observer_.on_remote_result(status, std::chrono::steady_clock::now() - start);
    }
    if (status.ok()) return done(status);
    done(absl::UnavailableError(
        absl::StrCat("cleared in memory, but not in Redis: ", status.message())));
  });
}

}  // namespace ratelimit
