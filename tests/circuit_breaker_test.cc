#include "lib/circuit_breaker.h"

#include <vector>

#include "gtest/gtest.h"

namespace ratelimit {
namespace {

using Admission = CircuitBreaker::Admission;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker MakeBreaker(int threshold = 3, int probes = 1) {
    return CircuitBreaker(
        "redis",
        {.failure_threshold = threshold,
         .open_duration = absl::Seconds(10),
         .half_open_probes = probes},
        clock_,
        {.on_transition = [this](BreakerState, BreakerState to) { transitions_.push_back(to); },
         .on_failure = [this] { ++failures_; }});
  }

  void FailTimes(CircuitBreaker& breaker, int n) {
    for (int i = 0; i < n; ++i) breaker.RecordFailure(breaker.Admit(), "boom");
  }

  FakeClock clock_;
  std::vector<BreakerState> transitions_;
  int failures_ = 0;
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  CircuitBreaker breaker = MakeBreaker(3);
  FailTimes(breaker, 2);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  FailTimes(breaker, 1);
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.Admit(), Admission::kRejected);
  EXPECT_EQ(failures_, 3);
  EXPECT_EQ(transitions_, std::vector<BreakerState>{BreakerState::kOpen});
}

TEST_F(CircuitBreakerTest, SuccessResetsTheConsecutiveCount) {
  CircuitBreaker breaker = MakeBreaker(3);
  FailTimes(breaker, 2);
  breaker.RecordSuccess(breaker.Admit());
  FailTimes(breaker, 2);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST_F(CircuitBreakerTest, HalfOpensAfterTheOpenDurationAndClosesOnAGoodProbe) {
  CircuitBreaker breaker = MakeBreaker(1);
  FailTimes(breaker, 1);
  clock_.Advance(absl::Seconds(10) - absl::Milliseconds(1));
  EXPECT_EQ(breaker.Admit(), Admission::kRejected);
  clock_.Advance(absl::Milliseconds(1));
  const Admission probe = breaker.Admit();
  EXPECT_EQ(probe, Admission::kProbe);
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  // Only one probe at a time.
  EXPECT_EQ(breaker.Admit(), Admission::kRejected);
  breaker.RecordSuccess(probe);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.Admit(), Admission::kAllowed);
  EXPECT_EQ(transitions_, (std::vector<BreakerState>{BreakerState::kOpen, BreakerState::kHalfOpen,
                                                     BreakerState::kClosed}));
}

TEST_F(CircuitBreakerTest, AFailedProbeOpensAgainForAFullDuration) {
  CircuitBreaker breaker = MakeBreaker(1);
  FailTimes(breaker, 1);
  clock_.Advance(absl::Seconds(10));
  breaker.RecordFailure(breaker.Admit(), "still down");
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  clock_.Advance(absl::Seconds(9));
  EXPECT_EQ(breaker.Admit(), Admission::kRejected);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(breaker.Admit(), Admission::kProbe);
}

TEST_F(CircuitBreakerTest, LetsTheConfiguredNumberOfProbesThrough) {
  CircuitBreaker breaker = MakeBreaker(1, 3);
  FailTimes(breaker, 1);
  clock_.Advance(absl::Seconds(10));
  std::vector<Admission> probes;
  for (int i = 0; i < 3; ++i) probes.push_back(breaker.Admit());
  for (Admission a : probes) EXPECT_EQ(a, Admission::kProbe);
  EXPECT_EQ(breaker.Admit(), Admission::kRejected);
  breaker.RecordSuccess(probes[0]);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  // Late probe results after closing change nothing.
  breaker.RecordFailure(probes[1], "late");
  breaker.RecordSuccess(probes[2]);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST_F(CircuitBreakerTest, LateFailuresOfCallsAdmittedWhileClosedDoNotReopen) {
  CircuitBreaker breaker = MakeBreaker(2);
  const Admission a = breaker.Admit();
  const Admission b = breaker.Admit();
  const Admission c = breaker.Admit();
  breaker.RecordFailure(a, "x");
  breaker.RecordFailure(b, "x");
  ASSERT_EQ(breaker.state(), BreakerState::kOpen);
  clock_.Advance(absl::Seconds(10));
  const Admission probe = breaker.Admit();
  breaker.RecordFailure(c, "late");
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  breaker.RecordSuccess(probe);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

}  // namespace
}  // namespace ratelimit
