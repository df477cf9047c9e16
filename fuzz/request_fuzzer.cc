// Fuzzes request validation and the decision functions: any wire input either fails
// validation with INVALID_ARGUMENT or yields a decision that keeps every invariant, in a
// memory store that never passes its bound.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "lib/algorithms.h"
#include "lib/limit.h"
#include "lib/memory_store.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

void CheckInvariants(const ratelimit::LimitRequest& request, const ratelimit::Decision& d) {
  Require(d.limit == request.limit);
  Require(d.remaining >= 0 && d.remaining <= request.limit);
  Require(d.reset_after_ms >= 0);
  Require(d.retry_after_ms >= 0);
  Require(d.allowed == (d.retry_after_ms == 0));
  Require(d.reset_after_ms <= 2 * request.id.window_ms);
  Require(d.retry_after_ms <= 2 * request.id.window_ms ||
          request.id.algorithm == ratelimit::Algorithm::kTokenBucket);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ratelimit::FakeClock clock(
      absl::FromUnixMillis(in.ConsumeIntegralInRange<int64_t>(0, int64_t{4'000'000'000'000})));
  ratelimit::MemoryStore store(clock, {.max_entries = in.ConsumeIntegralInRange<int64_t>(1, 8),
                                       .sweep_interval = absl::ZeroDuration()});
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(in.ConsumeRandomLengthString(1100));

  while (in.remaining_bytes() > 0) {
    const std::string& key = keys[in.ConsumeIntegralInRange<size_t>(0, keys.size() - 1)];
    ratelimit::WireDuration window{in.ConsumeBool(), in.ConsumeIntegral<int64_t>(),
                                   in.ConsumeIntegral<int32_t>()};
    if (in.ConsumeBool()) window.seconds = in.ConsumeIntegralInRange<int64_t>(0, 100);
    if (in.ConsumeBool()) window.nanos = in.ConsumeIntegralInRange<int32_t>(0, 999) * 1'000'000;
    const int64_t limit = in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(-2, 100)
                                           : in.ConsumeIntegral<int64_t>();
    const int64_t cost = in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(-1, 100)
                                          : in.ConsumeIntegral<int64_t>();
    const int algorithm = in.ConsumeIntegralInRange<int>(-1, 4);

    absl::StatusOr<ratelimit::LimitRequest> request =
        ratelimit::MakeLimitRequest(key, limit, window, cost, algorithm);
    if (!request.ok()) {
      Require(request.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    clock.Advance(absl::Milliseconds(in.ConsumeIntegralInRange<int64_t>(0, 5000)));
    const int64_t before = store.size();
    const ratelimit::Decision d = store.Check(*request, in.ConsumeBool());
    CheckInvariants(*request, d);
    Require(store.size() <= store.max_size());
    if (!d.allowed) Require(store.size() == before);
  }
  return 0;
}
