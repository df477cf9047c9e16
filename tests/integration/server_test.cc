// ratelimit-server end to end: a real process, real gRPC calls, and a real redis-server.

#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tests/support/server_process.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;
using testing::CallCheck;
using testing::ChildProcess;
using testing::MakeCheck;
using testing::RedisServer;
using testing::ServerProcess;

struct Tally {
  int allowed = 0;
  int denied = 0;
  int errors = 0;
  int from_redis = 0;
  int from_memory = 0;
};

// Sends `count` checks at once (all in flight together) and counts the outcomes.
Tally CheckConcurrently(const std::vector<pb::RateLimitService::Stub*>& stubs,
                        const pb::CheckRequest& request, int count) {
  struct Call {
    grpc::ClientContext context;
    pb::CheckResponse response;
    grpc::Status status;
  };
  std::vector<Call> calls(count);
  absl::BlockingCounter done(count);
  for (int i = 0; i < count; ++i) {
    Call& call = calls[i];
    call.context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    stubs[i % stubs.size()]->async()->Check(&call.context, &request, &call.response,
                                            [&call, &done](grpc::Status s) {
                                              call.status = std::move(s);
                                              done.DecrementCount();
                                            });
  }
  done.Wait();
  Tally tally;
  for (const Call& call : calls) {
    if (!call.status.ok()) {
      ++tally.errors;
      continue;
    }
    call.response.allowed() ? ++tally.allowed : ++tally.denied;
    call.response.source() == pb::SOURCE_REDIS ? ++tally.from_redis : ++tally.from_memory;
  }
  return tally;
}

pb::HealthSummary Health(pb::RateLimitService::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  pb::HealthSummary health;
  EXPECT_TRUE(stub.GetHealth(&context, pb::GetHealthRequest(), &health).ok());
  return health;
}

grpc::Status Reset(pb::RateLimitService::Stub& stub, const std::string& key, int64_t window_ms) {
  pb::ResetRequest request;
  request.set_key(key);
  request.mutable_window()->set_seconds(window_ms / 1000);
  request.mutable_window()->set_nanos(static_cast<int32_t>(window_ms % 1000) * 1'000'000);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  pb::ResetResponse response;
  return stub.Reset(&context, request, &response);
}

class MemoryModeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start().ok()); }
  ServerProcess server_;
};

TEST_F(MemoryModeTest, FixedWindowDecisionsAndReset) {
  pb::CheckResponse r;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("user:1", 3, 60'000), &r).ok());
    EXPECT_TRUE(r.allowed());
    EXPECT_EQ(r.remaining(), 2 - i);
    EXPECT_EQ(r.limit(), 3);
    EXPECT_EQ(r.source(), pb::SOURCE_MEMORY);
    EXPECT_GT(r.reset_after().seconds() * 1000 + r.reset_after().nanos() / 1'000'000, 0);
  }
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("user:1", 3, 60'000), &r).ok());
  EXPECT_FALSE(r.allowed());
  EXPECT_GT(r.retry_after().seconds() * 1000 + r.retry_after().nanos() / 1'000'000, 0);

  ASSERT_TRUE(Reset(server_.stub(), "user:1", 60'000).ok());
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("user:1", 3, 60'000), &r).ok());
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.remaining(), 2);
}

TEST_F(MemoryModeTest, ADeniedCheckSpendsNothingAndRetryAfterIsEnough) {
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("burst", 2, 400, 2), &r).ok());
  ASSERT_TRUE(r.allowed());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("burst", 2, 400), &r).ok());
    if (r.allowed()) GTEST_SKIP() << "the window turned between calls; rerun";
    EXPECT_EQ(r.remaining(), 0);
  }
  absl::SleepFor(absl::Seconds(r.retry_after().seconds()) +
                 absl::Nanoseconds(r.retry_after().nanos()));
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("burst", 2, 400, 2), &r).ok());
  EXPECT_TRUE(r.allowed()) << "a denied check must not have spent anything";
}

TEST_F(MemoryModeTest, BadInputIsRejectedAndChangesNothing) {
  struct Case {
    std::string name;
    pb::CheckRequest request;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, auto mutate) {
    pb::CheckRequest r = MakeCheck("bad:key", 5, 60'000);
    mutate(r);
    cases.push_back({std::move(name), r});
  };
  add("empty key", [](pb::CheckRequest& r) { r.clear_key(); });
  add("key of 1025 bytes", [](pb::CheckRequest& r) { r.set_key(std::string(1025, 'x')); });
  add("zero limit", [](pb::CheckRequest& r) { r.set_limit(0); });
  add("negative limit", [](pb::CheckRequest& r) { r.set_limit(-1); });
  add("missing window", [](pb::CheckRequest& r) { r.clear_window(); });
  add("zero window", [](pb::CheckRequest& r) { r.mutable_window()->Clear(); });
  add("negative window", [](pb::CheckRequest& r) { r.mutable_window()->set_seconds(-5); });
  add("window under 1ms", [](pb::CheckRequest& r) {
    r.mutable_window()->set_seconds(0);
    r.mutable_window()->set_nanos(999'999);
  });
  add("window over 366 days",
      [](pb::CheckRequest& r) { r.mutable_window()->set_seconds(366LL * 86400 + 1); });
  add("negative cost", [](pb::CheckRequest& r) { r.set_cost(-1); });
  add("unknown algorithm",
      [](pb::CheckRequest& r) { r.set_algorithm(static_cast<pb::Algorithm>(7)); });

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (bool peek : {false, true}) {
      pb::CheckResponse response;
      grpc::Status status = CallCheck(server_.stub(), c.request, &response, peek);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_FALSE(status.error_message().empty());
    }
  }
  pb::HealthSummary health = Health(server_.stub());
  EXPECT_TRUE(health.serving());
  EXPECT_EQ(health.memory_store().size(), 0) << "rejected input must store nothing";

  pb::ResetRequest reset;
  grpc::ClientContext context;
  pb::ResetResponse response;
  EXPECT_EQ(server_.stub().Reset(&context, reset, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(MemoryModeTest, SlidingWindowAndTokenBucketDecideOverGrpc) {
  auto millis = [](const google::protobuf::Duration& d) {
    return d.seconds() * 1000 + d.nanos() / 1'000'000;
  };
  auto check = [&](pb::Algorithm algorithm, int64_t cost, bool peek = false) {
    pb::CheckRequest request = MakeCheck("algo:user", 3, 60'000, cost);
    request.set_algorithm(algorithm);
    pb::CheckResponse response;
    EXPECT_TRUE(CallCheck(server_.stub(), request, &response, peek).ok());
    return response;
  };

  // Token bucket: a burst of 3, then one token every 20 s.
  for (int i = 0; i < 3; ++i) {
    pb::CheckResponse r = check(pb::ALGORITHM_TOKEN_BUCKET, 1);
    EXPECT_TRUE(r.allowed());
    EXPECT_EQ(r.remaining(), 2 - i);
    EXPECT_EQ(r.source(), pb::SOURCE_MEMORY);
  }
  pb::CheckResponse peek = check(pb::ALGORITHM_TOKEN_BUCKET, 1, /*peek=*/true);
  pb::CheckResponse denied = check(pb::ALGORITHM_TOKEN_BUCKET, 1);
  EXPECT_FALSE(peek.allowed());
  EXPECT_FALSE(denied.allowed());
  EXPECT_GT(millis(denied.retry_after()), 19'000);
  EXPECT_LE(millis(denied.retry_after()), 20'000);
  EXPECT_GT(millis(denied.reset_after()), 59'000);
  EXPECT_LE(millis(denied.reset_after()), 60'000);

  // Sliding window: 3 in this window; the count then weighs on the next one, so whole again
  // only after more than one window.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(check(pb::ALGORITHM_SLIDING_WINDOW, 1).allowed());
  pb::CheckResponse sliding = check(pb::ALGORITHM_SLIDING_WINDOW, 1);
  EXPECT_FALSE(sliding.allowed());
  EXPECT_EQ(sliding.remaining(), 0);
  EXPECT_GT(millis(sliding.retry_after()), 0);
  EXPECT_GE(millis(sliding.reset_after()), 60'000);
  EXPECT_LE(millis(sliding.reset_after()), 120'000);

  // Each algorithm is its own allowance, and Reset names the one it clears.
  EXPECT_TRUE(check(pb::ALGORITHM_FIXED_WINDOW, 3).allowed());
  pb::ResetRequest reset;
  reset.set_key("algo:user");
  reset.mutable_window()->set_seconds(60);
  reset.set_algorithm(pb::ALGORITHM_TOKEN_BUCKET);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  pb::ResetResponse reset_response;
  ASSERT_TRUE(server_.stub().Reset(&context, reset, &reset_response).ok());
  EXPECT_TRUE(check(pb::ALGORITHM_TOKEN_BUCKET, 3).allowed());
  EXPECT_FALSE(check(pb::ALGORITHM_SLIDING_WINDOW, 1).allowed());
}

TEST_F(MemoryModeTest, ConcurrentChecksAdmitExactlyTheLimit) {
  Tally tally = CheckConcurrently({&server_.stub()}, MakeCheck("concurrent", 50, 60'000), 200);
  EXPECT_EQ(tally.errors, 0);
  EXPECT_EQ(tally.allowed, 50);
  EXPECT_EQ(tally.denied, 150);
  EXPECT_EQ(tally.from_memory, 200);
}

TEST_F(MemoryModeTest, HealthReportsTheMemoryBackend) {
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("a", 5, 60'000), &r).ok());
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("b", 5, 60'000), &r).ok());
  pb::HealthSummary health = Health(server_.stub());
  EXPECT_TRUE(health.serving());
  EXPECT_EQ(health.backend(), "memory");
  EXPECT_FALSE(health.redis_connected());
  EXPECT_EQ(health.breaker_state(), pb::BREAKER_STATE_CLOSED);
  EXPECT_EQ(health.memory_store().size(), 2);
  EXPECT_EQ(health.memory_store().max_size(), 10000);
}

// grpc.health.v1.Health/Check, spelled out on the wire (the test has no stub for it):
// HealthCheckRequest{string service = 1} in, HealthCheckResponse{ServingStatus status = 1} out.
// Returns the status number (1 SERVING, 2 NOT_SERVING) or the call's error.
absl::StatusOr<int> StandardHealth(const std::string& address, const std::string& service) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const std::string request = std::string("\x0a") + static_cast<char>(service.size()) + service;
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!out.Dump(&slices).ok()) return absl::InternalError("unreadable response");
  std::string response;
  for (const grpc::Slice& piece : slices) response.append(piece.begin(), piece.end());
  if (response.empty()) return 0;  // UNKNOWN, the default, is not written.
  if (response.size() != 2 || response[0] != '\x08')
    return absl::InternalError("unexpected response");
  return response[1];
}

TEST_F(MemoryModeTest, TheStandardHealthServiceAnswersForTheServerAndTheService) {
  for (const std::string service : {"", "ratelimit.v1.RateLimitService"}) {
    absl::StatusOr<int> status = StandardHealth(server_.address(), service);
    ASSERT_TRUE(status.ok()) << service << ": " << status.status();
    EXPECT_EQ(*status, 1) << service << " is not SERVING";
  }
  absl::StatusOr<int> unknown = StandardHealth(server_.address(), "no.such.Service");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
}

TEST_F(MemoryModeTest, ASecondServerOnTheSamePortRefusesToStart) {
  ChildProcess second;
  const std::string log = testing::MakeTempDir("second-server") + "/server.log";
  ASSERT_TRUE(
      second
          .Start({RATELIMIT_SERVER_PATH, "--grpc-address=" + server_.address(), "--admin-address="},
                 log)
          .ok());
  absl::StatusOr<int> code = second.Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok()) << "the second server is still running";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(second.ReadLog().find("cannot listen on " + server_.address()), std::string::npos)
      << second.ReadLog();
}

TEST_F(MemoryModeTest, KeysThatAreNotUtf8AreRefusedWithoutFloodingTheLog) {
  pb::CheckResponse r;
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(CallCheck(server_.stub(), MakeCheck("\xff\xfe", 5, 60'000), &r).ok());
  }
  ASSERT_TRUE(CallCheck(server_.stub(), MakeCheck("ok", 5, 60'000), &r).ok());
  EXPECT_EQ(server_.Log().find("protobuf"), std::string::npos) << server_.Log();
}

TEST_F(MemoryModeTest, SigtermExitsCleanly) {
  absl::StatusOr<int> code = server_.Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << server_.Log();
}

TEST(ServerStartupTest, AnInvalidFlagStopsStartupWithExitCode2) {
  ServerProcess server({"--breaker-failure-threshold=zero"});
  absl::Status started = server.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.message().find("exited with 2"), absl::string_view::npos) << started;
  EXPECT_NE(server.Log().find("--breaker-failure-threshold"), std::string::npos);
}

TEST(ServerStartupTest, AnEnvironmentVariableSetsAFlag) {
  ServerProcess server({}, {"RATELIMIT_MEMORY_STORE_MAX_SIZE=123"});
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(Health(server.stub()).memory_store().max_size(), 123);
}

class RedisModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--redis=" + redis_.url(), "--redis-timeout=50ms",
                                 "--breaker-failure-threshold=3", "--breaker-open-duration=1s"});
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(WaitForBackend(*server_, "redis"));
  }

  static bool WaitForBackend(ServerProcess& server, const std::string& backend,
                             absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Health(server.stub()).backend() == backend) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  RedisServer redis_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(RedisModeTest, RedisDecidesAndEveryKeyHasATtl) {
  pb::CheckResponse r;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("api:{x} y", 3, 60'000), &r).ok());
    EXPECT_EQ(r.source(), pb::SOURCE_REDIS);
    EXPECT_EQ(r.allowed(), i < 3);
  }
  absl::StatusOr<RedisReply> keys = redis_.Command({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->elements.size(), 1u);
  EXPECT_EQ(keys->elements[0].str, "ratelimit:{fw:60000:api:{x} y}");
  EXPECT_GT(redis_.Command({"PTTL", keys->elements[0].str})->integer, 0);

  ASSERT_TRUE(Reset(server_->stub(), "api:{x} y", 60'000).ok());
  EXPECT_TRUE(redis_.Command({"KEYS", "*"})->elements.empty());
}

TEST_F(RedisModeTest, ConcurrentChecksAdmitExactlyTheLimit) {
  Tally tally = CheckConcurrently({&server_->stub()}, MakeCheck("concurrent", 50, 60'000), 200);
  EXPECT_EQ(tally.errors, 0);
  EXPECT_EQ(tally.allowed, 50);
  EXPECT_EQ(tally.from_redis, 200);
}

TEST_F(RedisModeTest, TwoReplicasSharingRedisAdmitExactlyTheLimitTogether) {
  ServerProcess second({"--redis=" + redis_.url(), "--redis-timeout=50ms"});
  ASSERT_TRUE(second.Start().ok());
  ASSERT_TRUE(WaitForBackend(second, "redis"));
  Tally tally =
      CheckConcurrently({&server_->stub(), &second.stub()}, MakeCheck("shared", 50, 60'000), 200);
  EXPECT_EQ(tally.errors, 0);
  EXPECT_EQ(tally.allowed, 50);
  EXPECT_EQ(tally.from_redis, 200);
}

TEST_F(RedisModeTest, RedisKilledMidRunIsAnsweredFromMemoryThenRedisAgain) {
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, from_redis{0}, from_memory{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      auto stub = server_->NewStub();
      // Bounded in count and time.
      for (int i = 0; i < 20000 && !stop.load(); ++i) {
        pb::CheckResponse r;
        grpc::Status s = CallCheck(*stub, MakeCheck("load:" + std::to_string(t), 1'000'000, 60'000),
                                   &r, false, absl::Seconds(2));
        calls.fetch_add(1);
        if (!s.ok())
          errors.fetch_add(1);
        else if (r.source() == pb::SOURCE_REDIS)
          from_redis.fetch_add(1);
        else
          from_memory.fetch_add(1);
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  const int redis_before = from_redis.load();
  redis_.Kill();
  ASSERT_TRUE(WaitForBackend(*server_, "memory", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));
  const int memory_during = from_memory.load();
  ASSERT_TRUE(redis_.Start().ok());
  // The breaker's open duration is 1s; Redis decides again soon after.
  const bool back = WaitForBackend(*server_, "redis", absl::Seconds(10));
  const int redis_at_return = from_redis.load();
  absl::SleepFor(absl::Milliseconds(300));
  stop.store(true);
  for (auto& c : callers) c.join();

  EXPECT_TRUE(back) << server_->Log();
  EXPECT_EQ(errors.load(), 0) << "every check must be answered";
  EXPECT_GT(redis_before, 0);
  EXPECT_GT(memory_during, 0);
  EXPECT_GT(from_redis.load(), redis_at_return) << "checks must go to Redis again";
  EXPECT_NE(server_->Log().find("OPEN"), std::string::npos);
}

TEST(RedisStartupTest, StartsWithRedisDownAndConnectsWhenItComes) {
  RedisServer redis;
  ServerProcess server({"--redis=" + redis.url(), "--breaker-open-duration=500ms"});
  ASSERT_TRUE(server.Start().ok());
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(server.stub(), MakeCheck("early", 5, 60'000), &r).ok());
  EXPECT_EQ(r.source(), pb::SOURCE_MEMORY);
  EXPECT_FALSE(Health(server.stub()).redis_connected());
  ASSERT_TRUE(redis.Start().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool redis_again = false;
  while (!redis_again && absl::Now() < deadline) {
    ASSERT_TRUE(CallCheck(server.stub(), MakeCheck("early", 5, 60'000), &r).ok());
    redis_again = r.source() == pb::SOURCE_REDIS;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(redis_again) << server.Log();
  EXPECT_TRUE(Health(server.stub()).redis_connected());
}

TEST(RedisStartupTest, TheRedisPasswordNeverReachesTheLog) {
  RedisServer redis({"--requirepass", "pw-do-not-log"});
  ASSERT_TRUE(redis.Start().ok());
  ServerProcess server({"--redis=" + redis.url()});
  ASSERT_TRUE(server.Start().ok());
  ServerProcess wrong(
      {"--redis=redis://:wrong-do-not-log@127.0.0.1:" + std::to_string(redis.port())});
  ASSERT_TRUE(wrong.Start().ok());
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(wrong.stub(), MakeCheck("k", 5, 60'000), &r).ok());
  EXPECT_EQ(r.source(), pb::SOURCE_MEMORY);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(server.Log().find("pw-do-not-log"), std::string::npos);
  EXPECT_EQ(wrong.Log().find("wrong-do-not-log"), std::string::npos);
  EXPECT_NE(wrong.Log().find("WRONGPASS"), std::string::npos) << wrong.Log();
}

}  // namespace
}  // namespace ratelimit
