#include "lib/limit.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ratelimit {
namespace {

absl::StatusOr<int64_t> WindowMillis(const WireDuration& window) {
  if (!window.present) return absl::InvalidArgumentError("window: required");
  if (window.nanos <= -1'000'000'000 || window.nanos >= 1'000'000'000 ||
      (window.seconds > 0 && window.nanos < 0) || (window.seconds < 0 && window.nanos > 0)) {
    return absl::InvalidArgumentError("window: not a valid duration");
  }
  if (window.seconds < 0 || window.nanos < 0 || (window.seconds == 0 && window.nanos == 0)) {
    return absl::InvalidArgumentError("window: must be positive");
  }
  // Compare seconds before multiplying so that huge values cannot overflow.
  if (window.seconds > kMaxWindowMs / 1000) {
    return absl::InvalidArgumentError("window: must be at most 366 days");
  }
  if (window.nanos % 1'000'000 != 0) {
    return absl::InvalidArgumentError(
        "window: must be a whole number of milliseconds (at least 1ms)");
  }
  const int64_t ms = window.seconds * 1000 + window.nanos / 1'000'000;
  if (ms > kMaxWindowMs) return absl::InvalidArgumentError("window: must be at most 366 days");
  return ms;
}

absl::StatusOr<Algorithm> ParseAlgorithm(int algorithm) {
  switch (algorithm) {
    case 0:
    case 1:
      return Algorithm::kFixedWindow;
    case 2:
      return Algorithm::kSlidingWindow;
    case 3:
      return Algorithm::kTokenBucket;
    default:
      return absl::InvalidArgumentError(absl::StrCat("algorithm: unknown value ", algorithm));
  }
}

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("key: must not be empty");
  if (static_cast<int64_t>(key.size()) > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: ", key.size(), " bytes is longer than the maximum of ", kMaxKeyBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AllowanceId> MakeAllowanceId(absl::string_view key, const WireDuration& window,
                                            int algorithm) {
  if (absl::Status s = ValidateKey(key); !s.ok()) return s;
  absl::StatusOr<int64_t> window_ms = WindowMillis(window);
  if (!window_ms.ok()) return window_ms.status();
  absl::StatusOr<Algorithm> parsed = ParseAlgorithm(algorithm);
  if (!parsed.ok()) return parsed.status();
  return AllowanceId{key, *parsed, *window_ms};
}

absl::StatusOr<LimitRequest> MakeLimitRequest(absl::string_view key, int64_t limit,
                                              const WireDuration& window, int64_t cost,
                                              int algorithm) {
  absl::StatusOr<AllowanceId> id = MakeAllowanceId(key, window, algorithm);
  if (!id.ok()) return id.status();
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  if (limit > kMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit: must be at most ", kMaxLimit));
  }
  if (cost < 0) return absl::InvalidArgumentError("cost: must not be negative");

  // A cost above the limit can never fit; clamping keeps the arithmetic exact in every store
  // without changing the answer.
  LimitRequest request{*id, limit, cost == 0 ? 1 : cost};
  if (request.cost > limit) request.cost = limit + 1;
  return request;
}

absl::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kFixedWindow:
      return "fixed_window";
    case Algorithm::kSlidingWindow:
      return "sliding_window";
    case Algorithm::kTokenBucket:
      return "token_bucket";
  }
  return "unknown";
}

absl::string_view SourceName(Source source) {
  return source == Source::kRedis ? "redis" : "memory";
}

}  // namespace ratelimit
