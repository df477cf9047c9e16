#include "lib/algorithms.h"

#include <algorithm>

namespace ratelimit {
namespace {

// Floor division for the window start, so that times before the epoch (only a fake clock
// produces them) still align.
int64_t WindowStart(int64_t now_ms, int64_t window_ms) {
  int64_t start = now_ms - now_ms % window_ms;
  if (now_ms % window_ms < 0) start -= window_ms;
  return start;
}

Evaluation EvaluateFixedWindow(const LimitRequest& request, const AllowanceState* current,
                               int64_t now_ms, bool spend) {
  const int64_t window_ms = request.id.window_ms;
  const int64_t start = WindowStart(now_ms, window_ms);
  const int64_t window_end = start + window_ms;

  // A count from an earlier window no longer applies.
  int64_t used = (current != nullptr && current->stamp_ms == start) ? current->count : 0;

  // Decide. Both sides stay below 2^54, so the subtraction cannot overflow; `used` may exceed
  // the limit when a caller lowered it.
  Evaluation result;
  const bool allowed = request.cost <= request.limit - used;
  if (allowed && spend) {
    used += request.cost;
    result.write = true;
    result.next = AllowanceState{start, used};
    result.ttl_ms = window_end - now_ms;
  }

  Decision& d = result.decision;
  d.allowed = allowed;
  d.limit = request.limit;
  d.remaining = std::max<int64_t>(0, request.limit - used - (allowed && !spend ? request.cost : 0));
  d.reset_after_ms = used > 0 || (allowed && !spend) ? window_end - now_ms : 0;
  d.retry_after_ms = allowed ? 0 : window_end - now_ms;
  return result;
}

}  // namespace

Evaluation Evaluate(const LimitRequest& request, const AllowanceState* current, int64_t now_ms,
                    bool spend) {
  switch (request.id.algorithm) {
    case Algorithm::kFixedWindow:
      return EvaluateFixedWindow(request, current, now_ms, spend);
    case Algorithm::kSlidingWindow:
    case Algorithm::kTokenBucket:
      break;
  }
  // The service refuses these algorithms before any store sees them.
  return Evaluation{};
}

}  // namespace ratelimit
