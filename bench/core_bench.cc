// Micro-benchmarks of the limiter core: the memory store's check, request validation, and
// building a Redis command. Run: build/bench/core_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "lib/limit.h"
#include "lib/memory_store.h"
#include "lib/redis_store.h"

namespace ratelimit {
namespace {

// Shared by the threads of one benchmark run.
std::unique_ptr<MemoryStore> g_store;
SystemClock g_clock;

std::vector<std::string> MakeKeys(int count, int thread) {
  std::vector<std::string> keys;
  keys.reserve(count);
  // 32-byte keys, distinct per thread.
  for (int i = 0; i < count; ++i) {
    std::string key = "tenant-" + std::to_string(thread) + ":user:" + std::to_string(i);
    key.resize(32, 'x');
    keys.push_back(std::move(key));
  }
  return keys;
}

void BM_MemoryStoreCheck(benchmark::State& state) {
  const int keys_per_thread = static_cast<int>(state.range(0));
  if (state.thread_index() == 0) {
    g_store = std::make_unique<MemoryStore>(
        g_clock,
        MemoryStore::Options{.max_entries = 1'000'000, .sweep_interval = absl::ZeroDuration()});
  }
  const std::vector<std::string> keys = MakeKeys(keys_per_thread, state.thread_index());
  size_t i = 0;
  for (auto _ : state) {
    const LimitRequest request{AllowanceId{keys[i], Algorithm::kFixedWindow, 60'000},
                               int64_t{1} << 40, 1};
    benchmark::DoNotOptimize(g_store->Check(request, true));
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) state.counters["entries"] = g_store->size();
}
BENCHMARK(BM_MemoryStoreCheck)->Arg(1)->Arg(100'000)->Threads(1)->Threads(2)->UseRealTime();

void BM_MemoryStoreCheckAlgorithms(benchmark::State& state) {
  MemoryStore store(
      g_clock, MemoryStore::Options{.max_entries = 10'000, .sweep_interval = absl::ZeroDuration()});
  const auto algorithm = static_cast<Algorithm>(state.range(0));
  for (auto _ : state) {
    const LimitRequest request{AllowanceId{"user:42", algorithm, 60'000}, int64_t{1} << 40, 1};
    benchmark::DoNotOptimize(store.Check(request, true));
  }
}
BENCHMARK(BM_MemoryStoreCheckAlgorithms)->DenseRange(1, 3);

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  int64_t resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Resident memory per stored entry with 32-byte keys: fill a store and divide the growth.
void BM_MemoryPerEntry(benchmark::State& state) {
  const int64_t entries = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<std::string> keys = MakeKeys(static_cast<int>(entries), 0);
    const int64_t before = ResidentBytes();
    state.ResumeTiming();
    auto store = std::make_unique<MemoryStore>(
        g_clock,
        MemoryStore::Options{.max_entries = entries, .sweep_interval = absl::ZeroDuration()});
    for (const std::string& key : keys) {
      store->Check(LimitRequest{AllowanceId{key, Algorithm::kFixedWindow, 60'000}, 10, 1}, true);
    }
    state.PauseTiming();
    state.counters["bytes_per_entry"] =
        static_cast<double>(ResidentBytes() - before) / static_cast<double>(entries);
    store.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_MemoryPerEntry)->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_ValidateRequest(benchmark::State& state) {
  const std::string key = "tenant-7:user:1234567:endpoint:x";
  for (auto _ : state) {
    benchmark::DoNotOptimize(MakeLimitRequest(key, 100, WireDuration{true, 60, 0}, 1, 1));
  }
}
BENCHMARK(BM_ValidateRequest);

void BM_BuildRedisCommand(benchmark::State& state) {
  const std::string key = "tenant-7:user:1234567:endpoint:x";
  const LimitRequest request{AllowanceId{key, Algorithm::kFixedWindow, 60'000}, 100, 1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(RedisStore::CheckArgs("ratelimit:", request, true, nullptr));
  }
}
BENCHMARK(BM_BuildRedisCommand);

}  // namespace
}  // namespace ratelimit

int main(int argc, char** argv) {
  // As in the server: Debian's Abseil otherwise records every lock in a global graph guarded by
  // one spin lock, which two threads would fight over on every check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
