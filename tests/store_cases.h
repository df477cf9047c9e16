#ifndef RATELIMIT_TESTS_STORE_CASES_H_
#define RATELIMIT_TESTS_STORE_CASES_H_

// One table of decisions that every store must give alike. Each case is a sequence of steps
// against a fresh allowance, with a fake clock moved between steps.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lib/clock.h"
#include "lib/limit.h"

namespace ratelimit::testing {

struct Step {
  int64_t advance_ms;  // Moved before the step.
  int64_t limit;
  int64_t cost;
  bool spend;  // false: Peek.
  bool allowed;
  int64_t remaining;
  int64_t reset_after_ms;
  int64_t retry_after_ms;
};

struct StoreCase {
  std::string name;
  Algorithm algorithm;
  int64_t window_ms;
  std::vector<Step> steps;
};

// The clock starts 200 ms into a second, so 1 s windows end 800 ms later.
inline absl::Time CaseStart() { return absl::FromUnixMillis(1'700'000'000'200); }

inline std::vector<StoreCase> FixedWindowCases() {
  return {
      {"spends until the limit, then denies with the window's end",
       Algorithm::kFixedWindow,
       1000,
       {
           {0, 3, 1, true, true, 2, 800, 0},
           {0, 3, 1, true, true, 1, 800, 0},
           {100, 3, 1, true, true, 0, 700, 0},
           {0, 3, 1, true, false, 0, 700, 700},
       }},
      {"a denied check spends nothing and the next window starts whole",
       Algorithm::kFixedWindow,
       1000,
       {
           {0, 2, 2, true, true, 0, 800, 0},
           {0, 2, 1, true, false, 0, 800, 800},
           {0, 2, 1, true, false, 0, 800, 800},
           {800, 2, 1, true, true, 1, 1000, 0},
       }},
      {"peek answers what check would, spending nothing",
       Algorithm::kFixedWindow,
       1000,
       {
           {0, 5, 2, false, true, 3, 800, 0},
           {0, 5, 2, false, true, 3, 800, 0},
           {0, 5, 2, true, true, 3, 800, 0},
           {0, 5, 4, false, false, 3, 800, 800},
       }},
      {"cost above the limit is denied and spends nothing",
       Algorithm::kFixedWindow,
       1000,
       {
           {0, 3, 4, true, false, 3, 0, 800},
           {0, 3, 3, true, true, 0, 800, 0},
       }},
      // 1,700,000,000,200 is 20,200 ms into a minute.
      {"a lowered limit applies at once; a raised one never underflows",
       Algorithm::kFixedWindow,
       60'000,
       {
           {0, 10, 8, true, true, 2, 39'800, 0},
           {0, 5, 1, true, false, 0, 39'800, 39'800},
           {0, 20, 1, true, true, 11, 39'800, 0},
       }},
      {"a 1 ms window",
       Algorithm::kFixedWindow,
       1,
       {
           {0, 1, 1, true, true, 0, 1, 0},
           {0, 1, 1, true, false, 0, 1, 1},
           {1, 1, 1, true, true, 0, 1, 0},
       }},
      {"limits near 2^53 stay exact",
       Algorithm::kFixedWindow,
       1000,
       {
           {0, kMaxLimit, kMaxLimit - 1, true, true, 1, 800, 0},
           {0, kMaxLimit, 2, true, false, 1, 800, 800},
           {0, kMaxLimit, 1, true, true, 0, 800, 0},
       }},
  };
}

// Sliding window: the sliding window is the last `window` whole ms, now included, so at a time
// `e` ms into a window, window - 1 - e ms of the previous window still count ("overlap"). The
// clock starts 200 ms into a second: overlap 799 for 1 s windows.
inline std::vector<StoreCase> SlidingWindowCases() {
  return {
      {"the previous window's count weighs by how much of it still overlaps",
       Algorithm::kSlidingWindow,
       1000,
       {
           {0, 4, 4, true, true, 0, 1799, 0},
           // Next window, overlap 999: ceil(4 * 999 / 1000) = 4 still count; 1 fits once
           // 4 * overlap <= 3 * 1000, at overlap 750, 249 ms on.
           {800, 4, 1, true, false, 0, 999, 249},
           {248, 4, 1, true, false, 0, 751, 1},
           {1, 4, 1, true, true, 0, 1750, 0},
           // Overlap 250: ceil(4 * 250 / 1000) = 1, so 2 more fit.
           {500, 4, 2, true, true, 0, 1250, 0},
           // The next window sees 3 * 999 / 1000, rounded up to 3.
           {251, 4, 1, false, true, 0, 1999, 0},
           // Two windows on, nothing is left.
           {2000, 4, 1, true, true, 3, 1999, 0},
       }},
      {"everything spent at the end of a window still counts at the start of the next",
       Algorithm::kSlidingWindow,
       1000,
       {
           {799, 10, 10, true, true, 0, 1000, 0},
           {1, 10, 1, true, false, 0, 999, 99},
           {99, 10, 1, true, true, 0, 1900, 0},
       }},
      {"a denied check spends nothing; a cost above the limit is told the window's end",
       Algorithm::kSlidingWindow,
       1000,
       {
           {0, 3, 4, true, false, 3, 0, 800},
           {0, 3, 3, true, true, 0, 1799, 0},
           // 1 fits in the next window once 3 * overlap <= 2 * 1000: overlap 666, at 1133 ms.
           {0, 3, 1, true, false, 0, 1799, 1133},
           {0, 3, 1, true, false, 0, 1799, 1133},
           {1133, 3, 1, true, true, 0, 1666, 0},
       }},
      {"peek answers what check would, spending nothing",
       Algorithm::kSlidingWindow,
       1000,
       {
           {0, 5, 2, false, true, 3, 1799, 0},
           {0, 5, 2, false, true, 3, 1799, 0},
           {0, 5, 2, true, true, 3, 1799, 0},
           {0, 5, 4, false, false, 3, 1799, 1299},
       }},
      // 1,700,000,000,200 is 20,200 ms into a minute: overlap 39,799.
      {"a lowered limit applies at once; a raised one never underflows",
       Algorithm::kSlidingWindow,
       60'000,
       {
           {0, 10, 8, true, true, 2, 99'799, 0},
           {0, 5, 1, true, false, 0, 99'799, 69'799},
           {0, 20, 1, true, true, 11, 99'799, 0},
           // Next minute: ceil(9 * 59,999 / 60,000) = 9 still count against a limit of 5.
           {39'800, 5, 1, true, false, 0, 59'999, 33'333},
       }},
      {"a 1 ms window is a fixed window",
       Algorithm::kSlidingWindow,
       1,
       {
           {0, 1, 1, true, true, 0, 1, 0},
           {0, 1, 1, true, false, 0, 1, 1},
           {1, 1, 1, true, true, 0, 1, 0},
       }},
      // ceil((2^53 - 2) * 999 / 1000) = 8,998,192,055,486,250: the product passes 2^63.
      {"limits near 2^53 stay exact",
       Algorithm::kSlidingWindow,
       1000,
       {
           {799, kMaxLimit, kMaxLimit - 1, true, true, 1, 1000, 0},
           {1, kMaxLimit, 9'007'199'254'742, true, false, 9'007'199'254'741, 999, 1},
           {0, kMaxLimit, 9'007'199'254'741, true, true, 0, 1999, 0},
       }},
  };
}

// Token bucket (GCRA): `limit` tokens per `window`, a burst of `limit`; each token moves the
// theoretical arrival time (TAT) on by window / limit ms.
inline std::vector<StoreCase> TokenBucketCases() {
  return {
      {"a burst of the limit, then one token per window / limit",
       Algorithm::kTokenBucket,
       1000,
       {
           // Each token is 333 1/3 ms of backlog.
           {0, 3, 1, true, true, 2, 334, 0},
           {0, 3, 1, true, true, 1, 667, 0},
           {0, 3, 1, true, true, 0, 1000, 0},
           {0, 3, 1, true, false, 0, 1000, 334},
           {333, 3, 1, true, false, 0, 667, 1},
           {1, 3, 1, true, true, 0, 1000, 0},
           // The TAT (1333 1/3 ms on) has passed: the bucket is full again.
           {1000, 3, 3, true, true, 0, 1000, 0},
       }},
      {"a denied check spends nothing; a cost above the limit is told a whole window",
       Algorithm::kTokenBucket,
       1000,
       {
           {0, 2, 3, true, false, 2, 0, 1000},
           {0, 2, 2, true, true, 0, 1000, 0},
           {0, 2, 1, true, false, 0, 1000, 500},
           {0, 2, 1, true, false, 0, 1000, 500},
           {500, 2, 1, true, true, 0, 1000, 0},
       }},
      {"peek answers what check would, spending nothing",
       Algorithm::kTokenBucket,
       1000,
       {
           {0, 5, 2, false, true, 3, 400, 0},
           {0, 5, 2, false, true, 3, 400, 0},
           {0, 5, 2, true, true, 3, 400, 0},
           {0, 5, 4, false, false, 3, 400, 200},
       }},
      // The TAT stays put, so the bucket keeps its share of fullness under the new limit, and
      // refills at the new rate at once.
      {"a lowered limit applies at once; a raised one never underflows",
       Algorithm::kTokenBucket,
       60'000,
       {
           {0, 10, 8, true, true, 2, 48'000, 0},
           {0, 20, 1, false, true, 3, 51'000, 0},
           {0, 5, 1, true, true, 0, 60'000, 0},
           {0, 5, 1, true, false, 0, 60'000, 12'000},
           {0, 20, 1, true, false, 0, 60'000, 3'000},
           {3'000, 20, 1, true, true, 0, 60'000, 0},
       }},
      {"thirds of a millisecond add up exactly across a limit change",
       Algorithm::kTokenBucket,
       1000,
       {
           {0, 3, 2, true, true, 1, 667, 0},
           // The 333 1/3 ms left are exactly 2 tokens at 6 per second.
           {0, 6, 2, false, true, 0, 1000, 0},
           {0, 6, 3, true, false, 2, 667, 167},
           {0, 7, 2, false, true, 0, 953, 0},
       }},
      {"an emission interval below 1 ms",
       Algorithm::kTokenBucket,
       1000,
       {
           {0, 3000, 1, true, true, 2999, 1, 0},
           {0, 3000, 2999, true, true, 0, 1000, 0},
           {0, 3000, 1, true, false, 0, 1000, 1},
           {1, 3000, 3, true, true, 0, 1000, 0},
           {0, 3000, 1, true, false, 0, 1000, 1},
       }},
      // (2^53 - 2) * 1000 / (2^53 - 1) = 999 + (2^53 - 1001) / (2^53 - 1) ms.
      {"limits near 2^53 stay exact",
       Algorithm::kTokenBucket,
       1000,
       {
           {0, kMaxLimit, kMaxLimit - 1, true, true, 1, 1000, 0},
           {0, kMaxLimit, 2, true, false, 1, 1000, 1},
           {0, kMaxLimit, 1, true, true, 0, 1000, 0},
           {1, kMaxLimit, 9'007'199'254'740, false, true, 0, 1000, 0},
           {0, kMaxLimit, 9'007'199'254'741, false, false, 9'007'199'254'740, 999, 1},
       }},
      {"the longest window with the largest limit",
       Algorithm::kTokenBucket,
       kMaxWindowMs,
       {
           {0, kMaxLimit, 1, true, true, kMaxLimit - 1, 1, 0},
           {0, kMaxLimit, kMaxLimit - 1, true, true, 0, kMaxWindowMs, 0},
           {0, kMaxLimit, 1, true, false, 0, kMaxWindowMs, 1},
       }},
  };
}

// Runs every case through `decide`, a store's check for one request at the clock's time.
inline void RunStoreCases(const std::vector<StoreCase>& cases, FakeClock& clock,
                          const std::function<Decision(const LimitRequest&, bool)>& decide) {
  int case_number = 0;
  for (const StoreCase& c : cases) {
    SCOPED_TRACE(c.name);
    clock.Set(CaseStart());
    const std::string key = "case:" + std::to_string(case_number++);
    int step_number = 0;
    for (const Step& step : c.steps) {
      SCOPED_TRACE("step " + std::to_string(step_number++));
      clock.Advance(absl::Milliseconds(step.advance_ms));
      LimitRequest request{AllowanceId{key, c.algorithm, c.window_ms}, step.limit, step.cost};
      Decision d = decide(request, step.spend);
      EXPECT_EQ(d.allowed, step.allowed);
      EXPECT_EQ(d.limit, step.limit);
      EXPECT_EQ(d.remaining, step.remaining);
      EXPECT_EQ(d.reset_after_ms, step.reset_after_ms);
      EXPECT_EQ(d.retry_after_ms, step.retry_after_ms);
    }
  }
}

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_STORE_CASES_H_
