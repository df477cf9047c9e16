#include "lib/algorithms.h"

#include <algorithm>

namespace ratelimit {
namespace {

// Limits stay below 2^53 and windows below 2^35, but their products do not fit in 64 bits, so
// the few products below are taken in 128 bits. The Lua scripts reach the same exact results
// with doubles (see muldivmod in redis_scripts.h).
using Wide = __int128;

struct QuotientRemainder {
  int64_t quotient;
  int64_t remainder;
};

// floor(a * b / c) and (a * b) mod c, for a, b >= 0 and c > 0 whose quotient fits in 64 bits.
QuotientRemainder MulDivMod(int64_t a, int64_t b, int64_t c) {
  const Wide product = Wide{a} * b;
  return {static_cast<int64_t>(product / c), static_cast<int64_t>(product % c)};
}

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
    result.next = AllowanceState{.stamp_ms = start, .count = used};
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

// How long until `cost` fits in a sliding window that holds `used` in the current window and
// `previous` in the one before, when `overlap` ms of the previous window still count, if nobody
// spends meanwhile. Only called when it does not fit now.
int64_t SlidingRetryAfter(const LimitRequest& request, int64_t used, int64_t previous,
                          int64_t overlap) {
  const int64_t window_ms = request.id.window_ms;
  // Never fits; answer the window's end, as the fixed window does.
  if (request.cost > request.limit) return overlap + 1;

  // It fits in this window once the previous window's share has shrunk to `room`: at the first
  // overlap v with previous * v <= room * window. Here room < previous, so previous > 0.
  const int64_t room = request.limit - used - request.cost;
  if (room >= 0) return overlap - MulDivMod(room, window_ms, previous).quotient;

  // Otherwise only once this window's count has become the previous one and slid out far
  // enough: the same rule with `used` as the previous count. Here used > limit - cost >= 0.
  return overlap + window_ms - MulDivMod(request.limit - request.cost, window_ms, used).quotient;
}

// The weighted two-window counter. The sliding window is the last `window` whole milliseconds,
// now included; it holds the current window's count and, of the previous window's count, the
// share of the previous window's milliseconds it still covers, as if that count had been spread
// evenly over them.
Evaluation EvaluateSlidingWindow(const LimitRequest& request, const AllowanceState* current,
                                 int64_t now_ms, bool spend) {
  const int64_t window_ms = request.id.window_ms;
  const int64_t start = WindowStart(now_ms, window_ms);
  // Milliseconds of the previous window still inside the sliding window: 0 to window_ms - 1.
  const int64_t overlap = start + window_ms - 1 - now_ms;

  // Look up: once a window has ended its count becomes the previous one; older counts are gone.
  int64_t used = 0;
  int64_t previous = 0;
  if (current != nullptr && current->stamp_ms == start) {
    used = current->count;
    previous = current->previous;
  } else if (current != nullptr && current->stamp_ms == start - window_ms) {
    previous = current->count;
  }

  // The previous window's share, rounded up: for whole counts, `used + cost + weighted <= limit`
  // is then exactly the comparison against the unrounded weighted sum.
  const QuotientRemainder share = MulDivMod(previous, overlap, window_ms);
  const int64_t weighted = share.quotient + (share.remainder > 0 ? 1 : 0);

  // Decide. Every term is below 2^54, so nothing overflows.
  Evaluation result;
  const bool allowed = request.cost <= request.limit - used - weighted;
  const int64_t after = used + (allowed ? request.cost : 0);
  if (allowed && spend) {
    result.write = true;
    result.next = AllowanceState{.stamp_ms = start, .count = after, .previous = previous};
    // The count weighs on the next window until that window's last millisecond.
    result.ttl_ms = overlap + window_ms;
  }

  // Answer as if spent when allowed, so that a peek answers what a check would.
  Decision& d = result.decision;
  d.allowed = allowed;
  d.limit = request.limit;
  d.remaining = std::max<int64_t>(0, request.limit - after - weighted);
  d.reset_after_ms = after > 0 ? overlap + window_ms : (weighted > 0 ? overlap : 0);
  d.retry_after_ms = allowed ? 0 : SlidingRetryAfter(request, used, previous, overlap);
  return result;
}

// A span of time, `ms` + `frac` / limit ms with 0 <= frac < limit: the emission interval
// window / limit is a whole number of 1/limit ms, so sums of intervals stay exact.
struct Backlog {
  int64_t ms = 0;
  int64_t frac = 0;
};

// How far the stored theoretical arrival time (TAT) is ahead of now, in 1/limit ms. A TAT in
// the past is an empty backlog: a full bucket.
Backlog CurrentBacklog(const AllowanceState* current, int64_t now_ms, int64_t window_ms,
                       int64_t limit) {
  if (current == nullptr || current->per <= 0) return Backlog{};
  const int64_t ms = current->stamp_ms - now_ms;
  if (ms < 0 || (ms == 0 && current->count == 0)) return Backlog{};
  // Never more than a window, even if a clock stepped back: the bucket is at worst empty.
  if (ms >= window_ms) return Backlog{window_ms, 0};
  if (current->per == limit) return Backlog{ms, current->count};

  // The limit changed. The TAT stays where it is, so the new limit applies at once: the bucket
  // is as full, as a share of its size, as before. Only the fraction of a millisecond moves onto
  // the new 1/limit ms grid, rounded up: the one place where the bucket is not exact, by less
  // than 1/limit ms, and only until an allowed check stores the TAT under the new limit.
  const QuotientRemainder frac = MulDivMod(current->count, limit, current->per);
  const int64_t ticks = frac.quotient + (frac.remainder > 0 ? 1 : 0);
  if (ticks == limit) return Backlog{ms + 1, 0};
  return Backlog{ms, ticks};
}

int64_t CeilMillis(const Backlog& b) { return b.ms + (b.frac > 0 ? 1 : 0); }

// GCRA: the state is the theoretical arrival time (TAT); each token moves it on by the
// emission interval window / limit, and a request fits while the TAT stays at most one window
// (a whole bucket of `limit` tokens) ahead of now.
Evaluation EvaluateTokenBucket(const LimitRequest& request, const AllowanceState* current,
                               int64_t now_ms, bool spend) {
  const int64_t window_ms = request.id.window_ms;
  const int64_t limit = request.limit;
  const Backlog backlog = CurrentBacklog(current, now_ms, window_ms, limit);

  // Decide: `cost` tokens add cost * window / limit ms; cost <= limit keeps that <= window.
  Backlog after = backlog;
  bool allowed = false;
  int64_t retry_after_ms = window_ms;  // A cost above the limit never fits.
  if (request.cost <= limit) {
    const QuotientRemainder step = MulDivMod(request.cost, window_ms, limit);
    Backlog needed{backlog.ms + step.quotient, backlog.frac + step.remainder};
    if (needed.frac >= limit) {
      needed.ms += 1;
      needed.frac -= limit;
    }
    allowed = needed.ms < window_ms || (needed.ms == window_ms && needed.frac == 0);
    if (allowed) after = needed;
    // The first whole ms at which the backlog has drained to window - cost's share.
    retry_after_ms = allowed ? 0 : CeilMillis(Backlog{needed.ms - window_ms, needed.frac});
  }

  // Commit: the TAT itself, now + after.
  Evaluation result;
  if (allowed && spend) {
    result.write = true;
    result.next = AllowanceState{.stamp_ms = now_ms + after.ms, .count = after.frac, .per = limit};
    // Once the TAT has passed, the bucket is full, which is what no state means.
    result.ttl_ms = CeilMillis(after);
  }

  // Whole tokens left: (window - after) * limit / window, rounded down.
  Decision& d = result.decision;
  d.allowed = allowed;
  d.limit = limit;
  d.remaining = static_cast<int64_t>((Wide{window_ms - after.ms} * limit - after.frac) / window_ms);
  d.reset_after_ms = CeilMillis(after);
  d.retry_after_ms = retry_after_ms;
  return result;
}

}  // namespace

Evaluation Evaluate(const LimitRequest& request, const AllowanceState* current, int64_t now_ms,
                    bool spend) {
  switch (request.id.algorithm) {
    case Algorithm::kFixedWindow:
      return EvaluateFixedWindow(request, current, now_ms, spend);
    case Algorithm::kSlidingWindow:
      return EvaluateSlidingWindow(request, current, now_ms, spend);
    case Algorithm::kTokenBucket:
      return EvaluateTokenBucket(request, current, now_ms, spend);
  }
  return Evaluation{};
}

}  // namespace ratelimit
