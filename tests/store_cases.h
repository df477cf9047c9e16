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
