#include "lib/redis_url.h"

#include "gtest/gtest.h"

namespace ratelimit {
namespace {

TEST(ParseRedisUrlTest, ReadsEveryPart) {
  absl::StatusOr<RedisEndpoint> e = ParseRedisUrl("redis://:s3cr@t@cache.local:6380/2");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "cache.local");
  EXPECT_EQ(e->port, 6380);
  EXPECT_EQ(e->password, "s3cr@t");
  EXPECT_EQ(e->username, "");
  EXPECT_EQ(e->db, 2);
}

TEST(ParseRedisUrlTest, DefaultsAndIpv6AndUsername) {
  absl::StatusOr<RedisEndpoint> plain = ParseRedisUrl("redis://127.0.0.1");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  absl::StatusOr<RedisEndpoint> v6 = ParseRedisUrl("redis://[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  absl::StatusOr<RedisEndpoint> user = ParseRedisUrl("redis://app:pw@h:1/0");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->username, "app");
  EXPECT_EQ(user->password, "pw");
}

TEST(ParseRedisUrlTest, RejectsMalformedUrlsWithoutEchoingThePassword) {
  for (const char* url :
       {"", "http://h:1", "redis://", "redis://:pw@", "redis://h:0", "redis://h:65536",
        "redis://h:12ab", "redis://h:", "redis://h/x", "redis://h/-1", "redis://[::1",
        "redis://[::1]x", "redis://nopassword@h", "redis://:@h", "redis://:topsecret@h:99999"}) {
    SCOPED_TRACE(url);
    absl::StatusOr<RedisEndpoint> e = ParseRedisUrl(url);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(e.status().message().find("topsecret"), absl::string_view::npos);
  }
}

TEST(RedactedUrlTest, HidesThePassword) {
  absl::StatusOr<RedisEndpoint> e = ParseRedisUrl("redis://:hunter2@h:1/3");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(RedactedUrl(*e), "redis://:***@h:1/3");
  EXPECT_EQ(RedactedUrl(*ParseRedisUrl("redis://[::1]:5")), "redis://[::1]:5/0");
}

}  // namespace
}  // namespace ratelimit
