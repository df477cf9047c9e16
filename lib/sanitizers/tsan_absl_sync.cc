// Linked into every executable of a ThreadSanitizer build (RATELIMIT_SANITIZE=thread), never
// into a release build.
//
// Debian's Abseil is not built with -fsanitize=thread, so ThreadSanitizer cannot see that
// absl::Mutex orders memory: every field guarded by a Mutex would be reported as a race. These
// definitions take the place of the shared library's (the executable's symbols come first), call
// the library's own through dlsym(RTLD_NEXT), and describe each lock and unlock to
// ThreadSanitizer, which then also checks lock order. gRPC's absl::Mutex use goes through them
// too.
//
// NOTE: gaps that do not matter while nothing here uses these: ReaderLockWhen* (its ReaderUnlock
// would then be reported as unlocking a mutex never locked), CondVar waits on a reader-held mutex
// (told as a writer's unlock), the inline Notification::HasBeenNotified() (its acquire is not
// seen), and Barrier::Block's acquire runs after the call, when the last thread may have deleted
// it.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/base/config.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

// Exported by the ThreadSanitizer runtime but not declared in its public header.
extern "C" {
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
}

namespace {

#define RATELIMIT_STR2(x) #x
#define RATELIMIT_STR(x) RATELIMIT_STR2(x)

// The mangled name of absl::<inline namespace>::<member>; `member` is mangled after the
// namespace, for example "5Mutex4LockEv".
std::string AbslSymbol(const char* member, bool is_const) {
  std::string name = is_const ? "_ZNK4absl" : "_ZN4absl";
#if ABSL_OPTION_USE_INLINE_NAMESPACE
  const std::string inline_namespace = RATELIMIT_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  name += std::to_string(inline_namespace.size()) + inline_namespace;
#endif
  return name + member;
}

template <typename Fn>
Fn Real(const char* member, bool is_const = false) {
  const std::string name = AbslSymbol(member, is_const);
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found in the Abseil library\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Calls into the library nest: WaitWithTimeout calls WaitWithDeadline, Notification locks its
// own mutex. Only the outermost call is described to ThreadSanitizer; nested ones go straight
// through.
thread_local int depth = 0;

bool Nested() { return depth > 0; }

// The library also evaluates waiters' conditions (our code) inside Lock, Unlock and Await, in
// whichever thread holds the lock at that moment, which need not be the point this file
// reports. Those reads are under the lock in truth, so they are hidden, as Abseil's own
// ThreadSanitizer build does.
template <typename Fn, typename... Args>
auto CallReal(Fn fn, Args&&... args) {
  struct Scope {
    Scope() {
      ++depth;
      __tsan_ignore_thread_begin();
    }
    ~Scope() {
      __tsan_ignore_thread_end();
      --depth;
    }
  } scope;
  return fn(std::forward<Args>(args)...);
}

void Locked(void* mu, unsigned flags = 0) {
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
}

void Unlocked(void* mu, unsigned flags = 0) {
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
}

// Notification, BlockingCounter and Barrier order memory partly through atomics the library
// reads and writes without a lock (a notification already given, a count not yet at zero), so
// they are described as a release by each signalling thread and an acquire by each waiter. Each
// object's mutex is its first member and shares its address, hence the byte after it.
void* SyncAddress(const void* object) {
  return const_cast<char*>(static_cast<const char*>(object)) + 1;
}

// Substitution S0_ below stands for the inline namespace (or absl when there is none), as the
// library's own symbols spell it.
#if ABSL_OPTION_USE_INLINE_NAMESPACE
#define NS "NS0_"
#else
#define NS "NS_"
#endif

// Abseil's deadlock detector keeps its lock graph under a spin lock that ThreadSanitizer cannot
// see; ThreadSanitizer's own lock-order check takes its place.
const bool kDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  if (Nested()) return real(this);
  CallReal(real, this);
  Locked(this);
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  if (Nested()) return real(this);
  Unlocked(this);
  CallReal(real, this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  if (Nested()) return real(this);
  const bool locked = CallReal(real, this);
  if (locked) Locked(this, __tsan_mutex_try_lock);
  return locked;
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  if (Nested()) return real(this);
  CallReal(real, this);
  Locked(this, __tsan_mutex_read_lock);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  if (Nested()) return real(this);
  Unlocked(this, __tsan_mutex_read_lock);
  CallReal(real, this);
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  if (Nested()) return real(this);
  const bool locked = CallReal(real, this);
  if (locked) Locked(this, __tsan_mutex_read_lock | __tsan_mutex_try_lock);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex8LockWhenERK" NS "9ConditionE");
  if (Nested()) return real(this, cond);
  CallReal(real, this, cond);
  Locked(this);
}

// Held on return whether or not the condition came true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex19LockWhenWithTimeoutERK" NS "9ConditionE" NS "8DurationE");
  if (Nested()) return real(this, cond, timeout);
  const bool result = CallReal(real, this, cond, timeout);
  Locked(this);
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex20LockWhenWithDeadlineERK" NS "9ConditionE" NS "4TimeE");
  if (Nested()) return real(this, cond, deadline);
  const bool result = CallReal(real, this, cond, deadline);
  Locked(this);
  return result;
}

// Await may release the mutex while it waits; it holds it again on return.
void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERK" NS "9ConditionE");
  if (Nested()) return real(this, cond);
  Unlocked(this);
  CallReal(real, this, cond);
  Locked(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex16AwaitWithTimeoutERK" NS "9ConditionE" NS "8DurationE");
  if (Nested()) return real(this, cond, timeout);
  Unlocked(this);
  const bool result = CallReal(real, this, cond, timeout);
  Locked(this);
  return result;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex17AwaitWithDeadlineERK" NS "9ConditionE" NS "4TimeE");
  if (Nested()) return real(this, cond, deadline);
  Unlocked(this);
  const bool result = CallReal(real, this, cond, deadline);
  Locked(this);
  return result;
}

void CondVar::Wait(Mutex* mu) {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEP" NS "5MutexE");
  if (Nested()) return real(this, mu);
  Unlocked(mu);
  CallReal(real, this, mu);
  Locked(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      "7CondVar15WaitWithTimeoutEP" NS "5MutexE" NS "8DurationE");
  if (Nested()) return real(this, mu, timeout);
  Unlocked(mu);
  const bool result = CallReal(real, this, mu, timeout);
  Locked(mu);
  return result;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      "7CondVar16WaitWithDeadlineEP" NS "5MutexE" NS "4TimeE");
  if (Nested()) return real(this, mu, deadline);
  Unlocked(mu);
  const bool result = CallReal(real, this, mu, deadline);
  Locked(mu);
  return result;
}

void Notification::Notify() {
  static const auto real = Real<void (*)(Notification*)>("12Notification6NotifyEv");
  if (Nested()) return real(this);
  __tsan_release(SyncAddress(this));
  CallReal(real, this);
}

void Notification::WaitForNotification() const {
  static const auto real = Real<void (*)(const Notification*)>(
      "12Notification19WaitForNotificationEv", /*is_const=*/true);
  if (Nested()) return real(this);
  CallReal(real, this);
  __tsan_acquire(SyncAddress(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "12Notification30WaitForNotificationWithTimeoutE" NS "8DurationE", /*is_const=*/true);
  if (Nested()) return real(this, timeout);
  const bool notified = CallReal(real, this, timeout);
  if (notified) __tsan_acquire(SyncAddress(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "12Notification31WaitForNotificationWithDeadlineE" NS "4TimeE", /*is_const=*/true);
  if (Nested()) return real(this, deadline);
  const bool notified = CallReal(real, this, deadline);
  if (notified) __tsan_acquire(SyncAddress(this));
  return notified;
}

bool BlockingCounter::DecrementCount() {
  static const auto real = Real<bool (*)(BlockingCounter*)>("15BlockingCounter14DecrementCountEv");
  if (Nested()) return real(this);
  __tsan_release(SyncAddress(this));
  return CallReal(real, this);
}

void BlockingCounter::Wait() {
  static const auto real = Real<void (*)(BlockingCounter*)>("15BlockingCounter4WaitEv");
  if (Nested()) return real(this);
  CallReal(real, this);
  __tsan_acquire(SyncAddress(this));
}

bool Barrier::Block() {
  static const auto real = Real<bool (*)(Barrier*)>("7Barrier5BlockEv");
  if (Nested()) return real(this);
  __tsan_release(SyncAddress(this));
  const bool last = CallReal(real, this);
  __tsan_acquire(SyncAddress(this));
  return last;
}

ABSL_NAMESPACE_END
}  // namespace absl
