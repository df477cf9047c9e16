#ifndef RATELIMIT_LIB_REMOTE_STORE_H_
#define RATELIMIT_LIB_REMOTE_STORE_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/limit.h"

namespace ratelimit {

// A store shared by every replica, answered asynchronously: Redis in production, a fake in
// unit tests. Implementations are thread-safe; callbacks run exactly once, on any thread.
class RemoteStore {
 public:
  using DecisionCallback = std::function<void(absl::StatusOr<Decision>)>;
  using ResetCallback = std::function<void(absl::Status)>;

  virtual ~RemoteStore() = default;

  // Decides like MemoryStore::Check. A failure means the store did not answer; the request may
  // or may not have been applied.
  virtual void Check(const LimitRequest& request, bool spend, DecisionCallback done) = 0;
  virtual void Reset(const AllowanceId& id, ResetCallback done) = 0;
  virtual bool connected() const = 0;
};

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REMOTE_STORE_H_
