#ifndef RATELIMIT_LIB_ALGORITHMS_H_
#define RATELIMIT_LIB_ALGORITHMS_H_

#include <cstdint>

#include "lib/limit.h"

namespace ratelimit {

// What a store keeps for one allowance. The meaning of the fields depends on the algorithm:
//   fixed window:   `stamp_ms` is the start of the window `count` belongs to.
//   sliding window: `stamp_ms` is the start of the window `count` belongs to, and `previous`
//                   is the count of the window just before it.
//   token bucket:   the theoretical arrival time (GCRA) is exactly
//                   `stamp_ms` + `count` / `per` ms, with 0 <= `count` < `per`, where `per` is
//                   the limit the state was written under: the emission interval
//                   window / limit is a whole number of 1/limit ms, so every step is exact.
// The Redis scripts keep the same fields in a hash, so both stores decide alike.
struct AllowanceState {
  int64_t stamp_ms = 0;
  int64_t count = 0;
  int64_t previous = 0;
  int64_t per = 0;
};

// The result of evaluating one request against one allowance.
struct Evaluation {
  Decision decision;  // `source` is left for the store to fill in.
  // True when `next` must be stored; false leaves the stored state as it was.
  bool write = false;
  AllowanceState next;
  // How long `next` matters; the store may forget it after this.
  int64_t ttl_ms = 0;
};

// Decides `request` against `current` (null when the store holds nothing) at `now_ms`, spending
// only when `spend` is true and the request fits. Pure: both stores call it or mirror it.
Evaluation Evaluate(const LimitRequest& request, const AllowanceState* current, int64_t now_ms,
                    bool spend);

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_ALGORITHMS_H_
