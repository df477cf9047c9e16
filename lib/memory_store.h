#ifndef RATELIMIT_LIB_MEMORY_STORE_H_
#define RATELIMIT_LIB_MEMORY_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "lib/algorithms.h"
#include "lib/clock.h"
#include "lib/limit.h"

namespace ratelimit {

// Allowances kept in this process: the store of memory mode, and the fallback while Redis is
// not answering. Thread-safe: the keys are spread over shards, each with its own lock, so
// callers on distinct keys rarely wait for each other.
//
// Invariant: the number of entries never exceeds max_entries. A shard that is full gives up its
// least recently used entry; a background sweeper removes expired entries.
class MemoryStore {
 public:
  struct Options {
    int64_t max_entries = 10000;
    // 0 picks a count that suits max_entries.
    int shards = 0;
    // How often the sweeper runs; zero disables it (tests call SweepExpired() directly).
    absl::Duration sweep_interval = absl::Seconds(1);
  };

  MemoryStore(const Clock& clock, Options options);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Decides `request` and, when `spend` is true and the request fits, spends from it.
  Decision Check(const LimitRequest& request, bool spend);

  // Forgets the allowance.
  void Reset(const AllowanceId& id);

  // Removes every expired entry; returns how many went.
  int64_t SweepExpired();

  int64_t size() const { return size_.load(std::memory_order_relaxed); }
  int64_t max_size() const { return max_entries_; }

 private:
  struct StoredKey {
    std::string key;
    int64_t window_ms;
    Algorithm algorithm;
  };
  // A lookup key that carries its hash, so that a check hashes the key once for both the shard
  // and the map.
  struct HashedId {
    absl::string_view key;
    int64_t window_ms;
    Algorithm algorithm;
    size_t hash;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const AllowanceId& id) const;
    size_t operator()(const StoredKey& k) const;
    size_t operator()(const HashedId& k) const { return k.hash; }
  };
  struct KeyEq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return a.window_ms == b.window_ms && a.algorithm == b.algorithm &&
             absl::string_view(a.key) == absl::string_view(b.key);
    }
  };
  struct Entry {
    AllowanceState state;
    int64_t expires_at_ms = 0;
    // Recency list links: head is the most recently used.
    Entry* newer = nullptr;
    Entry* older = nullptr;
    const StoredKey* key = nullptr;
  };
  using Map = absl::node_hash_map<StoredKey, Entry, KeyHash, KeyEq>;

  // Aligned so that two shards' locks never share a cache line.
  struct alignas(64) Shard {
    absl::Mutex mu;
    Map entries ABSL_GUARDED_BY(mu);
    Entry* newest ABSL_GUARDED_BY(mu) = nullptr;
    Entry* oldest ABSL_GUARDED_BY(mu) = nullptr;
    int64_t capacity = 0;
  };

  Shard& ShardFor(size_t hash);
  void Unlink(Shard& shard, Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void PushNewest(Shard& shard, Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void Erase(Shard& shard, Map::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void SweepLoop(absl::Duration interval);

  const Clock& clock_;
  const int64_t max_entries_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<int64_t> size_{0};

  absl::Notification stop_sweeper_;
  std::thread sweeper_;
};

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_MEMORY_STORE_H_
