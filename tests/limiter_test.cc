#include "lib/limiter.h"

#include <deque>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ratelimit {
namespace {

using ::testing::_;
using ::testing::Eq;
using ::testing::Field;
using ::testing::StrictMock;

// A remote store whose answers the test decides.
class MockRemoteStore : public RemoteStore {
 public:
  MOCK_METHOD(void, Check, (const LimitRequest&, bool, DecisionCallback), (override));
  MOCK_METHOD(void, Reset, (const AllowanceId&, ResetCallback), (override));
  MOCK_METHOD(bool, connected, (), (const, override));
};

LimitRequest Request(absl::string_view key, int64_t limit = 1) {
  return LimitRequest{AllowanceId{key, Algorithm::kFixedWindow, 60'000}, limit, 1};
}

Decision RedisDecision(bool allowed) {
  return Decision{allowed, 1, allowed ? 0 : 0, 100, allowed ? 0 : 100, Source::kRedis};
}

class LimiterTest : public ::testing::Test {
 protected:
  LimiterTest()
      : memory_(clock_,
                MemoryStore::Options{.max_entries = 100, .sweep_interval = absl::ZeroDuration()}),
        breaker_("redis", {.failure_threshold = 2, .open_duration = absl::Seconds(10)}, clock_),
        limiter_(memory_, &remote_, &breaker_,
                 {.on_remote_result = [this](const absl::Status& s, std::chrono::nanoseconds) {
                   remote_errors_ += !s.ok();
                 }}) {}

  Decision CheckNow(const LimitRequest& request) {
    std::optional<Decision> result;
    limiter_.Check(request, true, [&](const Decision& d) { result = d; });
    EXPECT_TRUE(result.has_value()) << "the fake answers synchronously";
    return result.value_or(Decision{});
  }

  FakeClock clock_;
  MemoryStore memory_;
  StrictMock<MockRemoteStore> remote_;
  CircuitBreaker breaker_;
  int remote_errors_ = 0;
  Limiter limiter_;
};

TEST_F(LimiterTest, RedisDecidesWhileItAnswers) {
  EXPECT_CALL(remote_, Check(_, true, _)).WillOnce([](auto&, bool, auto done) {
    done(RedisDecision(true));
  });
  EXPECT_EQ(CheckNow(Request("k")).source, Source::kRedis);
  EXPECT_EQ(memory_.size(), 0);
}

TEST_F(LimiterTest, AFailureIsAnsweredFromMemoryAtOnce) {
  EXPECT_CALL(remote_, Check(_, true, _)).WillOnce([](auto&, bool, auto done) {
    done(absl::DeadlineExceededError("slow"));
  });
  Decision d = CheckNow(Request("k"));
  EXPECT_EQ(d.source, Source::kMemory);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(remote_errors_, 1);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
}

TEST_F(LimiterTest, AnOpenBreakerNeverCallsRedis) {
  EXPECT_CALL(remote_, Check(_, true, _)).Times(2).WillRepeatedly([](auto&, bool, auto done) {
    done(absl::UnavailableError("down"));
  });
  CheckNow(Request("a"));
  CheckNow(Request("b"));
  ASSERT_EQ(breaker_.state(), BreakerState::kOpen);
  // StrictMock fails the test on any further call.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(CheckNow(Request("c", 100)).source, Source::kMemory);
}

TEST_F(LimiterTest, RedisIsUsedAgainAfterTheOpenDuration) {
  EXPECT_CALL(remote_, Check(_, true, _))
      .WillOnce([](auto&, bool, auto done) { done(absl::UnavailableError("down")); })
      .WillOnce([](auto&, bool, auto done) { done(absl::UnavailableError("down")); })
      .WillOnce([](auto&, bool, auto done) { done(RedisDecision(true)); });
  CheckNow(Request("a"));
  CheckNow(Request("a"));
  ASSERT_EQ(breaker_.state(), BreakerState::kOpen);
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(CheckNow(Request("a", 5)).source, Source::kRedis);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
}

// The background probe: a spending check on the limiter's own probe key.
auto IsProbe() {
  return Field(&LimitRequest::id, Field(&AllowanceId::key, Eq(Limiter::kProbeKey)));
}

TEST_F(LimiterTest, WithNoTrafficAProbeClosesTheBreakerAfterTheOpenDuration) {
  // Closed: no probe (StrictMock fails the test on an unexpected call).
  limiter_.ProbeIfDue();
  EXPECT_CALL(remote_, Check(_, true, _)).Times(2).WillRepeatedly([](auto&, bool, auto done) {
    done(absl::UnavailableError("down"));
  });
  CheckNow(Request("a"));
  CheckNow(Request("a"));
  ASSERT_EQ(breaker_.state(), BreakerState::kOpen);
  // Open, and not yet due: still no probe.
  clock_.Advance(absl::Seconds(9));
  limiter_.ProbeIfDue();
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);

  // Due, and Redis refuses the write (out of memory, say): the breaker opens again.
  clock_.Advance(absl::Seconds(1));
  EXPECT_CALL(remote_, Check(IsProbe(), true, _)).WillOnce([](auto&, bool, auto done) {
    done(absl::InternalError("OOM command not allowed"));
  });
  limiter_.ProbeIfDue();
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(remote_errors_, 3);
  limiter_.ProbeIfDue();

  // Due again, Redis back: the probe closes it.
  clock_.Advance(absl::Seconds(10));
  EXPECT_CALL(remote_, Check(IsProbe(), true, _)).WillOnce([](auto&, bool, auto done) {
    done(RedisDecision(true));
  });
  limiter_.ProbeIfDue();
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  EXPECT_EQ(memory_.size(), 1) << "only \"a\", answered from memory while Redis was down: a "
                                  "probe never is";
}

TEST_F(LimiterTest, AProbeInFlightIsNotDoubled) {
  EXPECT_CALL(remote_, Check(_, true, _)).Times(2).WillRepeatedly([](auto&, bool, auto done) {
    done(absl::UnavailableError("down"));
  });
  CheckNow(Request("a"));
  CheckNow(Request("a"));
  clock_.Advance(absl::Seconds(10));
  // The first probe does not answer yet; the breaker's one probe slot is taken.
  RemoteStore::DecisionCallback pending;
  EXPECT_CALL(remote_, Check(IsProbe(), true, _)).WillOnce([&](auto&, bool, auto done) {
    pending = std::move(done);
  });
  limiter_.ProbeIfDue();
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
  limiter_.ProbeIfDue();  // No second probe.
  EXPECT_EQ(CheckNow(Request("b", 5)).source, Source::kMemory) << "no second probe by a check";
  pending(RedisDecision(true));
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
}

TEST_F(LimiterTest, ResetClearsMemoryAndSaysWhenRedisCouldNotBeCleared) {
  EXPECT_CALL(remote_, Check(_, true, _)).WillOnce([](auto&, bool, auto done) {
    done(absl::UnavailableError("down"));
  });
  CheckNow(Request("k"));
  ASSERT_EQ(memory_.size(), 1);
  EXPECT_CALL(remote_, Reset(_, _)).WillOnce([](auto&, auto done) {
    done(absl::UnavailableError("down"));
  });
  absl::Status status;
  limiter_.Reset(AllowanceId{"k", Algorithm::kFixedWindow, 60'000},
                 [&](absl::Status s) { status = s; });
  EXPECT_EQ(memory_.size(), 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

TEST(LimiterMemoryModeTest, AnswersFromMemory) {
  FakeClock clock;
  MemoryStore memory(clock, MemoryStore::Options{.max_entries = 10});
  CircuitBreaker breaker("redis", {}, clock);
  Limiter limiter(memory, nullptr, &breaker);
  int allowed = 0;
  for (int i = 0; i < 5; ++i) {
    limiter.Check(Request("k", 3), true, [&](const Decision& d) {
      EXPECT_EQ(d.source, Source::kMemory);
      allowed += d.allowed;
    });
  }
  EXPECT_EQ(allowed, 3);
  EXPECT_FALSE(limiter.using_remote());
}

}  // namespace
}  // namespace ratelimit
