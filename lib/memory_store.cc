#include "lib/memory_store.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace ratelimit {
namespace {

int64_t ToMillis(absl::Time t) { return absl::ToUnixMillis(t); }

int ChooseShardCount(int64_t max_entries, int requested) {
  if (requested > 0) return static_cast<int>(std::min<int64_t>(requested, max_entries));
  // Enough shards that two threads rarely meet, few enough that each still holds a useful share
  // of the bound.
  return static_cast<int>(std::clamp<int64_t>(max_entries / 64, 1, 64));
}

}  // namespace

size_t MemoryStore::KeyHash::operator()(const AllowanceId& id) const {
  return absl::HashOf(id.key, id.window_ms, static_cast<int>(id.algorithm));
}

size_t MemoryStore::KeyHash::operator()(const StoredKey& k) const {
  return absl::HashOf(absl::string_view(k.key), k.window_ms, static_cast<int>(k.algorithm));
}

MemoryStore::MemoryStore(const Clock& clock, Options options)
    : clock_(clock), max_entries_(std::max<int64_t>(1, options.max_entries)) {
  // Split the bound exactly, so the shards together never hold more than max_entries.
  const int count = ChooseShardCount(max_entries_, options.shards);
  shards_.reserve(count);
  for (int i = 0; i < count; ++i) {
    auto shard = std::make_unique<Shard>();
    shard->capacity = max_entries_ / count + (i < max_entries_ % count ? 1 : 0);
    shards_.push_back(std::move(shard));
  }
  if (options.sweep_interval > absl::ZeroDuration()) {
    sweeper_ = std::thread([this, interval = options.sweep_interval] { SweepLoop(interval); });
  }
}

MemoryStore::~MemoryStore() {
  stop_sweeper_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
}

MemoryStore::Shard& MemoryStore::ShardFor(size_t hash) {
  // The map uses the low bits of the same hash; the high bits pick the shard.
  return *shards_[(hash >> 32) % shards_.size()];
}

void MemoryStore::Unlink(Shard& shard, Entry* entry) {
  if (entry->newer != nullptr)
    entry->newer->older = entry->older;
  else
    shard.newest = entry->older;
  if (entry->older != nullptr)
    entry->older->newer = entry->newer;
  else
    shard.oldest = entry->newer;
  entry->newer = entry->older = nullptr;
}

void MemoryStore::PushNewest(Shard& shard, Entry* entry) {
  entry->older = shard.newest;
  entry->newer = nullptr;
  if (shard.newest != nullptr) shard.newest->newer = entry;
  shard.newest = entry;
  if (shard.oldest == nullptr) shard.oldest = entry;
}

void MemoryStore::Erase(Shard& shard, Map::iterator it) {
  Unlink(shard, &it->second);
  shard.entries.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
}

Decision MemoryStore::Check(const LimitRequest& request, bool spend) {
  const int64_t now_ms = ToMillis(clock_.Now());
  const HashedId id{request.id.key, request.id.window_ms, request.id.algorithm,
                    KeyHash{}(request.id)};
  Shard& shard = ShardFor(id.hash);
  absl::MutexLock lock(&shard.mu);

  // Look up; an expired entry counts as absent.
  auto it = shard.entries.find(id);
  const bool live = it != shard.entries.end() && it->second.expires_at_ms > now_ms;
  Evaluation eval = Evaluate(request, live ? &it->second.state : nullptr, now_ms, spend);
  eval.decision.source = Source::kMemory;
  if (!eval.write) return eval.decision;

  // Commit: update in place, or make room and insert.
  if (it == shard.entries.end()) {
    if (static_cast<int64_t>(shard.entries.size()) >= shard.capacity) {
      const StoredKey* victim = shard.oldest->key;
      Erase(shard, shard.entries.find(*victim));
    }
    it = shard.entries
             .emplace(
                 StoredKey{std::string(request.id.key), request.id.window_ms, request.id.algorithm},
                 Entry{})
             .first;
    it->second.key = &it->first;
    size_.fetch_add(1, std::memory_order_relaxed);
    PushNewest(shard, &it->second);
  } else if (shard.newest != &it->second) {
    // A hot key is usually the newest already; relinking it would change nothing.
    Unlink(shard, &it->second);
    PushNewest(shard, &it->second);
  }
  it->second.state = eval.next;
  it->second.expires_at_ms = now_ms + eval.ttl_ms;
  return eval.decision;
}

void MemoryStore::Reset(const AllowanceId& id) {
  Shard& shard = ShardFor(KeyHash{}(id));
  absl::MutexLock lock(&shard.mu);
  auto it = shard.entries.find(id);
  if (it != shard.entries.end()) Erase(shard, it);
}

int64_t MemoryStore::SweepExpired() {
  const int64_t now_ms = ToMillis(clock_.Now());
  int64_t removed = 0;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (auto it = shard->entries.begin(); it != shard->entries.end();) {
      if (it->second.expires_at_ms <= now_ms) {
        Erase(*shard, it++);
        ++removed;
      } else {
        ++it;
      }
    }
  }
  return removed;
}

void MemoryStore::SweepLoop(absl::Duration interval) {
  while (!stop_sweeper_.WaitForNotificationWithTimeout(interval)) SweepExpired();
}

}  // namespace ratelimit
