// The Redis store and client against a real redis-server.

#include "lib/redis_store.h"

#include <algorithm>
#include <future>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/memory_store.h"
#include "tests/store_cases.h"
#include "tests/support/redis_server.h"
#include "tests/support/window.h"

namespace ratelimit {
namespace {

using testing::RedisServer;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    Connect(redis_.url());
    testing::WaitForRoomInWindow();
  }

  void Connect(const std::string& url, absl::Duration timeout = absl::Milliseconds(200)) {
    store_.reset();
    client_.reset();
    RedisClient::Options options;
    options.endpoint = *ParseRedisUrl(url);
    options.command_timeout = timeout;
    options.max_backoff = absl::Milliseconds(100);
    client_ = std::make_unique<RedisClient>(options);
    store_ = std::make_unique<RedisStore>(*client_, RedisStore::Options{"test:"});
    client_->Start();
  }

  bool WaitConnected(absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (client_->connected()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  absl::StatusOr<Decision> Check(const LimitRequest& request, bool spend = true) {
    std::promise<absl::StatusOr<Decision>> promise;
    store_->Check(request, spend,
                  [&promise](absl::StatusOr<Decision> d) { promise.set_value(std::move(d)); });
    return promise.get_future().get();
  }

  // Runs a shared table against Redis, with the scripts taking the time from a fake clock.
  void RunCasesInRedis(const std::vector<testing::StoreCase>& cases) {
    FakeClock clock;
    store_->SetClockForTest(&clock);
    testing::RunStoreCases(cases, clock, [&](const LimitRequest& request, bool spend) {
      absl::StatusOr<Decision> d = Check(request, spend);
      EXPECT_TRUE(d.ok()) << d.status();
      if (!d.ok()) return Decision{};
      EXPECT_EQ(d->source, Source::kRedis);
      return *d;
    });
    store_->SetClockForTest(nullptr);
  }

  RedisServer redis_;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<RedisStore> store_;
};

LimitRequest Fixed(absl::string_view key, int64_t limit, int64_t window_ms = 60'000,
                   int64_t cost = 1) {
  return LimitRequest{AllowanceId{key, Algorithm::kFixedWindow, window_ms}, limit, cost};
}

TEST_F(RedisStoreTest, DecidesTheSharedFixedWindowTableLikeTheMemoryStore) {
  ASSERT_TRUE(WaitConnected());
  RunCasesInRedis(testing::FixedWindowCases());
}

TEST_F(RedisStoreTest, DecidesTheSharedSlidingWindowTableLikeTheMemoryStore) {
  ASSERT_TRUE(WaitConnected());
  RunCasesInRedis(testing::SlidingWindowCases());
}

TEST_F(RedisStoreTest, DecidesTheSharedTokenBucketTableLikeTheMemoryStore) {
  ASSERT_TRUE(WaitConnected());
  RunCasesInRedis(testing::TokenBucketCases());
}

// The Lua scripts redo in doubles what algorithms.cc does in 128-bit integers. Random sequences
// (limits up to 2^53 - 1, odd windows, limit changes, peeks, time jumps) must get the same
// answers, field for field, from both stores.
TEST_F(RedisStoreTest, RandomSequencesDecideExactlyLikeTheMemoryStore) {
  ASSERT_TRUE(WaitConnected());
  FakeClock clock(testing::CaseStart());
  store_->SetClockForTest(&clock);
  MemoryStore memory(clock, MemoryStore::Options{.sweep_interval = absl::ZeroDuration()});
  std::mt19937_64 rng(20240508);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const int64_t windows[] = {1, 2, 7, 1000, 999'983, 60'000, kMaxWindowMs};
  const Algorithm algorithms[] = {Algorithm::kFixedWindow, Algorithm::kSlidingWindow,
                                  Algorithm::kTokenBucket};
  int compared = 0;
  for (Algorithm algorithm : algorithms) {
    for (int key_number = 0; key_number < 24; ++key_number) {
      const std::string key = absl::StrCat("random:", key_number);
      const int64_t window_ms = windows[key_number % std::size(windows)];
      // Small limits, limits near the window (intervals around 1 ms) and huge ones.
      int64_t limit = key_number % 3 == 0   ? pick(1, 10)
                      : key_number % 3 == 1 ? pick(1, 3 * window_ms)
                                            : pick(kMaxLimit - 1000, kMaxLimit);
      for (int step = 0; step < 60; ++step) {
        SCOPED_TRACE(absl::StrCat(AlgorithmName(algorithm), " ", key, " window ", window_ms,
                                  " step ", step));
        if (pick(0, 9) == 0)
          limit = std::clamp<int64_t>(limit + pick(-limit / 2, limit), 1, kMaxLimit);
        const int64_t advance =
            pick(0, 3) == 0 ? 0 : pick(0, std::min<int64_t>(2 * window_ms, 5000));
        clock.Advance(absl::Milliseconds(advance));
        const int64_t cost =
            pick(0, 4) == 0 ? pick(1, limit + 1) : pick(1, std::max<int64_t>(1, limit / 4));
        const bool spend = pick(0, 3) != 0;
        const LimitRequest request{AllowanceId{key, algorithm, window_ms}, limit, cost};
        const Decision in_memory = memory.Check(request, spend);
        absl::StatusOr<Decision> in_redis = Check(request, spend);
        ASSERT_TRUE(in_redis.ok()) << in_redis.status();
        SCOPED_TRACE(absl::StrCat("limit ", limit, " cost ", cost, spend ? " check" : " peek"));
        EXPECT_EQ(in_redis->allowed, in_memory.allowed);
        EXPECT_EQ(in_redis->remaining, in_memory.remaining);
        EXPECT_EQ(in_redis->reset_after_ms, in_memory.reset_after_ms);
        EXPECT_EQ(in_redis->retry_after_ms, in_memory.retry_after_ms);
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 3 * 24 * 60);
}

TEST_F(RedisStoreTest, TakesTheTimeFromRedisAndEveryKeyHasATtl) {
  ASSERT_TRUE(WaitConnected());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Check(Fixed("user:" + std::to_string(i % 5), 3)).ok());
  }
  absl::StatusOr<RedisReply> keys = redis_.Command({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->elements.size(), 5u);
  for (const RedisReply& key : keys->elements) {
    SCOPED_TRACE(key.str);
    EXPECT_EQ(key.str.rfind("test:{fw:60000:user:", 0), 0u);
    absl::StatusOr<RedisReply> ttl = redis_.Command({"PTTL", key.str});
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(ttl->integer, 0);
    EXPECT_LE(ttl->integer, 60'000);
  }
}

TEST_F(RedisStoreTest, ADeniedCheckWritesNothing) {
  ASSERT_TRUE(WaitConnected());
  absl::StatusOr<Decision> denied = Check(Fixed("k", 2, 60'000, 3));
  ASSERT_TRUE(denied.ok());
  EXPECT_FALSE(denied->allowed);
  absl::StatusOr<RedisReply> keys = redis_.Command({"KEYS", "*"});
  EXPECT_TRUE(keys->elements.empty());
}

TEST_F(RedisStoreTest, EveryAlgorithmSetsTheTtlItsStateNeeds) {
  ASSERT_TRUE(WaitConnected());
  // Sliding window: the count weighs on the next window too, so up to two windows.
  ASSERT_TRUE(
      Check(LimitRequest{AllowanceId{"sw", Algorithm::kSlidingWindow, 60'000}, 10, 1}).ok());
  // Token bucket: until the TAT, cost * window / limit = 2 * 60,000 / 3 ms from now.
  ASSERT_TRUE(Check(LimitRequest{AllowanceId{"tb", Algorithm::kTokenBucket, 60'000}, 3, 2}).ok());
  struct Expected {
    std::string key;
    int64_t above;
    int64_t at_most;
  };
  for (const Expected& e : {Expected{"test:{sw:60000:sw}", 60'000 - 1000, 120'000},
                            Expected{"test:{tb:60000:tb}", 40'000 - 1000, 40'000}}) {
    SCOPED_TRACE(e.key);
    absl::StatusOr<RedisReply> ttl = redis_.Command({"PTTL", e.key});
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(ttl->integer, e.above);
    EXPECT_LE(ttl->integer, e.at_most);
  }
}

TEST_F(RedisStoreTest, DeniedChecksAndPeeksWriteNothingInAnyAlgorithm) {
  ASSERT_TRUE(WaitConnected());
  for (Algorithm algorithm :
       {Algorithm::kFixedWindow, Algorithm::kSlidingWindow, Algorithm::kTokenBucket}) {
    SCOPED_TRACE(AlgorithmName(algorithm));
    const AllowanceId id{"quiet", algorithm, 60'000};
    const std::string key = RedisStore::KeyFor("test:", id);
    EXPECT_FALSE(Check(LimitRequest{id, 2, 3}).value().allowed);
    EXPECT_TRUE(Check(LimitRequest{id, 2, 1}, /*spend=*/false).value().allowed);
    EXPECT_EQ(redis_.Command({"EXISTS", key})->integer, 0);

    ASSERT_TRUE(Check(LimitRequest{id, 2, 2}).value().allowed);
    absl::StatusOr<RedisReply> before = redis_.Command({"HGETALL", key});
    EXPECT_FALSE(Check(LimitRequest{id, 2, 1}).value().allowed);
    EXPECT_FALSE(Check(LimitRequest{id, 1, 1}).value().allowed);
    EXPECT_FALSE(Check(LimitRequest{id, 2, 1}, /*spend=*/false).value().allowed);
    absl::StatusOr<RedisReply> after = redis_.Command({"HGETALL", key});
    ASSERT_EQ(before->elements.size(), after->elements.size());
    for (size_t i = 0; i < before->elements.size(); ++i) {
      EXPECT_EQ(before->elements[i].str, after->elements[i].str);
    }
  }
}

TEST_F(RedisStoreTest, ResetDeletesTheAllowance) {
  ASSERT_TRUE(WaitConnected());
  ASSERT_TRUE(Check(Fixed("r", 1)).value().allowed);
  ASSERT_FALSE(Check(Fixed("r", 1)).value().allowed);
  std::promise<absl::Status> done;
  store_->Reset(AllowanceId{"r", Algorithm::kFixedWindow, 60'000},
                [&](absl::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_TRUE(Check(Fixed("r", 1)).value().allowed);
}

TEST_F(RedisStoreTest, ScriptFlushIsInvisible) {
  ASSERT_TRUE(WaitConnected());
  ASSERT_TRUE(Check(Fixed("f", 10)).ok());
  ASSERT_TRUE(redis_.Command({"SCRIPT", "FLUSH"}).ok());
  absl::StatusOr<Decision> after = Check(Fixed("f", 10));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->remaining, 8);
}

TEST_F(RedisStoreTest, AFrozenRedisFailsTheCheckWithinTheTimeout) {
  ASSERT_TRUE(WaitConnected());
  redis_.Pause();
  const absl::Time start = absl::Now();
  absl::StatusOr<Decision> d = Check(Fixed("slow", 10));
  const absl::Duration took = absl::Now() - start;
  redis_.Resume();
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(took, absl::Milliseconds(200) + absl::Milliseconds(300));
  // The late reply is dropped; the connection keeps working.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(Check(Fixed("slow", 10)).ok());
}

TEST_F(RedisStoreTest, ReconnectsAfterRedisIsKilledAndRestartedEmpty) {
  ASSERT_TRUE(WaitConnected());
  ASSERT_TRUE(Check(Fixed("x", 1)).value().allowed);
  redis_.Kill();
  absl::StatusOr<Decision> during = Check(Fixed("x", 1));
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(redis_.Start().ok());
  ASSERT_TRUE(WaitConnected());
  // The data went with the old process: the count starts again.
  absl::StatusOr<Decision> after = Check(Fixed("x", 1));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->allowed);
}

TEST(RedisClientTest, ConnectsWhenRedisStartsLater) {
  RedisServer redis;
  RedisClient::Options options;
  options.endpoint = *ParseRedisUrl(redis.url());
  options.max_backoff = absl::Milliseconds(100);
  RedisClient client(options);
  client.Start();
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(redis.Start().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!client.connected() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(client.connected());
}

TEST(RedisClientTest, UsesThePasswordAndRefusesAWrongOneWithoutCrashing) {
  RedisServer redis({"--requirepass", "s3cret"});
  ASSERT_TRUE(redis.Start().ok());

  RedisClient::Options good;
  good.endpoint = *ParseRedisUrl(redis.url());
  RedisClient with_password(good);
  with_password.Start();

  RedisClient::Options bad = good;
  bad.endpoint.password = "wrong";
  bad.max_backoff = absl::Milliseconds(100);
  RedisClient with_wrong_password(bad);
  with_wrong_password.Start();

  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!with_password.connected() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(with_password.connected());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(with_wrong_password.connected());

  std::promise<absl::StatusOr<RedisReply>> reply;
  with_wrong_password.Command({"PING"}, [&](absl::StatusOr<RedisReply> r) { reply.set_value(r); });
  absl::StatusOr<RedisReply> r = reply.get_future().get();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find("wrong"), absl::string_view::npos);
}

TEST(RedisClientTest, StopAnswersEveryQueuedCommand) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisClient::Options options;
  options.endpoint = *ParseRedisUrl(redis.url());
  options.command_timeout = absl::Seconds(5);
  auto client = std::make_unique<RedisClient>(options);
  client->Start();
  while (!client->connected()) absl::SleepFor(absl::Milliseconds(5));
  redis.Pause();
  std::atomic<int> answered{0};
  for (int i = 0; i < 100; ++i) {
    client->Command({"PING"}, [&](absl::StatusOr<RedisReply>) { answered.fetch_add(1); });
  }
  absl::SleepFor(absl::Milliseconds(50));
  client->Stop();
  EXPECT_EQ(answered.load(), 100);
  redis.Resume();
  client->Command({"PING"}, [&](absl::StatusOr<RedisReply> r) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    answered.fetch_add(1);
  });
  EXPECT_EQ(answered.load(), 101);
}

}  // namespace
}  // namespace ratelimit
