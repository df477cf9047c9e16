#include "lib/memory_store.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/store_cases.h"

namespace ratelimit {
namespace {

MemoryStore::Options Bounded(int64_t max_entries, int shards = 0) {
  return MemoryStore::Options{
      .max_entries = max_entries, .shards = shards, .sweep_interval = absl::ZeroDuration()};
}

LimitRequest Request(absl::string_view key, int64_t limit = 10, int64_t window_ms = 1000) {
  return LimitRequest{AllowanceId{key, Algorithm::kFixedWindow, window_ms}, limit, 1};
}

void RunCasesInMemory(const std::vector<testing::StoreCase>& cases) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(1000));
  testing::RunStoreCases(cases, clock, [&](const LimitRequest& request, bool spend) {
    Decision d = store.Check(request, spend);
    EXPECT_EQ(d.source, Source::kMemory);
    return d;
  });
}

TEST(MemoryStoreTest, DecidesTheSharedFixedWindowTable) {
  RunCasesInMemory(testing::FixedWindowCases());
}

TEST(MemoryStoreTest, DecidesTheSharedSlidingWindowTable) {
  RunCasesInMemory(testing::SlidingWindowCases());
}

TEST(MemoryStoreTest, DecidesTheSharedTokenBucketTable) {
  RunCasesInMemory(testing::TokenBucketCases());
}

TEST(MemoryStoreTest, KeysAlgorithmsAndWindowsAreDistinctAllowances) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(100));
  EXPECT_TRUE(store.Check(Request("a:b", 1), true).allowed);
  EXPECT_FALSE(store.Check(Request("a:b", 1), true).allowed);
  EXPECT_TRUE(store.Check(Request("a:b ", 1), true).allowed);
  EXPECT_TRUE(store.Check(Request("a:b", 1, 2000), true).allowed);
  EXPECT_EQ(store.size(), 3);
}

TEST(MemoryStoreTest, NeverPassesTheBoundAndEvictsTheLeastRecentlyUsed) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(4, 1));
  for (int i = 0; i < 4; ++i) store.Check(Request("k" + std::to_string(i), 1), true);
  EXPECT_EQ(store.size(), 4);
  // Touch k0 so that k1 is now the least recently used.
  EXPECT_FALSE(store.Check(Request("k0", 1), true).allowed);
  store.Check(Request("k0", 2), true);
  store.Check(Request("k4", 1), true);
  EXPECT_EQ(store.size(), 4);
  EXPECT_FALSE(store.Check(Request("k0", 2), true).allowed) << "k0 must have survived";
  EXPECT_TRUE(store.Check(Request("k1", 1), true).allowed) << "k1 must have been evicted";
}

TEST(MemoryStoreTest, CheckingTheNewestEntryAgainKeepsTheRecencyOrder) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(3, 1));
  // One entry is both newest and oldest; spending from it again must keep the list whole.
  store.Check(Request("k0", 10), true);
  store.Check(Request("k0", 10), true);
  store.Check(Request("k1", 10), true);
  store.Check(Request("k2", 10), true);
  store.Check(Request("k2", 10), true);
  // k0 is the oldest, then k1.
  store.Check(Request("k3", 10), true);
  EXPECT_EQ(store.size(), 3);
  EXPECT_EQ(store.Check(Request("k1", 10), false).remaining, 8) << "k1 must have survived";
  store.Check(Request("k4", 10), true);
  EXPECT_EQ(store.Check(Request("k2", 10), false).remaining, 7) << "k2 must have survived";
  EXPECT_EQ(store.Check(Request("k3", 10), false).remaining, 8) << "k3 must have survived";
  EXPECT_EQ(store.Check(Request("k1", 10), false).remaining, 9) << "k1 must have been evicted";
}

TEST(MemoryStoreTest, BoundHoldsAcrossShardsUnderManyKeys) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(1000));
  for (int i = 0; i < 20000; ++i) {
    store.Check(Request("key:" + std::to_string(i)), true);
    ASSERT_LE(store.size(), 1000);
  }
  EXPECT_GE(store.size(), 900) << "shards should fill nearly evenly";
}

TEST(MemoryStoreTest, SweepRemovesOnlyExpiredEntries) {
  FakeClock clock(absl::FromUnixMillis(1'000'000));
  MemoryStore store(clock, Bounded(100));
  store.Check(Request("short", 10, 1000), true);
  store.Check(Request("long", 10, 60'000), true);
  clock.Advance(absl::Milliseconds(1000));
  EXPECT_EQ(store.SweepExpired(), 1);
  EXPECT_EQ(store.size(), 1);
}

TEST(MemoryStoreTest, ResetForgetsOneAllowance) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(100));
  store.Check(Request("a", 1), true);
  store.Check(Request("b", 1), true);
  store.Reset(AllowanceId{"a", Algorithm::kFixedWindow, 1000});
  EXPECT_TRUE(store.Check(Request("a", 1), true).allowed);
  EXPECT_FALSE(store.Check(Request("b", 1), true).allowed);
}

TEST(MemoryStoreTest, ConcurrentChecksAdmitExactlyTheLimit) {
  FakeClock clock;
  MemoryStore store(clock, Bounded(10000));
  constexpr int kThreads = 8;
  constexpr int kChecksPerThread = 5000;
  constexpr int kKeys = 16;
  constexpr int64_t kLimit = 1000;
  std::atomic<int64_t> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kChecksPerThread; ++i) {
        const std::string key = "hot:" + std::to_string((i + t) % kKeys);
        if (store.Check(Request(key, kLimit, 60'000), true).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // 40000 checks over 16 keys of 1000 each: exactly 16000 fit.
  EXPECT_EQ(allowed.load(), kKeys * kLimit);
}

TEST(MemoryStoreTest, BackgroundSweeperRuns) {
  SystemClock clock;
  MemoryStore store(
      clock, MemoryStore::Options{.max_entries = 100, .sweep_interval = absl::Milliseconds(5)});
  store.Check(Request("k", 10, 1), true);
  for (int i = 0; i < 400 && store.size() > 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(store.size(), 0);
}

}  // namespace
}  // namespace ratelimit
