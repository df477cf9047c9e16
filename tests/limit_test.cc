#include "lib/limit.h"

#include <cstdint>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace ratelimit {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

struct ValidationCase {
  std::string name;
  std::string key;
  int64_t limit;
  WireDuration window;
  int64_t cost;
  int algorithm;
  // Empty: valid. Otherwise a substring of the InvalidArgument message (the field's name).
  std::string error;
};

WireDuration Seconds(int64_t s, int32_t nanos = 0) { return WireDuration{true, s, nanos}; }

TEST(MakeLimitRequestTest, AcceptsAndRejectsPerTheRules) {
  const int64_t kDay = 86400;
  const std::vector<ValidationCase> cases = {
      {"plain", "user:1", 10, Seconds(60), 1, 1, ""},
      {"empty key", "", 10, Seconds(60), 1, 1, "key"},
      {"key of 1024 bytes", std::string(1024, 'k'), 10, Seconds(60), 1, 1, ""},
      {"key of 1025 bytes", std::string(1025, 'k'), 10, Seconds(60), 1, 1, "key"},
      {"key with colons, spaces, braces, UTF-8", "a:{b} c\xc3\xa9", 10, Seconds(1), 1, 1, ""},
      {"zero limit", "k", 0, Seconds(60), 1, 1, "limit"},
      {"negative limit", "k", -5, Seconds(60), 1, 1, "limit"},
      {"limit at the maximum", "k", kMaxLimit, Seconds(60), 1, 1, ""},
      {"limit at INT64_MAX", "k", kMax, Seconds(60), 1, 1, "limit"},
      {"missing window", "k", 10, WireDuration{}, 1, 1, "window"},
      {"zero window", "k", 10, Seconds(0), 1, 1, "window"},
      {"negative window", "k", 10, Seconds(-1), 1, 1, "window"},
      {"window of 1ms", "k", 10, Seconds(0, 1'000'000), 1, 1, ""},
      {"window under 1ms", "k", 10, Seconds(0, 999'999), 1, 1, "window"},
      {"window with sub-millisecond part", "k", 10, Seconds(1, 1), 1, 1, "window"},
      {"window of 366 days", "k", 10, Seconds(366 * kDay), 1, 1, ""},
      {"window just over 366 days", "k", 10, Seconds(366 * kDay, 1'000'000), 1, 1, "window"},
      {"window of INT64_MAX seconds", "k", 10, Seconds(kMax), 1, 1, "window"},
      {"window with out-of-range nanos", "k", 10, Seconds(1, 1'000'000'000), 1, 1, "window"},
      {"window with mixed signs", "k", 10, Seconds(1, -1'000'000), 1, 1, "window"},
      {"negative cost", "k", 10, Seconds(60), -1, 1, "cost"},
      {"zero cost", "k", 10, Seconds(60), 0, 1, ""},
      {"cost at INT64_MAX", "k", 10, Seconds(60), kMax, 1, ""},
      {"unspecified algorithm", "k", 10, Seconds(60), 1, 0, ""},
      {"sliding window", "k", 10, Seconds(60), 1, 2, ""},
      {"token bucket", "k", 10, Seconds(60), 1, 3, ""},
      {"unknown algorithm", "k", 10, Seconds(60), 1, 4, "algorithm"},
      {"negative algorithm", "k", 10, Seconds(60), 1, -1, "algorithm"},
  };
  for (const ValidationCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<LimitRequest> request =
        MakeLimitRequest(c.key, c.limit, c.window, c.cost, c.algorithm);
    if (c.error.empty()) {
      EXPECT_TRUE(request.ok()) << request.status();
    } else {
      ASSERT_FALSE(request.ok());
      EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(request.status().message().find(c.error), absl::string_view::npos)
          << request.status().message();
    }
  }
}

TEST(MakeLimitRequestTest, NormalisesCostAndAlgorithm) {
  absl::StatusOr<LimitRequest> zero_cost = MakeLimitRequest("k", 10, Seconds(60), 0, 0);
  ASSERT_TRUE(zero_cost.ok());
  EXPECT_EQ(zero_cost->cost, 1);
  EXPECT_EQ(zero_cost->id.algorithm, Algorithm::kFixedWindow);
  EXPECT_EQ(zero_cost->id.window_ms, 60'000);

  // A cost that can never fit is clamped to one past the limit: still denied, no overflow.
  absl::StatusOr<LimitRequest> huge = MakeLimitRequest("k", 10, Seconds(60), kMax, 1);
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(huge->cost, 11);
}

TEST(MakeAllowanceIdTest, ValidatesSharedFields) {
  EXPECT_TRUE(MakeAllowanceId("k", Seconds(1), 1).ok());
  EXPECT_EQ(MakeAllowanceId("", Seconds(1), 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeAllowanceId("k", WireDuration{}, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeAllowanceId("k", Seconds(1), 9).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ratelimit
