// How closely each algorithm holds traffic to its limit over time: the memory store with a fake
// clock, fed whole schedules of calls, and the admitted calls measured against the bounds the
// README documents.

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/clock.h"
#include "lib/memory_store.h"

namespace ratelimit {
namespace {

constexpr int64_t kSecond = 1000;
// A whole second, so that 1 s windows start at offset 0.
constexpr int64_t kStartMs = 1'700'000'000'000;

// One call of a schedule, at `at_ms` after kStartMs.
struct Call {
  int64_t at_ms;
  int64_t limit;
};

class AccuracyTest : public ::testing::Test {
 protected:
  AccuracyTest()
      : clock_(absl::FromUnixMillis(kStartMs)),
        store_(clock_, MemoryStore::Options{.sweep_interval = absl::ZeroDuration()}) {}

  // Runs the calls (in time order, cost 1) against one allowance and returns when each admitted
  // call came, in ms after kStartMs. Every answer must keep `remaining` within [0, limit].
  std::vector<int64_t> Admitted(Algorithm algorithm, int64_t window_ms,
                                const std::vector<Call>& calls) {
    const std::string key = absl::StrCat("accuracy:", next_key_++);
    std::vector<int64_t> admitted;
    for (const Call& call : calls) {
      clock_.Set(absl::FromUnixMillis(kStartMs + call.at_ms));
      const Decision d =
          store_.Check(LimitRequest{AllowanceId{key, algorithm, window_ms}, call.limit, 1}, true);
      EXPECT_GE(d.remaining, 0);
      EXPECT_LE(d.remaining, call.limit);
      if (d.allowed) admitted.push_back(call.at_ms);
    }
    return admitted;
  }

  FakeClock clock_;
  MemoryStore store_;
  int next_key_ = 0;
};

// Calls at `from_ms`, `from_ms + every_ms`, ... before `to_ms`, all with `limit`.
std::vector<Call> Every(int64_t every_ms, int64_t from_ms, int64_t to_ms, int64_t limit) {
  std::vector<Call> calls;
  for (int64_t t = from_ms; t < to_ms; t += every_ms) calls.push_back({t, limit});
  return calls;
}

std::vector<Call> Concat(std::vector<Call> a, const std::vector<Call>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The most admitted in any `span_ms` consecutive milliseconds.
int64_t MostInAnySpan(const std::vector<int64_t>& admitted, int64_t span_ms) {
  int64_t most = 0;
  size_t first = 0;
  for (size_t last = 0; last < admitted.size(); ++last) {
    while (admitted[last] - admitted[first] >= span_ms) ++first;
    most = std::max<int64_t>(most, static_cast<int64_t>(last - first + 1));
  }
  return most;
}

// The most admitted in any one epoch-aligned window.
int64_t MostInAnAlignedWindow(const std::vector<int64_t>& admitted, int64_t window_ms) {
  int64_t most = 0;
  int64_t current_window = -1;
  int64_t count = 0;
  for (int64_t t : admitted) {
    if (t / window_ms != current_window) {
      current_window = t / window_ms;
      count = 0;
    }
    most = std::max(most, ++count);
  }
  return most;
}

int64_t CountIn(const std::vector<int64_t>& admitted, int64_t from_ms, int64_t to_ms) {
  return std::count_if(admitted.begin(), admitted.end(),
                       [&](int64_t t) { return t >= from_ms && t < to_ms; });
}

// The documented bound of the sliding window and the token bucket: in any d consecutive ms,
// at most a whole burst plus what d - 1 ms refill.
int64_t BurstPlusRefill(int64_t limit, int64_t window_ms, int64_t span_ms) {
  return limit + limit * (span_ms - 1) / window_ms;
}

TEST_F(AccuracyTest, SlidingWindowDeniesAtTheNextWindowWhatTheFixedWindowAllows) {
  // Ten calls in the last ms of a window, ten more in the first ms of the next.
  std::vector<Call> calls;
  for (int i = 0; i < 10; ++i) calls.push_back({kSecond - 1, 10});
  for (int i = 0; i < 10; ++i) calls.push_back({kSecond, 10});

  const std::vector<int64_t> fixed = Admitted(Algorithm::kFixedWindow, kSecond, calls);
  const std::vector<int64_t> sliding = Admitted(Algorithm::kSlidingWindow, kSecond, calls);
  EXPECT_EQ(fixed.size(), 20u) << "the fixed window admits twice its limit in 2 ms";
  EXPECT_EQ(CountIn(sliding, 0, kSecond), 10);
  EXPECT_EQ(CountIn(sliding, kSecond, 2 * kSecond), 0)
      << "all ten still count at the start of the next window";
}

TEST_F(AccuracyTest, TokenBucketAtThreePerSecondAdmitsTheBurstPlusTheRefill) {
  // One call every 100 ms for 3 s: calls at 0 to 2900 ms.
  const std::vector<int64_t> admitted =
      Admitted(Algorithm::kTokenBucket, kSecond, Every(100, 0, 3 * kSecond, 3));

  // A burst of 3, then a token every 333 1/3 ms: 2900 ms refill 8.
  EXPECT_EQ(admitted.size(), 3u + 3 * 2900 / 1000);
  EXPECT_EQ(admitted,
            (std::vector<int64_t>{0, 100, 200, 400, 700, 1000, 1400, 1700, 2000, 2400, 2700}));
  EXPECT_LE(MostInAnySpan(admitted, kSecond), BurstPlusRefill(3, kSecond, kSecond));
  EXPECT_LT(MostInAnySpan(admitted, kSecond), 2 * 3);
  // After the first burst, never more than the limit in any second.
  const std::vector<int64_t> settled(admitted.begin() + 3, admitted.end());
  EXPECT_LE(MostInAnySpan(settled, kSecond), 3);
}

// A caller at 100 per second, calling every ms, is lowered to 10 per second half-way through a
// window: from then on every algorithm holds it to the new limit's bound, at once.
TEST_F(AccuracyTest, LoweringTheLimitTakesEffectAtOnce) {
  const int64_t change = 3 * kSecond + 500;
  const std::vector<Call> calls =
      Concat(Every(1, 0, change, 100), Every(1, change, change + 3 * kSecond, 10));
  for (Algorithm algorithm :
       {Algorithm::kFixedWindow, Algorithm::kSlidingWindow, Algorithm::kTokenBucket}) {
    SCOPED_TRACE(AlgorithmName(algorithm));
    const std::vector<int64_t> admitted = Admitted(algorithm, kSecond, calls);
    EXPECT_GE(CountIn(admitted, change - kSecond, change), 90) << "100 per second before";

    std::vector<int64_t> after;
    for (int64_t t : admitted) {
      if (t >= change) after.push_back(t);
    }
    // Whatever was spent before, the new limit's bound holds from the change on.
    EXPECT_LE(MostInAnySpan(after, kSecond), BurstPlusRefill(10, kSecond, kSecond));
    EXPECT_LE(static_cast<int64_t>(after.size()), BurstPlusRefill(10, kSecond, 3 * kSecond));
    if (algorithm != Algorithm::kTokenBucket) {
      // The counters had already spent more than 10 in the changed window.
      EXPECT_EQ(CountIn(admitted, change, 4 * kSecond), 0);
    }
  }
}

// The reverse: 10 per second, raised to 100. The new limit applies at once and `remaining`
// (checked on every answer) never leaves [0, limit].
TEST_F(AccuracyTest, RaisingTheLimitTakesEffectAtOnceWithoutUnderflow) {
  const int64_t change = 3 * kSecond + 500;
  const std::vector<Call> calls =
      Concat(Every(1, 0, change, 10), Every(1, change, change + 3 * kSecond, 100));
  for (Algorithm algorithm :
       {Algorithm::kFixedWindow, Algorithm::kSlidingWindow, Algorithm::kTokenBucket}) {
    SCOPED_TRACE(AlgorithmName(algorithm));
    const std::vector<int64_t> admitted = Admitted(algorithm, kSecond, calls);
    EXPECT_LE(CountIn(admitted, change - kSecond, change), 10);
    EXPECT_GE(CountIn(admitted, change, change + kSecond), 90) << "100 per second at once";
    std::vector<int64_t> after;
    for (int64_t t : admitted) {
      if (t >= change) after.push_back(t);
    }
    const int64_t bound =
        algorithm == Algorithm::kFixedWindow ? 2 * 100 : BurstPlusRefill(100, kSecond, kSecond);
    EXPECT_LE(MostInAnySpan(after, kSecond), bound);
  }
}

// Random (Poisson) arrivals over 200 windows, at twice the limit and at half of it.
TEST_F(AccuracyTest, RandomArrivalsStayWithinEachAlgorithmsBound) {
  constexpr int64_t kLimit = 50;
  constexpr int64_t kWindows = 200;
  constexpr int64_t kDuration = kWindows * kSecond;
  for (double demand : {2.0, 0.5}) {
    SCOPED_TRACE(absl::StrCat("demand ", demand, " x the limit"));
    std::mt19937_64 rng(demand > 1 ? 1 : 2);
    std::exponential_distribution<double> gap(demand * kLimit / kSecond);
    std::vector<Call> calls;
    for (double t = gap(rng); t < kDuration; t += gap(rng)) {
      calls.push_back({static_cast<int64_t>(t), kLimit});
    }
    const int64_t ideal = kLimit * kWindows;
    const int64_t offered = static_cast<int64_t>(calls.size());

    for (Algorithm algorithm :
         {Algorithm::kFixedWindow, Algorithm::kSlidingWindow, Algorithm::kTokenBucket}) {
      SCOPED_TRACE(AlgorithmName(algorithm));
      const std::vector<int64_t> admitted = Admitted(algorithm, kSecond, calls);
      const int64_t total = static_cast<int64_t>(admitted.size());

      // Upper bounds: never more than the ideal rate plus one burst, over any span.
      EXPECT_LE(total, BurstPlusRefill(kLimit, kSecond, kDuration));
      if (algorithm == Algorithm::kFixedWindow) {
        EXPECT_LE(MostInAnAlignedWindow(admitted, kSecond), kLimit);
        EXPECT_LE(MostInAnySpan(admitted, kSecond), 2 * kLimit);
      } else {
        for (int64_t span : {int64_t{10}, int64_t{100}, kSecond, 10 * kSecond}) {
          SCOPED_TRACE(absl::StrCat("span ", span, " ms"));
          EXPECT_LE(MostInAnySpan(admitted, span), BurstPlusRefill(kLimit, kSecond, span));
        }
      }
      if (algorithm == Algorithm::kSlidingWindow) {
        EXPECT_LE(MostInAnAlignedWindow(admitted, kSecond), kLimit);
      }

      // Lower bounds, measured rather than proven: under twice the limit each admits nearly
      // the ideal; under half of it, nearly everything.
      if (demand > 1) {
        EXPECT_GE(total, ideal * 95 / 100) << total << " of an ideal " << ideal;
      } else {
        EXPECT_GE(total, offered * 99 / 100) << total << " of " << offered << " offered";
      }
    }
  }
}

}  // namespace
}  // namespace ratelimit
