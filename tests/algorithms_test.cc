#include "lib/algorithms.h"

#include <algorithm>
#include <optional>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ratelimit {
namespace {

LimitRequest Fixed(int64_t limit, int64_t window_ms, int64_t cost = 1) {
  return LimitRequest{AllowanceId{"k", Algorithm::kFixedWindow, window_ms}, limit, cost};
}

TEST(FixedWindowTest, SpendsWhileItFitsAndAnswersTheWindowEnd) {
  const int64_t now = 1'000'250;  // 250 ms into a 1 s window.
  Evaluation first = Evaluate(Fixed(3, 1000), nullptr, now, true);
  EXPECT_TRUE(first.decision.allowed);
  EXPECT_EQ(first.decision.remaining, 2);
  EXPECT_EQ(first.decision.reset_after_ms, 750);
  EXPECT_EQ(first.decision.retry_after_ms, 0);
  ASSERT_TRUE(first.write);
  EXPECT_EQ(first.next.stamp_ms, 1'000'000);
  EXPECT_EQ(first.next.count, 1);
  EXPECT_EQ(first.ttl_ms, 750);
}

TEST(FixedWindowTest, DeniedCheckConsumesNothing) {
  AllowanceState full{1'000'000, 3};
  Evaluation denied = Evaluate(Fixed(3, 1000), &full, 1'000'400, true);
  EXPECT_FALSE(denied.decision.allowed);
  EXPECT_FALSE(denied.write);
  EXPECT_EQ(denied.decision.remaining, 0);
  EXPECT_EQ(denied.decision.retry_after_ms, 600);
  EXPECT_EQ(denied.decision.reset_after_ms, 600);
}

TEST(FixedWindowTest, AnEarlierWindowsCountNoLongerApplies) {
  AllowanceState old{999'000, 3};
  Evaluation next = Evaluate(Fixed(3, 1000), &old, 1'000'000, true);
  EXPECT_TRUE(next.decision.allowed);
  EXPECT_EQ(next.decision.remaining, 2);
}

TEST(FixedWindowTest, PeekAnswersWhatCheckWouldWithoutSpending) {
  AllowanceState state{1'000'000, 1};
  Evaluation peek = Evaluate(Fixed(3, 1000), &state, 1'000'100, false);
  Evaluation check = Evaluate(Fixed(3, 1000), &state, 1'000'100, true);
  EXPECT_FALSE(peek.write);
  EXPECT_EQ(peek.decision.allowed, check.decision.allowed);
  EXPECT_EQ(peek.decision.remaining, check.decision.remaining);
  EXPECT_EQ(peek.decision.reset_after_ms, check.decision.reset_after_ms);
}

TEST(FixedWindowTest, LoweringTheLimitAppliesAtOnceWithoutUnderflow) {
  AllowanceState state{1'000'000, 8};
  Evaluation lowered = Evaluate(Fixed(5, 1000), &state, 1'000'100, true);
  EXPECT_FALSE(lowered.decision.allowed);
  EXPECT_EQ(lowered.decision.remaining, 0);
  Evaluation raised = Evaluate(Fixed(20, 1000), &state, 1'000'100, true);
  EXPECT_TRUE(raised.decision.allowed);
  EXPECT_EQ(raised.decision.remaining, 11);
}

TEST(FixedWindowTest, CostAboveLimitIsDeniedAndNothingSpentLeavesNoReset) {
  Evaluation denied = Evaluate(Fixed(3, 1000, 4), nullptr, 1'000'100, true);
  EXPECT_FALSE(denied.decision.allowed);
  EXPECT_EQ(denied.decision.remaining, 3);
  EXPECT_EQ(denied.decision.reset_after_ms, 0);
}

TEST(FixedWindowTest, HugeNumbersStayExact) {
  Evaluation big = Evaluate(Fixed(kMaxLimit, 1000, kMaxLimit), nullptr, 5, true);
  EXPECT_TRUE(big.decision.allowed);
  EXPECT_EQ(big.decision.remaining, 0);
  Evaluation again = Evaluate(Fixed(kMaxLimit, 1000, 1), &big.next, 6, true);
  EXPECT_FALSE(again.decision.allowed);
}

LimitRequest Sliding(int64_t limit, int64_t window_ms, int64_t cost = 1) {
  return LimitRequest{AllowanceId{"k", Algorithm::kSlidingWindow, window_ms}, limit, cost};
}

LimitRequest Bucket(int64_t limit, int64_t window_ms, int64_t cost = 1) {
  return LimitRequest{AllowanceId{"k", Algorithm::kTokenBucket, window_ms}, limit, cost};
}

TEST(SlidingWindowTest, WeighsThePreviousCountByTheMillisecondsItStillCovers) {
  // 250 ms into a window, the last 1000 ms hold 749 ms of the previous window:
  // ceil(8 * 749 / 1000) = 6 of its 8 still count.
  const AllowanceState previous_only{.stamp_ms = 999'000, .count = 8};
  Evaluation fits = Evaluate(Sliding(10, 1000, 4), &previous_only, 1'000'250, true);
  EXPECT_TRUE(fits.decision.allowed);
  EXPECT_EQ(fits.decision.remaining, 0);
  ASSERT_TRUE(fits.write);
  EXPECT_EQ(fits.next.stamp_ms, 1'000'000);
  EXPECT_EQ(fits.next.count, 4);
  EXPECT_EQ(fits.next.previous, 8);
  EXPECT_EQ(fits.ttl_ms, 749 + 1000);
  EXPECT_FALSE(Evaluate(Sliding(10, 1000, 5), &previous_only, 1'000'250, true).decision.allowed);
}

TEST(SlidingWindowTest, CountsMoveToPreviousAndThenExpire) {
  const AllowanceState state{.stamp_ms = 1'000'000, .count = 3, .previous = 5};
  // One window on, the count is the previous one, and the old previous is gone.
  Evaluation next = Evaluate(Sliding(10, 1000), &state, 1'001'999, true);
  EXPECT_EQ(next.next.previous, 3);
  EXPECT_EQ(next.decision.remaining, 9);  // Overlap 0: the previous count no longer weighs.
  Evaluation later = Evaluate(Sliding(10, 1000), &state, 1'002'000, true);
  EXPECT_EQ(later.next.previous, 0);
  EXPECT_EQ(later.decision.remaining, 9);
}

TEST(SlidingWindowTest, DeniesAtTheNextWindowsStartWhatTheFixedWindowAllows) {
  const AllowanceState spent{.stamp_ms = 1'000'000, .count = 10};
  const LimitRequest fixed = LimitRequest{AllowanceId{"k", Algorithm::kFixedWindow, 1000}, 10, 1};
  EXPECT_TRUE(Evaluate(fixed, &spent, 1'001'000, true).decision.allowed);
  Evaluation sliding = Evaluate(Sliding(10, 1000), &spent, 1'001'000, true);
  EXPECT_FALSE(sliding.decision.allowed);
  EXPECT_FALSE(sliding.write);
  // ceil(10 * v / 1000) <= 9 first at v = 900: 99 ms on.
  EXPECT_EQ(sliding.decision.retry_after_ms, 99);
}

TEST(SlidingWindowTest, ProductsBeyond64BitsStayExact) {
  // (2^53 - 2) * 999 passes 2^63; the share is rounded up exactly.
  const AllowanceState previous_only{.stamp_ms = 0, .count = kMaxLimit - 1};
  Evaluation e = Evaluate(Sliding(kMaxLimit, 1000, 9'007'199'254'741), &previous_only, 1000, true);
  EXPECT_TRUE(e.decision.allowed);
  EXPECT_EQ(e.decision.remaining, 0);
  EXPECT_FALSE(Evaluate(Sliding(kMaxLimit, 1000, 9'007'199'254'742), &previous_only, 1000, true)
                   .decision.allowed);
}

TEST(TokenBucketTest, StoresTheTheoreticalArrivalTimeExactly) {
  Evaluation first = Evaluate(Bucket(3, 1000), nullptr, 5'000, true);
  EXPECT_TRUE(first.decision.allowed);
  EXPECT_EQ(first.decision.remaining, 2);
  ASSERT_TRUE(first.write);
  // TAT = now + 1000 / 3 ms = 5,333 + 1/3.
  EXPECT_EQ(first.next.stamp_ms, 5'333);
  EXPECT_EQ(first.next.count, 1);
  EXPECT_EQ(first.next.per, 3);
  EXPECT_EQ(first.ttl_ms, 334);
  EXPECT_EQ(first.decision.reset_after_ms, 334);
}

TEST(TokenBucketTest, ATatInThePastIsAFullBucket) {
  const AllowanceState old{.stamp_ms = 4'000, .count = 2, .per = 3};
  Evaluation e = Evaluate(Bucket(3, 1000, 3), &old, 5'000, true);
  EXPECT_TRUE(e.decision.allowed);
  EXPECT_EQ(e.next.stamp_ms, 6'000);
  EXPECT_EQ(e.next.count, 0);
}

TEST(TokenBucketTest, ALimitChangeKeepsTheTatAndAppliesTheNewRateAtOnce) {
  // 8 of 10 spent per minute: 48 s of backlog, 20% of the bucket left.
  const AllowanceState state{.stamp_ms = 48'000, .count = 0, .per = 10};
  Evaluation lowered = Evaluate(Bucket(5, 60'000), &state, 0, false);
  EXPECT_TRUE(lowered.decision.allowed);  // 20% of 5 is 1 token.
  EXPECT_EQ(lowered.decision.remaining, 0);
  Evaluation raised = Evaluate(Bucket(20, 60'000), &state, 0, false);
  EXPECT_EQ(raised.decision.remaining, 3);  // 20% of 20, less this one.
  // A TAT 10 + 1/1000 ms ahead moves onto the 1/7 ms grid, rounded up to 10 + 1/7; one token
  // at 7 per second adds 142 + 6/7, exactly 153.
  const AllowanceState fine{.stamp_ms = 10, .count = 1, .per = 1000};
  Evaluation moved = Evaluate(Bucket(7, 1000), &fine, 0, true);
  EXPECT_EQ(moved.next.stamp_ms, 153);
  EXPECT_EQ(moved.next.count, 0);
  EXPECT_EQ(moved.next.per, 7);
}

TEST(TokenBucketTest, CostAboveTheLimitIsToldAWholeWindow) {
  Evaluation e = Evaluate(Bucket(3, 1000, 4), nullptr, 0, true);
  EXPECT_FALSE(e.decision.allowed);
  EXPECT_FALSE(e.write);
  EXPECT_EQ(e.decision.remaining, 3);
  EXPECT_EQ(e.decision.reset_after_ms, 0);
  EXPECT_EQ(e.decision.retry_after_ms, 1000);
}

// What each answer promises, checked on the state it was given, over random sequences: a peek
// answers what a check would; waiting `retry_after` is enough and one ms less is not;
// `remaining` more fit and one more does not; after `reset_after` the allowance is whole and
// one ms before it is not; once the TTL has passed the stored state no longer changes any
// answer.
class AlgorithmPromisesTest : public ::testing::TestWithParam<Algorithm> {
 protected:
  struct Stored {
    AllowanceState state;
    int64_t expires_at_ms;
  };

  static const AllowanceState* Live(const std::optional<Stored>& stored, int64_t now_ms) {
    return stored && stored->expires_at_ms > now_ms ? &stored->state : nullptr;
  }

  static LimitRequest WithCost(LimitRequest request, int64_t cost) {
    request.cost = cost;
    return request;
  }

  void CheckPromises(const LimitRequest& request, const std::optional<Stored>& stored,
                     int64_t now_ms) {
    const Evaluation check = Evaluate(request, Live(stored, now_ms), now_ms, true);
    const Evaluation peek = Evaluate(request, Live(stored, now_ms), now_ms, false);
    const Decision& d = check.decision;
    EXPECT_EQ(peek.decision.allowed, d.allowed);
    EXPECT_EQ(peek.decision.remaining, d.remaining);
    EXPECT_EQ(peek.decision.reset_after_ms, d.reset_after_ms);
    EXPECT_EQ(peek.decision.retry_after_ms, d.retry_after_ms);
    EXPECT_FALSE(peek.write);
    EXPECT_EQ(check.write, d.allowed);
    EXPECT_GE(d.remaining, 0);
    EXPECT_LE(d.remaining, request.limit);

    if (!d.allowed && request.cost <= request.limit) {
      const int64_t t = d.retry_after_ms;
      ASSERT_GE(t, 1);
      const int64_t at = now_ms + t;
      EXPECT_TRUE(Evaluate(request, Live(stored, at), at, false).decision.allowed);
      if (t > 1) {
        EXPECT_FALSE(Evaluate(request, Live(stored, at - 1), at - 1, false).decision.allowed);
      }
    }

    // The state this answer describes: after spending if allowed.
    std::optional<Stored> after = stored;
    if (d.allowed) after = Stored{check.next, now_ms + check.ttl_ms};
    if (d.remaining > 0) {
      EXPECT_TRUE(Evaluate(WithCost(request, d.remaining), Live(after, now_ms), now_ms, false)
                      .decision.allowed);
    }
    EXPECT_FALSE(Evaluate(WithCost(request, d.remaining + 1), Live(after, now_ms), now_ms, false)
                     .decision.allowed);
    const LimitRequest whole = WithCost(request, request.limit);
    const int64_t reset_at = now_ms + d.reset_after_ms;
    EXPECT_TRUE(Evaluate(whole, Live(after, reset_at), reset_at, false).decision.allowed);
    if (d.reset_after_ms > 0) {
      EXPECT_FALSE(
          Evaluate(whole, Live(after, reset_at - 1), reset_at - 1, false).decision.allowed);
    }

    if (check.write) {
      ASSERT_GE(check.ttl_ms, 1);
      for (int64_t later : {int64_t{0}, int64_t{1}, request.id.window_ms}) {
        const int64_t at = now_ms + check.ttl_ms + later;
        for (int64_t cost : {int64_t{1}, request.limit}) {
          const Decision kept = Evaluate(WithCost(request, cost), &check.next, at, false).decision;
          const Decision forgotten = Evaluate(WithCost(request, cost), nullptr, at, false).decision;
          EXPECT_EQ(kept.allowed, forgotten.allowed);
          EXPECT_EQ(kept.remaining, forgotten.remaining);
          EXPECT_EQ(kept.reset_after_ms, forgotten.reset_after_ms);
          EXPECT_EQ(kept.retry_after_ms, forgotten.retry_after_ms);
        }
      }
    }
  }
};

TEST_P(AlgorithmPromisesTest, HoldOverRandomSequences) {
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const int64_t windows[] = {1, 2, 3, 10, 1000, 999'983, 60'000, kMaxWindowMs};
  for (int sequence = 0; sequence < 48; ++sequence) {
    const int64_t window_ms = windows[sequence % std::size(windows)];
    int64_t limit = sequence % 3 == 0   ? pick(1, 10)
                    : sequence % 3 == 1 ? pick(1, std::min<int64_t>(3 * window_ms, kMaxLimit))
                                        : pick(kMaxLimit - 1000, kMaxLimit);
    int64_t now_ms = 1'700'000'000'000 + pick(0, window_ms);
    std::optional<Stored> stored;
    for (int step = 0; step < 150; ++step) {
      SCOPED_TRACE(absl::StrCat("sequence ", sequence, " step ", step, " window ", window_ms));
      if (pick(0, 9) == 0) {
        limit = std::clamp<int64_t>(limit + pick(-limit / 2, limit), 1, kMaxLimit);
      }
      now_ms += pick(0, 2) == 0 ? 0 : pick(0, std::min<int64_t>(2 * window_ms, 100'000));
      const int64_t cost =
          pick(0, 4) == 0 ? pick(1, limit + 1) : pick(1, std::max<int64_t>(1, limit / 4));
      const LimitRequest request{AllowanceId{"k", GetParam(), window_ms}, limit, cost};
      SCOPED_TRACE(absl::StrCat("limit ", limit, " cost ", cost));
      CheckPromises(request, stored, now_ms);
      if (::testing::Test::HasFatalFailure()) return;

      // Spend, as a store would.
      const Evaluation e = Evaluate(request, Live(stored, now_ms), now_ms, true);
      if (e.write) stored = Stored{e.next, now_ms + e.ttl_ms};
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryAlgorithm, AlgorithmPromisesTest,
                         ::testing::Values(Algorithm::kFixedWindow, Algorithm::kSlidingWindow,
                                           Algorithm::kTokenBucket),
                         [](const ::testing::TestParamInfo<Algorithm>& info) {
                           return std::string(AlgorithmName(info.param));
                         });

}  // namespace
}  // namespace ratelimit
