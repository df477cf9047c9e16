// The Redis fault matrix: each fault while a few callers keep checking. Every phase must answer
// every call, within a bound, from the store the phase calls for; afterwards no key in Redis may
// lack a TTL.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <ostream>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/support/http.h"
#include "tests/support/redis_server.h"
#include "tests/support/server_process.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;
using testing::CallCheck;
using testing::HttpGet;
using testing::MakeCheck;
using testing::MetricValue;
using testing::RedisServer;
using testing::ServerProcess;

constexpr absl::Duration kRedisTimeout = absl::Milliseconds(250);
constexpr absl::Duration kOpenDuration = absl::Seconds(1);
// What a loaded, shared 2-core machine may add to any answer.
constexpr absl::Duration kSlack = absl::Milliseconds(250);

// What the callers saw during one phase of a scenario.
struct PhaseStats {
  int64_t calls = 0;
  int64_t errors = 0;
  int64_t from_redis = 0;
  int64_t from_memory = 0;
  std::string first_error;
  std::vector<absl::Duration> latencies;

  absl::Duration Percentile(double p) const {
    if (latencies.empty()) return absl::ZeroDuration();
    std::vector<absl::Duration> sorted = latencies;
    std::sort(sorted.begin(), sorted.end());
    const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
    return sorted[index];
  }
  absl::Duration Max() const { return Percentile(1.0); }
};

std::ostream& operator<<(std::ostream& out, const PhaseStats& s) {
  return out << "calls=" << s.calls << " errors=" << s.errors << " redis=" << s.from_redis
             << " memory=" << s.from_memory << " p50=" << s.Percentile(0.5)
             << " p90=" << s.Percentile(0.9) << " max=" << s.Max()
             << (s.first_error.empty() ? "" : " first error: ") << s.first_error;
}

// A few threads checking without pause, each on its own stub, every call with a deadline. What
// they see is tallied per phase. Bounded: each thread stops after kMaxCalls calls or kMaxRun.
// Thread-safe.
class CallerLoad {
 public:
  static constexpr pb::Algorithm kAlgorithms[] = {
      pb::ALGORITHM_FIXED_WINDOW, pb::ALGORITHM_SLIDING_WINDOW, pb::ALGORITHM_TOKEN_BUCKET};
  static constexpr int kMaxCalls = 200'000;
  static constexpr absl::Duration kMaxRun = absl::Minutes(2);

  CallerLoad(const ServerProcess& server, int threads, std::string key_prefix = "fault") {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i, stub = server.NewStub(), key_prefix] {
        Run(*stub, absl::StrCat(key_prefix, ":", i, ":"));
      });
    }
  }
  ~CallerLoad() { Stop(); }

  // Returns what was seen since the previous phase began, and begins the next one.
  PhaseStats NextPhase() {
    absl::MutexLock lock(&mu_);
    return std::exchange(current_, PhaseStats{});
  }

  // A fresh phase of `length`.
  PhaseStats Measure(absl::Duration length) {
    NextPhase();
    absl::SleepFor(length);
    return NextPhase();
  }

  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Run(pb::RateLimitService::Stub& stub, const std::string& key_prefix) {
    const absl::Time end = absl::Now() + kMaxRun;
    for (int i = 0; i < kMaxCalls && !stop_.load() && absl::Now() < end; ++i) {
      // Every algorithm in turn, so that each one's keys are checked for a TTL afterwards.
      pb::CheckRequest request = MakeCheck(absl::StrCat(key_prefix, i % 16), 1'000'000'000, 60'000);
      request.set_algorithm(kAlgorithms[i % 3]);
      // A bucket this large is whole again within a millisecond and its key expires at once;
      // a small one stays in Redis long enough to be checked. Denials are answers too.
      if (request.algorithm() == pb::ALGORITHM_TOKEN_BUCKET) request.set_limit(100);
      pb::CheckResponse response;
      const absl::Time start = absl::Now();
      const grpc::Status status =
          CallCheck(stub, request, &response, /*peek=*/false, absl::Seconds(5));
      const absl::Duration took = absl::Now() - start;

      absl::MutexLock lock(&mu_);
      ++current_.calls;
      current_.latencies.push_back(took);
      if (!status.ok()) {
        if (current_.errors++ == 0) {
          current_.first_error = absl::StrCat(status.error_code(), " ", status.error_message());
        }
      } else if (response.source() == pb::SOURCE_REDIS) {
        ++current_.from_redis;
      } else {
        ++current_.from_memory;
      }
    }
  }

  absl::Mutex mu_;
  PhaseStats current_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

pb::HealthSummary Health(pb::RateLimitService::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  pb::HealthSummary health;
  EXPECT_TRUE(stub.GetHealth(&context, pb::GetHealthRequest(), &health).ok());
  return health;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

bool WaitForBreaker(ServerProcess& server, pb::BreakerState state, absl::Duration timeout) {
  return WaitFor([&] { return Health(server.stub()).breaker_state() == state; }, timeout);
}

std::string Scrape(const ServerProcess& server) {
  absl::StatusOr<testing::HttpResponse> response = HttpGet(server.admin_port(), "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? response->body : "";
}

double Transitions(const std::string& metrics, const std::string& to) {
  return MetricValue(
      metrics, absl::StrCat(R"(circuit_breaker_transitions_total{name="redis",to=")", to, R"("})"));
}

// The time stamp at the start of each log line, e.g. 2026-01-02T03:04:05.678+00:00.
constexpr char kLogTimeFormat[] = "%Y-%m-%dT%H:%M:%E*S%Ez";

// One breaker transition, as the server logged it.
struct Transition {
  absl::Time at;
  std::string change;  // e.g. "OPEN -> HALF_OPEN"
};

std::vector<Transition> LoggedTransitions(const std::string& log) {
  std::vector<Transition> out;
  constexpr absl::string_view kMarker = "circuit breaker 'redis' ";
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const size_t marker = line.find(kMarker);
    if (marker == absl::string_view::npos) continue;
    Transition t;
    std::string error;
    if (!absl::ParseTime(kLogTimeFormat, line.substr(0, line.find(' ')), &t.at, &error)) {
      continue;
    }
    absl::string_view rest = line.substr(marker + kMarker.size());
    t.change = std::string(rest.substr(0, rest.find(':')));
    out.push_back(std::move(t));
  }
  return out;
}

// When the last line holding `text` was logged; InfinitePast when none was.
absl::Time LastLoggedTime(const std::string& log, absl::string_view text) {
  absl::Time last = absl::InfinitePast();
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, text)) continue;
    std::string error;
    (void)absl::ParseTime(kLogTimeFormat, line.substr(0, line.find(' ')), &last, &error);
  }
  return last;
}

// Every key the service wrote has a TTL, so none outlives its use; the callers' keys of every
// algorithm are among them. Returns how many keys there are.
size_t ExpectEveryKeyHasATtl(const RedisServer& redis) {
  absl::StatusOr<RedisReply> keys = redis.Command({"KEYS", "*"});
  EXPECT_TRUE(keys.ok()) << keys.status();
  if (!keys.ok()) return 0;
  std::set<std::string> kinds;
  for (const RedisReply& key : keys->elements) {
    absl::StatusOr<RedisReply> ttl = redis.Command({"PTTL", key.str});
    EXPECT_TRUE(ttl.ok()) << ttl.status();
    if (!ttl.ok()) continue;
    // -1: no TTL. -2: expired since KEYS, which is fine. A sliding window keeps the previous
    // window too, so up to two windows of 60s.
    EXPECT_NE(ttl->integer, -1) << key.str << " has no TTL";
    EXPECT_LE(ttl->integer, 120'000) << key.str;
    if (const size_t brace = key.str.find('{'); brace != std::string::npos) {
      kinds.insert(key.str.substr(brace + 1, 2));
    }
  }
  if (!keys->elements.empty()) {
    // Token-bucket keys live only until the bucket is full again (well under a second at the
    // callers' rate), so on a slow machine they may be gone by now; the windows' keys are not.
    EXPECT_TRUE(kinds.count("fw") && kinds.count("sw")) << "keys of both windows expected";
    for (const std::string& kind : kinds) EXPECT_TRUE(kind == "fw" || kind == "sw" || kind == "tb");
  }
  return keys->elements.size();
}

// Zero failed calls and no answer slower than `bound`.
void ExpectAllAnswered(const PhaseStats& phase, absl::Duration bound, const std::string& name) {
  SCOPED_TRACE(name);
  std::cout << "[ phase    ] " << name << ": " << phase << "\n";
  EXPECT_GT(phase.calls, 0);
  EXPECT_EQ(phase.errors, 0) << phase;
  EXPECT_LE(phase.Max(), bound) << phase;
}

std::vector<std::string> ServerFlags(const std::string& url,
                                     absl::Duration timeout = kRedisTimeout) {
  return {"--redis=" + url, "--redis-timeout=" + absl::FormatDuration(timeout),
          "--breaker-failure-threshold=3",
          "--breaker-open-duration=" + absl::FormatDuration(kOpenDuration),
          "--breaker-half-open-probes=1"};
}

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()); }

  void StartServer(absl::Duration timeout = kRedisTimeout) {
    server_ = std::make_unique<ServerProcess>(ServerFlags(redis_.url(), timeout));
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return Health(server_->stub()).backend() == "redis"; }, absl::Seconds(10)));
  }

  RedisServer redis_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(FaultsTest, RedisKilledAndRestartedIsAnsweredFromMemoryWhileTheBreakerCycles) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  CallerLoad load(*server_, 4);
  const PhaseStats healthy = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(healthy, kRedisTimeout + kSlack, "healthy");
  EXPECT_GT(healthy.from_redis, healthy.from_memory);

  // Killed: refused connections fail fast; the breaker opens after three of them.
  redis_.Kill();
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_OPEN, absl::Seconds(5)));
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "killed, until the breaker opens");
  const PhaseStats down = load.Measure(kOpenDuration * 2.5);
  ExpectAllAnswered(down, kRedisTimeout + kSlack, "down, breaker open");
  EXPECT_EQ(down.from_redis, 0);
  EXPECT_GT(down.from_memory, 0);
  std::string metrics = Scrape(*server_);
  EXPECT_GE(Transitions(metrics, "HALF_OPEN"), 1) << "the breaker half-opens to probe";
  EXPECT_GE(Transitions(metrics, "OPEN"), 2) << "a failed probe opens it again";

  // Restarted: the client reconnects on its own and the next probe closes the breaker.
  ASSERT_TRUE(redis_.Start().ok());
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_CLOSED, absl::Seconds(10)))
      << server_->Log();
  std::cout << "[ measured ] breaker closed " << absl::Now() - restarted
            << " after Redis restarted\n";
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "restarted, until closed");
  const PhaseStats recovered = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(recovered, kRedisTimeout + kSlack, "recovered");
  EXPECT_GT(recovered.from_redis, 0);
  load.Stop();

  // The log tells the same story: opened at the threshold, half-opened no sooner than the open
  // duration, closed by the first probe after Redis was back.
  const std::string log = server_->Log();
  const std::vector<Transition> transitions = LoggedTransitions(log);
  ASSERT_GE(transitions.size(), 4u) << log;
  EXPECT_EQ(transitions.front().change, "CLOSED -> OPEN");
  EXPECT_NE(log.find("CLOSED -> OPEN: 3 consecutive failures"), std::string::npos) << log;
  for (size_t i = 1; i < transitions.size(); ++i) {
    if (transitions[i].change != "OPEN -> HALF_OPEN") continue;
    EXPECT_GE(transitions[i].at - transitions[i - 1].at, kOpenDuration - absl::Milliseconds(5))
        << "half-opened early";
  }
  EXPECT_EQ(transitions.back().change, "HALF_OPEN -> CLOSED");
  EXPECT_EQ(transitions[transitions.size() - 2].change, "OPEN -> HALF_OPEN");
  const absl::Time connected = LastLoggedTime(log, "redis connected to");
  EXPECT_LE(transitions.back().at - connected, kOpenDuration + kSlack)
      << "the first probe after the reconnection closes the breaker";
  metrics = Scrape(*server_);
  EXPECT_EQ(Transitions(metrics, "CLOSED"), 1);

  EXPECT_GT(ExpectEveryKeyHasATtl(redis_), 0u);
}

TEST_F(FaultsTest, AnIdleServersBreakerClosesOnItsOwnWhenRedisIsBack) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  redis_.Kill();
  pb::CheckResponse response;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("idle:k", 100, 60'000), &response).ok());
  }
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_OPEN, absl::Seconds(5)));

  // From here no check comes: only the server's own probes can close the breaker.
  ASSERT_TRUE(redis_.Start().ok());
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_CLOSED, kOpenDuration * 5))
      << server_->Log();
  std::cout << "[ measured ] idle server's breaker closed " << absl::Now() - restarted
            << " after Redis restarted (open duration " << kOpenDuration << ")\n";
  EXPECT_EQ(Health(server_->stub()).backend(), "redis");
}

TEST_F(FaultsTest, RedisFrozenBySigstopWaitsNoLongerThanTheTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  CallerLoad load(*server_, 4);
  ExpectAllAnswered(load.Measure(absl::Milliseconds(500)), kRedisTimeout + kSlack, "healthy");

  // Frozen: the socket stays open and nothing answers, so each call waits out the timeout
  // until the breaker opens; then answers come from memory at once.
  redis_.Pause();
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_OPEN, absl::Seconds(5)));
  const PhaseStats freezing = load.NextPhase();
  ExpectAllAnswered(freezing, kRedisTimeout + kSlack, "frozen, until the breaker opens");
  EXPECT_GE(freezing.Max(), kRedisTimeout - absl::Milliseconds(10)) << "someone waited it out";
  const PhaseStats frozen = load.Measure(kOpenDuration * 2.5);
  ExpectAllAnswered(frozen, kRedisTimeout + kSlack, "frozen, breaker open");
  EXPECT_EQ(frozen.from_redis, 0);
  // Only the half-open probes wait on Redis; the rest answer at memory speed.
  EXPECT_LE(frozen.Percentile(0.9), kRedisTimeout / 5) << frozen;
  EXPECT_GE(Transitions(Scrape(*server_), "HALF_OPEN"), 1);

  redis_.Resume();
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_CLOSED, absl::Seconds(10)))
      << server_->Log();
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "resumed, until closed");
  const PhaseStats recovered = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(recovered, kRedisTimeout + kSlack, "recovered");
  EXPECT_GT(recovered.from_redis, 0);
  load.Stop();
  EXPECT_GT(ExpectEveryKeyHasATtl(redis_), 0u);
}

TEST_F(FaultsTest, RedisBusyInDebugSleepWaitsNoLongerThanTheTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  CallerLoad load(*server_, 4);
  ExpectAllAnswered(load.Measure(absl::Milliseconds(500)), kRedisTimeout + kSlack, "healthy");

  // DEBUG SLEEP blocks Redis itself; the test's own connection gives up on the reply after 1s.
  std::thread sleeper([&] { (void)redis_.Command({"DEBUG", "SLEEP", "2"}); });
  absl::SleepFor(absl::Milliseconds(2500));
  sleeper.join();
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "redis asleep");
  ASSERT_TRUE(WaitForBreaker(*server_, pb::BREAKER_STATE_CLOSED, absl::Seconds(10)));
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "awake, until closed");
  const PhaseStats recovered = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(recovered, kRedisTimeout + kSlack, "recovered");
  EXPECT_GT(recovered.from_redis, 0);
  load.Stop();
  EXPECT_GE(Transitions(Scrape(*server_), "OPEN"), 1) << "the sleep outlasted three timeouts";
  EXPECT_GT(ExpectEveryKeyHasATtl(redis_), 0u);
}

TEST_F(FaultsTest, ScriptFlushWhileServingReloadsTheScriptAndIsNoFailure) {
  // A long timeout, so that a slow machine cannot produce a failure that is not the flush's.
  ASSERT_NO_FATAL_FAILURE(StartServer(absl::Seconds(2)));
  CallerLoad load(*server_, 4);
  ExpectAllAnswered(load.Measure(absl::Milliseconds(300)), absl::Seconds(2) + kSlack, "before");

  load.NextPhase();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(redis_.Command({"SCRIPT", "FLUSH"}).ok());
    absl::SleepFor(absl::Milliseconds(100));
  }
  const PhaseStats flushing = load.NextPhase();
  load.Stop();
  ExpectAllAnswered(flushing, absl::Seconds(2) + kSlack, "flushing every 100ms");
  EXPECT_EQ(flushing.from_memory, 0) << "no check fell back to memory";
  EXPECT_GT(flushing.from_redis, 0);

  const std::string metrics = Scrape(*server_);
  EXPECT_EQ(MetricValue(metrics, R"(circuit_breaker_failures_total{name="redis"})"), 0);
  EXPECT_EQ(MetricValue(metrics, R"(circuit_breaker_state{name="redis"})"), 0);
  for (const char* kind : {"timeout", "connection", "reply"}) {
    EXPECT_EQ(
        MetricValue(metrics, absl::StrCat(R"(ratelimit_redis_errors_total{kind=")", kind, R"("})")),
        0)
        << kind;
  }

  // Flushed with nothing running: the next check puts the script back in Redis's cache.
  ASSERT_TRUE(redis_.Command({"SCRIPT", "FLUSH"}).ok());
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("after-flush", 5, 60'000), &r).ok());
  EXPECT_EQ(r.source(), pb::SOURCE_REDIS);
  absl::StatusOr<RedisReply> info = redis_.Command({"INFO", "memory"});
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(absl::StrContains(info->str, "number_of_cached_scripts:0\r")) << info->str;
  EXPECT_TRUE(absl::StrContains(info->str, "number_of_cached_scripts:")) << info->str;
  EXPECT_GT(ExpectEveryKeyHasATtl(redis_), 0u);
}

TEST_F(FaultsTest, RedisRestartedEmptyStartsTheCountsAgain) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  CallerLoad load(*server_, 4);
  pb::CheckResponse r;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("empty:k", 3, 60'000), &r).ok());
    ASSERT_EQ(r.source(), pb::SOURCE_REDIS);
  }
  ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("empty:k", 3, 60'000), &r).ok());
  ASSERT_FALSE(r.allowed());

  // Killed and started again at once: the data is gone with the old process.
  redis_.Kill();
  ASSERT_TRUE(redis_.Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        pb::HealthSummary health = Health(server_->stub());
        return health.redis_connected() && health.backend() == "redis";
      },
      absl::Seconds(10)))
      << server_->Log();
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "restart");
  const PhaseStats after = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(after, kRedisTimeout + kSlack, "after the restart");
  EXPECT_GT(after.from_redis, 0);
  load.Stop();

  ASSERT_TRUE(CallCheck(server_->stub(), MakeCheck("empty:k", 3, 60'000), &r).ok());
  EXPECT_EQ(r.source(), pb::SOURCE_REDIS);
  EXPECT_TRUE(r.allowed()) << "the count starts again";
  EXPECT_EQ(r.remaining(), 2);
  EXPECT_GT(ExpectEveryKeyHasATtl(redis_), 0u);
}

TEST(FaultsStartupTest, ServerStartedWhileRedisIsDownConnectsByItself) {
  RedisServer redis;  // Not started yet.
  ServerProcess server(ServerFlags(redis.url()));
  ASSERT_TRUE(server.Start().ok());
  CallerLoad load(server, 4);
  const PhaseStats down = load.Measure(absl::Seconds(1));
  ExpectAllAnswered(down, kRedisTimeout + kSlack, "redis not there yet");
  EXPECT_EQ(down.from_redis, 0);
  EXPECT_GT(down.from_memory, 0);

  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        pb::HealthSummary health = Health(server.stub());
        return health.redis_connected() && health.backend() == "redis";
      },
      absl::Seconds(10)))
      << server.Log();
  ExpectAllAnswered(load.NextPhase(), kRedisTimeout + kSlack, "redis starting");
  const PhaseStats up = load.Measure(absl::Milliseconds(500));
  ExpectAllAnswered(up, kRedisTimeout + kSlack, "redis up");
  EXPECT_GT(up.from_redis, 0);
  load.Stop();
  EXPECT_NE(server.Log().find("redis connected to"), std::string::npos);
  EXPECT_GT(ExpectEveryKeyHasATtl(redis), 0u);
}

constexpr char kPassword[] = "faults-pw-71c3e";
constexpr char kWrongPassword[] = "faults-wrong-pw-5a90";

TEST(FaultsPasswordTest, ThePasswordIsUsedAndAWrongOneIsLoggedAndServedFromMemory) {
  RedisServer redis({"--requirepass", kPassword});
  ASSERT_TRUE(redis.Start().ok());
  ServerProcess right(ServerFlags(redis.url()));
  ServerProcess wrong(
      ServerFlags(absl::StrCat("redis://:", kWrongPassword, "@127.0.0.1:", redis.port())));
  ServerProcess none(ServerFlags(absl::StrCat("redis://127.0.0.1:", redis.port())));
  ASSERT_TRUE(right.Start().ok());
  ASSERT_TRUE(wrong.Start().ok());
  ASSERT_TRUE(none.Start().ok());
  ASSERT_TRUE(
      WaitFor([&] { return Health(right.stub()).backend() == "redis"; }, absl::Seconds(10)));

  CallerLoad right_load(right, 2, "right");
  CallerLoad wrong_load(wrong, 2, "wrong");
  absl::SleepFor(absl::Seconds(3));  // Long enough for the client to retry the login a few times.
  const PhaseStats with_password = right_load.NextPhase();
  const PhaseStats with_wrong_password = wrong_load.NextPhase();
  right_load.Stop();
  wrong_load.Stop();
  ExpectAllAnswered(with_password, kRedisTimeout + kSlack, "right password");
  EXPECT_GT(with_password.from_redis, 0);
  EXPECT_EQ(with_password.from_memory, 0);
  ExpectAllAnswered(with_wrong_password, kRedisTimeout + kSlack, "wrong password");
  EXPECT_EQ(with_wrong_password.from_redis, 0);
  EXPECT_GT(with_wrong_password.from_memory, 0);

  // Still up, said clearly and once (not on every retry), without the password.
  EXPECT_TRUE(Health(wrong.stub()).serving());
  EXPECT_FALSE(Health(wrong.stub()).redis_connected());
  const std::string wrong_log = wrong.Log();
  EXPECT_NE(wrong_log.find("redis rejected the login: WRONGPASS"), std::string::npos) << wrong_log;
  // The client's own report; the breaker's transitions quote it as their reason.
  size_t said = 0;
  for (size_t at = 0;
       (at = wrong_log.find("unavailable: redis rejected the login", at)) != std::string::npos;
       ++at) {
    ++said;
  }
  EXPECT_EQ(said, 1u) << wrong_log;
  EXPECT_NE(none.Log().find("redis rejected the login: NOAUTH"), std::string::npos) << none.Log();

  // The password is nowhere: logs, metrics, health, nor the error of a call that needed Redis.
  pb::ResetRequest reset;
  reset.set_key("k");
  reset.mutable_window()->set_seconds(60);
  grpc::ClientContext context;
  pb::ResetResponse reset_response;
  const grpc::Status reset_status = wrong.stub().Reset(&context, reset, &reset_response);
  EXPECT_EQ(reset_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  for (const ServerProcess* server : {&right, &wrong, &none}) {
    const std::string seen = absl::StrCat(
        server->Log(), Scrape(*server),
        HttpGet(server->admin_port(), "/health").value_or(testing::HttpResponse{}).body,
        reset_status.error_message());
    EXPECT_FALSE(absl::StrContains(seen, kPassword)) << seen;
    EXPECT_FALSE(absl::StrContains(seen, kWrongPassword)) << seen;
  }
  EXPECT_GT(ExpectEveryKeyHasATtl(redis), 0u);
}

// Runs ratelimit-server with `args` and `env` until it exits; returns its output.
std::string RunServerToExit(const std::vector<std::string>& args,
                            const std::vector<std::string>& env, int* exit_code) {
  testing::ChildProcess process;
  std::vector<std::string> argv = {RATELIMIT_SERVER_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = testing::MakeTempDir("password-test") + "/out.log";
  EXPECT_TRUE(process.Start(argv, log, env).ok());
  absl::StatusOr<int> code = process.Wait(absl::Seconds(10));
  EXPECT_TRUE(code.ok());
  *exit_code = code.value_or(-1);
  return process.ReadLog();
}

TEST(FaultsPasswordTest, ThePasswordIsNeitherInHelpNorInErrors) {
  const std::string url = absl::StrCat("redis://:", kPassword, "@127.0.0.1:6399");
  int code = -1;
  std::string out =
      RunServerToExit({"--redis=" + url, "--help"}, {"RATELIMIT_REDIS=" + url}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("--redis"), std::string::npos) << out;
  EXPECT_FALSE(absl::StrContains(out, kPassword)) << out;

  const std::string bad_url = absl::StrCat("redis://:", kPassword, "@127.0.0.1:notaport");
  out = RunServerToExit({"--redis=" + bad_url}, {}, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--redis"), std::string::npos) << out;
  EXPECT_FALSE(absl::StrContains(out, kPassword)) << out;

  out = RunServerToExit({}, {"RATELIMIT_REDIS=" + bad_url}, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--redis"), std::string::npos) << out;
  EXPECT_FALSE(absl::StrContains(out, kPassword)) << out;
}

}  // namespace
}  // namespace ratelimit
