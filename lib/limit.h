#ifndef RATELIMIT_LIB_LIMIT_H_
#define RATELIMIT_LIB_LIMIT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratelimit {

// Numbers match the wire enum so conversions are casts.
enum class Algorithm : int { kFixedWindow = 1, kSlidingWindow = 2, kTokenBucket = 3 };
enum class Source : int { kRedis = 1, kMemory = 2 };

inline constexpr int64_t kMaxKeyBytes = 1024;
inline constexpr int64_t kMinWindowMs = 1;
inline constexpr int64_t kMaxWindowMs = int64_t{366} * 24 * 3600 * 1000;
// Redis runs the decision in Lua, whose numbers are doubles: integers above 2^53 would be
// rounded, so limits stop there.
inline constexpr int64_t kMaxLimit = (int64_t{1} << 53) - 1;

// Names one allowance. `key` is a view: whoever builds an AllowanceId keeps the bytes alive for
// as long as the id is used.
struct AllowanceId {
  absl::string_view key;
  Algorithm algorithm = Algorithm::kFixedWindow;
  int64_t window_ms = 0;
};

// A validated request to spend from an allowance.
struct LimitRequest {
  AllowanceId id;
  int64_t limit = 0;
  // At least 1; may exceed `limit`, in which case the request is simply denied.
  int64_t cost = 1;
};

// The answer to a check. Being over the limit is a decision, not an error.
struct Decision {
  bool allowed = false;
  int64_t limit = 0;
  int64_t remaining = 0;
  int64_t reset_after_ms = 0;
  int64_t retry_after_ms = 0;
  Source source = Source::kMemory;
};

// A window as it arrives on the wire: google.protobuf.Duration's fields.
struct WireDuration {
  bool present = false;
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// Validates the wire fields of a check. Errors are InvalidArgument with a message that names
// the field. `algorithm` is the raw enum number, since callers may send numbers the enum lacks.
absl::StatusOr<LimitRequest> MakeLimitRequest(absl::string_view key, int64_t limit,
                                              const WireDuration& window, int64_t cost,
                                              int algorithm);

// Validates the wire fields of a reset, with the same rules as a check for the shared fields.
absl::StatusOr<AllowanceId> MakeAllowanceId(absl::string_view key, const WireDuration& window,
                                            int algorithm);

absl::string_view AlgorithmName(Algorithm algorithm);
absl::string_view SourceName(Source source);

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_LIMIT_H_
