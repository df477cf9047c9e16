#include "lib/algorithms.h"

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

}  // namespace
}  // namespace ratelimit
