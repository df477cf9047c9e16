// The admin endpoint of a real ratelimit-server: exact counters after known traffic, the
// breaker's gauges through a Redis outage, bounded label sets, /health and basic auth.

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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

std::string Scrape(const ServerProcess& server, const std::string& auth = "") {
  absl::StatusOr<testing::HttpResponse> response = HttpGet(server.admin_port(), "/metrics", auth);
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return "";
  EXPECT_EQ(response->status, 200);
  return response->body;
}

nlohmann::json HealthJson(const ServerProcess& server, int* status = nullptr) {
  absl::StatusOr<testing::HttpResponse> response = HttpGet(server.admin_port(), "/health");
  EXPECT_TRUE(response.ok());
  if (status != nullptr) *status = response->status;
  return nlohmann::json::parse(response->body);
}

void Check(ServerProcess& server, const std::string& key, int64_t limit, bool peek = false) {
  pb::CheckResponse r;
  ASSERT_TRUE(CallCheck(server.stub(), MakeCheck(key, limit, 60'000), &r, peek).ok());
}

// Runs `promtool check metrics` on `exposition`; returns its output, empty when clean.
std::string Promtool(const std::string& exposition, int* exit_code) {
  const std::string path = testing::MakeTempDir("scrape") + "/metrics.txt";
  std::ofstream(path) << exposition;
  FILE* pipe = popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
  std::string out;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  *exit_code = pclose(pipe);
  return out;
}

TEST(MetricsTest, CountersMatchAKnownSequenceExactly) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  // api: 3 allowed, 2 denied. web: 1 allowed, 1 denied. nocolon: 1 denied. ":x": 1 denied.
  for (int i = 0; i < 5; ++i) Check(server, "api:user", 3);
  for (int i = 0; i < 2; ++i) Check(server, "web:home", 1);
  Check(server, "nocolon", 0 + 1);
  Check(server, "nocolon", 1);
  Check(server, ":x", 1);
  Check(server, ":x", 1);
  // Peeks and rejected input count nowhere.
  Check(server, "api:user", 3, /*peek=*/true);
  pb::CheckResponse r;
  ASSERT_FALSE(CallCheck(server.stub(), MakeCheck("", 3, 60'000), &r).ok());

  const std::string text = Scrape(server);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_requests_total{allowed="true",source="memory"})"), 6);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_requests_total{allowed="false",source="memory"})"), 5);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_requests_total{allowed="true",source="redis"})"), 0);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_requests_total{allowed="false",source="redis"})"), 0);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_rejected_total{key_prefix="api"})"), 2);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_rejected_total{key_prefix="web"})"), 1);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_rejected_total{key_prefix="nocolon"})"), 1);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_rejected_total{key_prefix="unknown"})"), 1);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_check_duration_seconds_count{source="memory"})"), 11);
  EXPECT_EQ(MetricValue(text, R"(circuit_breaker_state{name="redis"})"), 0);
  EXPECT_EQ(MetricValue(text, "ratelimit_memory_store_entries"), 4);
  EXPECT_EQ(MetricValue(text, "ratelimit_memory_store_max_size"), 10000);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(MetricValue(text, "process_open_fds"), 3);
  EXPECT_GT(MetricValue(text, "process_max_fds"), 0);
  EXPECT_GT(MetricValue(text, "process_start_time_seconds"), 1.6e9);
  EXPECT_GE(MetricValue(text, "process_cpu_seconds_total"), 0);
  EXPECT_EQ(text.find("api:user"), std::string::npos) << "keys never appear in labels";
}

TEST(MetricsTest, TheScrapePassesPromtool) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  Check(server, "a:b", 1);
  Check(server, "a:b", 1);
  int code = -1;
  const std::string out = Promtool(Scrape(server), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "promtool found problems";
}

TEST(MetricsTest, TheKeyPrefixLabelIsBounded) {
  ServerProcess server({"--metrics-max-key-prefixes=20"});
  ASSERT_TRUE(server.Start().ok());
  // 10,000 distinct prefixes, each denied once (cost above the limit).
  std::vector<pb::CheckRequest> requests;
  for (int i = 0; i < 10'000; ++i) {
    requests.push_back(MakeCheck("p" + std::to_string(i) + ":k", 1, 60'000, 2));
  }
  for (const pb::CheckRequest& request : requests) {
    pb::CheckResponse r;
    ASSERT_TRUE(CallCheck(server.stub(), request, &r).ok());
    ASSERT_FALSE(r.allowed());
  }
  const std::string text = Scrape(server);
  EXPECT_LE(testing::CountSeries(text, "ratelimit_rejected_total"), 21);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_rejected_total{key_prefix="other"})"), 10'000 - 20);
}

TEST(MetricsTest, MemoryStoreGaugesFollowKeysAndNeverPassTheBound) {
  ServerProcess server({"--memory-store-max-size=50"});
  ASSERT_TRUE(server.Start().ok());
  for (int i = 0; i < 30; ++i) Check(server, "g:" + std::to_string(i), 5);
  EXPECT_EQ(MetricValue(Scrape(server), "ratelimit_memory_store_entries"), 30);
  for (int i = 30; i < 200; ++i) {
    Check(server, "g:" + std::to_string(i), 5);
    if (i % 20 == 0) ASSERT_LE(MetricValue(Scrape(server), "ratelimit_memory_store_entries"), 50);
  }
  const std::string text = Scrape(server);
  EXPECT_LE(MetricValue(text, "ratelimit_memory_store_entries"), 50);
  EXPECT_EQ(MetricValue(text, "ratelimit_memory_store_max_size"), 50);
  EXPECT_LE(HealthJson(server)["memoryStore"]["size"].get<int>(), 50);
}

TEST(MetricsTest, BreakerGaugesAndHealthFollowARedisOutage) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  ServerProcess server({"--redis=" + redis.url(), "--redis-timeout=50ms",
                        "--breaker-failure-threshold=2", "--breaker-open-duration=1s"});
  ASSERT_TRUE(server.Start().ok());
  Check(server, "o:k", 100);
  std::string text = Scrape(server);
  EXPECT_EQ(MetricValue(text, R"(circuit_breaker_state{name="redis"})"), 0);
  EXPECT_EQ(MetricValue(text, R"(ratelimit_requests_total{allowed="true",source="redis"})"), 1);
  nlohmann::json health = HealthJson(server);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["redis"]["configured"], true);
  EXPECT_EQ(health["redis"]["connected"], true);

  // Down: failures open the breaker.
  redis.Kill();
  for (int i = 0; i < 3; ++i) Check(server, "o:k", 100);
  text = Scrape(server);
  EXPECT_EQ(MetricValue(text, R"(circuit_breaker_state{name="redis"})"), 2);
  EXPECT_GE(MetricValue(text, R"(circuit_breaker_failures_total{name="redis"})"), 2);
  EXPECT_EQ(MetricValue(text, R"(circuit_breaker_transitions_total{name="redis",to="OPEN"})"), 1);
  EXPECT_GE(MetricValue(text, R"(ratelimit_redis_errors_total{kind="connection"})"), 2);
  int status = 0;
  health = HealthJson(server, &status);
  EXPECT_EQ(status, 200) << "still answering, from memory";
  EXPECT_EQ(health["status"], "degraded");
  EXPECT_EQ(health["circuitBreaker"]["state"], "OPEN");
  grpc::ClientContext context;
  pb::HealthSummary summary;
  ASSERT_TRUE(server.stub().GetHealth(&context, pb::GetHealthRequest(), &summary).ok());
  EXPECT_EQ(summary.breaker_state(), pb::BREAKER_STATE_OPEN);
  EXPECT_EQ(summary.backend(), "memory");

  // Back: after the open duration, a probe closes it.
  ASSERT_TRUE(redis.Start().ok());
  absl::SleepFor(absl::Milliseconds(1100));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    Check(server, "o:k", 100);
    if (MetricValue(Scrape(server), R"(circuit_breaker_state{name="redis"})") == 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  text = Scrape(server);
  EXPECT_EQ(MetricValue(text, R"(circuit_breaker_state{name="redis"})"), 0);
  EXPECT_GE(MetricValue(text, R"(circuit_breaker_transitions_total{name="redis",to="HALF_OPEN"})"),
            1);
  EXPECT_GE(MetricValue(text, R"(circuit_breaker_transitions_total{name="redis",to="CLOSED"})"), 1);
  health = HealthJson(server);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["circuitBreaker"]["state"], "CLOSED");
  EXPECT_GT(MetricValue(text, "ratelimit_redis_command_duration_seconds_count"), 0);
}

TEST(AdminTest, HealthHasEveryField) {
  ServerProcess server({"--memory-store-max-size=77"});
  ASSERT_TRUE(server.Start().ok());
  int status = 0;
  nlohmann::json health = HealthJson(server, &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["redis"]["configured"], false);
  EXPECT_EQ(health["redis"]["connected"], false);
  EXPECT_EQ(health["circuitBreaker"]["state"], "CLOSED");
  EXPECT_EQ(health["memoryStore"]["size"], 0);
  EXPECT_EQ(health["memoryStore"]["maxSize"], 77);
}

TEST(AdminTest, BasicAuthGuardsBothPaths) {
  ServerProcess server({"--admin-basic-auth=ops:s3cret"});
  ASSERT_TRUE(server.Start().ok());
  for (const char* path : {"/metrics", "/health"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(HttpGet(server.admin_port(), path)->status, 401);
    EXPECT_EQ(HttpGet(server.admin_port(), path, "ops:wrong")->status, 401);
    EXPECT_EQ(HttpGet(server.admin_port(), path, "ops:s3cret")->status, 200);
  }
  EXPECT_NE(HttpGet(server.admin_port(), "/metrics")->headers.find("WWW-Authenticate"),
            std::string::npos);
  EXPECT_EQ(server.Log().find("s3cret"), std::string::npos);

  // The scheme's case does not matter (RFC 7617); the credentials' does.
  const std::string credentials = absl::Base64Escape("ops:s3cret");
  for (const std::string scheme : {"Basic", "basic", "BASIC"}) {
    absl::StatusOr<std::string> reply = testing::SendRaw(
        server.admin_port(), absl::StrCat("GET /health HTTP/1.0\r\nAuthorization: ", scheme, " ",
                                          credentials, "\r\n\r\n"));
    ASSERT_TRUE(reply.ok());
    EXPECT_TRUE(absl::StartsWith(*reply, "HTTP/1.1 200")) << scheme << ": " << *reply;
  }
  absl::StatusOr<std::string> lowercase_credentials = testing::SendRaw(
      server.admin_port(), absl::StrCat("GET /health HTTP/1.0\r\nAuthorization: Basic ",
                                        absl::Base64Escape("OPS:S3CRET"), "\r\n\r\n"));
  ASSERT_TRUE(lowercase_credentials.ok());
  EXPECT_TRUE(absl::StartsWith(*lowercase_credentials, "HTTP/1.1 401"));
}

TEST(AdminTest, HealthAnswersGetAndHeadAndRefusesOtherMethods) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  absl::StatusOr<std::string> head =
      testing::SendRaw(server.admin_port(), "HEAD /health HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(absl::StartsWith(*head, "HTTP/1.1 200")) << *head;
  EXPECT_TRUE(absl::EndsWith(*head, "\r\n\r\n")) << "HEAD gets no body: " << *head;
  for (const std::string request :
       {"POST /health HTTP/1.0\r\nContent-Length: 0\r\n\r\n", "DELETE /health HTTP/1.0\r\n\r\n",
        "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", "HEAD /metrics HTTP/1.0\r\n\r\n"}) {
    absl::StatusOr<std::string> reply = testing::SendRaw(server.admin_port(), request);
    ASSERT_TRUE(reply.ok());
    EXPECT_TRUE(absl::StartsWith(*reply, "HTTP/1.1 405")) << request << " -> " << *reply;
    EXPECT_NE(reply->find("Allow: GET"), std::string::npos) << *reply;
  }
}

TEST(AdminTest, IdleConnectionsDoNotHoldUpHealthProbes) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(testing::ConnectLoopback(server.admin_port()));
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  absl::StatusOr<testing::HttpResponse> health = HttpGet(server.admin_port(), "/health");
  const absl::Duration took = absl::Now() - start;
  for (int fd : idle) {
    EXPECT_GE(fd, 0);
    if (fd >= 0) close(fd);
  }
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  // With as many workers as idle connections, the probe would wait for a worker's timeout.
  EXPECT_LT(took, absl::Seconds(1));
}

TEST(AdminTest, GarbageOnTheAdminPortDoesNoHarm) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  for (const std::string& junk :
       {std::string("\x00\x01\x02garbage\r\n\r\n", 14), std::string(100'000, 'A'),
        std::string("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        std::string("BREW /pot HTCPCP/1.0\r\n\r\n")}) {
    (void)testing::SendRaw(server.admin_port(), junk);
  }
  EXPECT_EQ(HttpGet(server.admin_port(), "/health")->status, 200);
  EXPECT_EQ(HttpGet(server.admin_port(), "/nothing-here")->status, 404);
}

}  // namespace
}  // namespace ratelimit
