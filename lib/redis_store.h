#ifndef RATELIMIT_LIB_REDIS_STORE_H_
#define RATELIMIT_LIB_REDIS_STORE_H_

#include <atomic>
#include <string>

#include "absl/strings/string_view.h"
#include "lib/clock.h"
#include "lib/redis_client.h"
#include "lib/remote_store.h"

namespace ratelimit {

// Allowances kept in Redis, so that every replica agrees. Each check is one EVALSHA of its
// algorithm's Lua script, which reads, decides and writes in one round trip, with the time taken
// from Redis so that replicas whose clocks differ still agree on windows. Every key it writes
// has a TTL. Thread-safe.
class RedisStore final : public RemoteStore {
 public:
  struct Options {
    std::string key_prefix = "ratelimit:";
  };

  // Registers the scripts with `client`, so it must be built before client.Start().
  RedisStore(RedisClient& client, Options options);

  void Check(const LimitRequest& request, bool spend, DecisionCallback done) override;
  void Reset(const AllowanceId& id, ResetCallback done) override;
  bool connected() const override { return client_.connected(); }

  // The Redis key of an allowance: the prefix, then the allowance's identity in a {hash tag} so
  // that a Redis Cluster keeps all of one allowance in one slot.
  static std::string KeyFor(absl::string_view prefix, const AllowanceId& id);

  // The script's KEYS and ARGV for one check (see redis_scripts.h); the time is Redis's unless
  // `clock` is set.
  static RedisArgs CheckArgs(absl::string_view prefix, const LimitRequest& request, bool spend,
                             const Clock* clock);

  // Makes the scripts take the time from `clock` rather than from Redis, so that tests can run
  // the same fake-clock cases against both stores; keys then live an hour longer than their
  // state matters, since Redis still expires them by its own clock. Null restores Redis's time.
  void SetClockForTest(const Clock* clock) { test_clock_.store(clock); }

 private:
  RedisClient::ScriptId ScriptFor(Algorithm algorithm) const;

  RedisClient& client_;
  const Options options_;
  RedisClient::ScriptId fixed_window_script_;
  RedisClient::ScriptId sliding_window_script_;
  RedisClient::ScriptId token_bucket_script_;
  std::atomic<const Clock*> test_clock_{nullptr};
};

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REDIS_STORE_H_
