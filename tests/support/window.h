#ifndef RATELIMIT_TESTS_SUPPORT_WINDOW_H_
#define RATELIMIT_TESTS_SUPPORT_WINDOW_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ratelimit::testing {

// Fixed windows start at multiples of their length since the epoch, so a test that counts exact
// decisions in one window fails if a boundary passes under it. Returns at once when the current
// `window` has at least `room` left, otherwise sleeps into the next one.
inline void WaitForRoomInWindow(absl::Duration window = absl::Minutes(1),
                                absl::Duration room = absl::Seconds(10)) {
  const absl::Duration since_epoch = absl::Now() - absl::UnixEpoch();
  const absl::Duration left = window - (since_epoch - absl::Floor(since_epoch, window));
  if (left < room) absl::SleepFor(left + absl::Milliseconds(20));
}

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_WINDOW_H_
