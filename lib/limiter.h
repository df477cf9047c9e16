#ifndef RATELIMIT_LIB_LIMITER_H_
#define RATELIMIT_LIB_LIMITER_H_

#include <chrono>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "lib/circuit_breaker.h"
#include "lib/limit.h"
#include "lib/memory_store.h"
#include "lib/remote_store.h"

namespace ratelimit {

// Decides checks: in the remote store (Redis) while the circuit breaker lets calls through, and
// in the memory store when there is no remote store, the breaker is open, or the remote store
// fails to answer. Thread-safe.
class Limiter {
 public:
  struct Observer {
    // Called for each remote call with its outcome and how long it took.
    std::function<void(const absl::Status&, std::chrono::nanoseconds)> on_remote_result;
  };
  using DecisionCallback = std::function<void(const Decision&)>;
  using ResetCallback = std::function<void(absl::Status)>;

  // `remote` and `breaker` are both null (memory mode) or both set. All must outlive the limiter.
  Limiter(MemoryStore& memory, RemoteStore* remote, CircuitBreaker* breaker,
          Observer observer = {});

  // Calls `done` exactly once: before returning when memory answers, otherwise on the remote
  // store's thread. The bytes of request.id.key must stay alive until then.
  void Check(const LimitRequest& request, bool spend, DecisionCallback done);

  // Clears the allowance in the memory store and in the remote store. Unavailable when the
  // remote store could not be cleared.
  void Reset(const AllowanceId& id, ResetCallback done);

  // While the breaker is not closed, sends the probe it asks for, so that it closes again after
  // the open duration even when no check comes along to be the probe. The probe is a real check
  // that spends from an allowance of its own (kProbeKey, one-second window): a ping would pass
  // while Redis refuses writes (out of memory, a read-only replica) and close the breaker in
  // vain. Call it every so often; it costs one atomic load while the breaker is closed.
  void ProbeIfDue();
  static constexpr absl::string_view kProbeKey = "__breaker_probe__";

  bool remote_configured() const { return remote_ != nullptr; }
  bool remote_connected() const { return remote_ != nullptr && remote_->connected(); }
  // True while checks go to the remote store.
  bool using_remote() const;
  const CircuitBreaker* breaker() const { return breaker_; }
  const MemoryStore& memory() const { return memory_; }

 private:
  // Tells the observer and the breaker how a remote call admitted as `admission` went.
  void RecordRemoteResult(CircuitBreaker::Admission admission, const absl::Status& status,
                          std::chrono::steady_clock::time_point start);

  MemoryStore& memory_;
  RemoteStore* const remote_;
  CircuitBreaker* const breaker_;
  const Observer observer_;
};

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_LIMITER_H_
