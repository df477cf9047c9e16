// The client library and ratelimit-cli against a live ratelimit-server.

#include "ratelimit/client.h"

#include <signal.h>

#include <cstdio>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/cli.h"
#include "tests/support/server_process.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;
using testing::CliRun;
using testing::RunCli;
using testing::ServerProcess;

CheckParams Params(const std::string& key, int64_t limit) {
  return CheckParams{.key = key, .limit = limit, .window = absl::Minutes(1)};
}

TEST(ClientTest, DecidesThroughTheService) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  Client client(server.address(), {.deadline = absl::Seconds(2)});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<CheckResult> r = client.Check(Params("c:1", 2));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->decided_locally);
    EXPECT_EQ(r->allowed, i < 2);
    EXPECT_EQ(r->source, pb::SOURCE_MEMORY);
    EXPECT_EQ(r->limit, 2);
  }
  absl::StatusOr<CheckResult> peek = client.Peek(Params("c:1", 5));
  ASSERT_TRUE(peek.ok());
  EXPECT_TRUE(peek->allowed);
  EXPECT_EQ(peek->remaining, 2);
  ASSERT_TRUE(client.Reset("c:1", absl::Minutes(1)).ok());
  EXPECT_EQ(client.Check(Params("c:1", 2))->remaining, 1);
  absl::StatusOr<pb::HealthSummary> health = client.Health();
  ASSERT_TRUE(health.ok());
  EXPECT_TRUE(health->serving());
}

TEST(ClientTest, BadInputIsAnErrorNotAFailModeDecision) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  Client client(server.address(), {.deadline = absl::Seconds(2)});
  absl::StatusOr<CheckResult> r = client.Check(Params("", 2));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ClientTest, AsyncChecksFromManyThreadsShareOneClient) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  Client client(server.address(), {.deadline = absl::Seconds(5)});
  std::atomic<int> allowed{0}, answered{0};
  absl::Notification all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        client.CheckAsync(Params("shared", 100), [&](absl::StatusOr<CheckResult> r) {
          if (r.ok() && r->allowed && !r->decided_locally) allowed.fetch_add(1);
          if (answered.fetch_add(1) + 1 == 200) all_done.Notify();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(allowed.load(), 100);
}

TEST(ClientTest, FailModesDecideWhenTheServerIsStopped) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  const std::string address = server.address();
  ASSERT_TRUE(server.Stop(SIGKILL).ok());

  for (FailMode mode : {FailMode::kOpen, FailMode::kClosed}) {
    Client client(address, {.deadline = absl::Milliseconds(200), .fail_mode = mode});
    const absl::Time start = absl::Now();
    absl::StatusOr<CheckResult> r = client.Check(Params("k", 5));
    const absl::Duration took = absl::Now() - start;
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->decided_locally);
    EXPECT_EQ(r->allowed, mode == FailMode::kOpen);
    EXPECT_FALSE(r->service_status.ok());
    EXPECT_LT(took, absl::Milliseconds(200) + absl::Milliseconds(150)) << "about the deadline";
  }
}

TEST(ClientTest, AFrozenServerCostsTheDeadlineAndNoMore) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  Client client(server.address(),
                {.deadline = absl::Milliseconds(100), .fail_mode = FailMode::kClosed});
  ASSERT_TRUE(client.WaitForConnected(absl::Seconds(2)));
  ASSERT_FALSE(client.Check(Params("warm", 5))->decided_locally);
  server.Stop(SIGSTOP, absl::Milliseconds(1)).IgnoreError();
  const absl::Time start = absl::Now();
  absl::StatusOr<CheckResult> r = client.Check(Params("k", 5));
  const absl::Duration took = absl::Now() - start;
  kill(server.pid(), SIGCONT);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->decided_locally);
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->service_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(95));
  EXPECT_LT(took, absl::Milliseconds(100) + absl::Milliseconds(150));
}

TEST(CliTest, ExitCodesAndJson) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  const std::string target = "--target=" + server.address();

  CliRun allowed = RunCli("check " + target + " --key=cli:1 --limit=1 --window=1m --json");
  EXPECT_EQ(allowed.exit_code, 0);
  nlohmann::json j = nlohmann::json::parse(allowed.out);
  EXPECT_EQ(j["allowed"], true);
  EXPECT_EQ(j["remaining"], 0);
  EXPECT_EQ(j["limit"], 1);
  EXPECT_EQ(j["source"], "memory");
  EXPECT_GT(j["reset_after_ms"].get<int64_t>(), 0);

  CliRun denied = RunCli("check " + target + " --key=cli:1 --limit=1 --window=1m --json");
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(denied.out)["allowed"], false);

  CliRun peek = RunCli("peek " + target + " --key=cli:1 --limit=2 --window=1m");
  EXPECT_EQ(peek.exit_code, 0);
  EXPECT_NE(peek.out.find("allowed"), std::string::npos);

  CliRun invalid = RunCli("check " + target + " --key= --limit=1 --json");
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_NE(nlohmann::json::parse(invalid.out)["error"].get<std::string>().find("key"),
            std::string::npos);

  EXPECT_EQ(RunCli("reset " + target + " --key=cli:1 --window=1m").exit_code, 0);
  EXPECT_EQ(RunCli("check " + target + " --key=cli:1 --limit=1 --window=1m").exit_code, 0);

  CliRun health = RunCli("health " + target + " --json");
  EXPECT_EQ(health.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(health.out)["serving"], true);

  EXPECT_EQ(RunCli("frobnicate " + target).exit_code, 2);
  EXPECT_EQ(RunCli("check " + target + " --no-such-flag=1").exit_code, 2);
  EXPECT_EQ(RunCli("check " + target + " --key=k --limit=1 --algorithm=magic").exit_code, 2);
  EXPECT_EQ(RunCli("health --target=127.0.0.1:1 --deadline=200ms").exit_code, 2);
}

TEST(CliTest, BenchReportsPlausibleNumbersAndNoErrors) {
  ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  CliRun bench = RunCli("bench --target=" + server.address() +
                        " --duration=2s --concurrency=16 --keys=100 --limit=50 --window=1h"
                        " --distribution=zipf --json");
  ASSERT_EQ(bench.exit_code, 0) << bench.out;
  nlohmann::json j = nlohmann::json::parse(bench.out);
  const int64_t calls = j["calls"];
  EXPECT_GT(calls, 100);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["allowed"].get<int64_t>() + j["denied"].get<int64_t>(), calls);
  EXPECT_LE(j["allowed"].get<int64_t>(), 100 * 50) << "never more than the limits allow";
  EXPECT_EQ(j["source"]["memory"], calls);
  EXPECT_GT(j["throughput_per_second"].get<double>(), 50);
  const double p50 = j["latency_ms"]["p50"], p99 = j["latency_ms"]["p99"];
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, j["latency_ms"]["max"].get<double>() * 1.02);
  EXPECT_GE(j["elapsed_seconds"].get<double>(), 1.9);

  CliRun counted = RunCli("bench --target=" + server.address() + " --requests=500 --json");
  ASSERT_EQ(counted.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(counted.out)["calls"], 500);
}

}  // namespace
}  // namespace ratelimit
