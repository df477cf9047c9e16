// Proves that the ThreadSanitizer build sees what it must: run with "guarded", two threads
// count under an absl::Mutex and nothing may be reported; run with "unguarded", they also touch
// a plain counter and ThreadSanitizer must report the race. Without the first, every guarded
// field would be a false report; without the second, a clean run would prove nothing.

#include <cstring>
#include <iostream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace {

absl::Mutex mu;
int guarded ABSL_GUARDED_BY(mu) = 0;
int unguarded = 0;

void Count(bool race) {
  for (int i = 0; i < 10'000; ++i) {
    absl::MutexLock lock(&mu);
    ++guarded;
  }
  if (race) ++unguarded;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 ||
      (std::strcmp(argv[1], "guarded") != 0 && std::strcmp(argv[1], "unguarded") != 0)) {
    std::cerr << "usage: tsan_canary guarded|unguarded\n";
    return 2;
  }
  const bool race = std::strcmp(argv[1], "unguarded") == 0;
  std::thread other(Count, race);
  Count(race);
  other.join();
  absl::MutexLock lock(&mu);
  return guarded == 20'000 ? 0 : 1;
}
