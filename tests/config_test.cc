#include "server/config.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ratelimit {
namespace {

// Loads a config from `args` and a made-up environment.
absl::StatusOr<ServerConfig> Load(std::vector<std::string> args,
                                  std::map<std::string, std::string> env = {}) {
  return LoadServerConfig(args, [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(LoadServerConfigTest, DefaultsAreMemoryMode) {
  absl::StatusOr<ServerConfig> config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->redis.has_value());
  EXPECT_EQ(config->grpc_address, "127.0.0.1:50051");
  EXPECT_EQ(config->memory_store_max_size, 10000);
  EXPECT_EQ(config->breaker.failure_threshold, 5);
}

TEST(LoadServerConfigTest, EnvironmentSetsAndTheCommandLineWins) {
  absl::StatusOr<ServerConfig> config =
      Load({"--memory-store-max-size", "77"}, {{"RATELIMIT_REDIS", "redis://:pw@127.0.0.1:6390"},
                                               {"RATELIMIT_MEMORY_STORE_MAX_SIZE", "5"},
                                               {"RATELIMIT_REDIS_TIMEOUT", "250ms"}});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->redis.has_value());
  EXPECT_EQ(config->redis->port, 6390);
  EXPECT_EQ(config->memory_store_max_size, 77);
  EXPECT_EQ(config->redis_timeout, absl::Milliseconds(250));
  EXPECT_EQ(DescribeConfig(*config).find("pw@"), std::string::npos);
}

TEST(LoadServerConfigTest, AddressesTakeHostsIpv6AndPortZero) {
  for (const std::string address :
       {"127.0.0.1:50051", "[::1]:50051", "localhost:0", "0.0.0.0:65535", "my-host.internal:1"}) {
    absl::StatusOr<ServerConfig> config =
        Load({"--grpc-address=" + address, "--admin-address=" + address});
    ASSERT_TRUE(config.ok()) << address << ": " << config.status();
    EXPECT_EQ(config->grpc_address, address);
    EXPECT_EQ(config->admin_address, address);
  }
}

TEST(LoadServerConfigTest, InvalidValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<Case> cases = {
      {{"--redis-timeout=soon"}, "--redis-timeout"},
      {{"--redis-timeout=0s"}, "--redis-timeout"},
      {{"--breaker-failure-threshold=0"}, "--breaker-failure-threshold"},
      {{"--breaker-half-open-probes=-1"}, "--breaker-half-open-probes"},
      {{"--breaker-open-duration=0s"}, "--breaker-open-duration"},
      {{"--memory-store-max-size=0"}, "--memory-store-max-size"},
      {{"--memory-store-max-size=lots"}, "--memory-store-max-size"},
      {{"--redis=localhost:6379"}, "--redis"},
      {{"--grpc-address=nowhere"}, "--grpc-address"},
      {{"--grpc-address=127.0.0.1:99999"}, "--grpc-address"},
      {{"--grpc-address=127.0.0.1:abc"}, "--grpc-address"},
      {{"--grpc-address=:"}, "--grpc-address"},
      {{"--grpc-address=:50051"}, "--grpc-address"},
      {{"--grpc-address=127.0.0.1:"}, "--grpc-address"},
      {{"--grpc-address=[::1:50051"}, "--grpc-address"},
      {{"--grpc-address=::1:50051"}, "--grpc-address"},
      {{"--admin-address=x:abc"}, "--admin-address"},
      {{"--admin-address=127.0.0.1:65536"}, "--admin-address"},
      {{"--log-level=loud"}, "--log-level"},
      {{"--no-such-flag=1"}, "--no-such-flag"},
      {{"--redis-prefix"}, "--redis-prefix"},
      // The next flag is not swallowed as the value.
      {{"--redis-prefix", "--log-level=debug"}, "--redis-prefix: missing value"},
      {{"stray"}, "argument number 1"},
      {{"--redis=", "redis://:hunter2@h:1"}, "argument number 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[0]);
    absl::StatusOr<ServerConfig> config = Load(c.args);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(c.flag), absl::string_view::npos)
        << config.status().message();
  }
}

TEST(LoadServerConfigTest, ABadEnvironmentValueNamesItsVariable) {
  absl::StatusOr<ServerConfig> config = Load({}, {{"RATELIMIT_REDIS_TIMEOUT", "never"}});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("RATELIMIT_REDIS_TIMEOUT"), absl::string_view::npos);
}

TEST(LoadServerConfigTest, AWrongRedisUrlNeverEchoesThePassword) {
  absl::StatusOr<ServerConfig> config = Load({"--redis=redis://:hunter2@h:notaport"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().find("hunter2"), absl::string_view::npos);
}

TEST(ServerUsageTest, ListsEveryFlagWithItsEnvironmentVariable) {
  const std::string usage = ServerUsage();
  for (const char* flag : {"--grpc-address", "--redis", "--redis-prefix", "--redis-timeout",
                           "--breaker-failure-threshold", "--breaker-open-duration",
                           "--breaker-half-open-probes", "--memory-store-max-size"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(usage.find("RATELIMIT_REDIS_TIMEOUT"), std::string::npos);
  EXPECT_TRUE(WantsHelp({"--help"}));
  EXPECT_FALSE(WantsHelp({"--redis=x"}));
}

}  // namespace
}  // namespace ratelimit
