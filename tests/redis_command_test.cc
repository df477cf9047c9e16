// What the Redis client and store put on the wire, and how replies are read, without a server.

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/clock.h"
#include "lib/redis_client.h"
#include "lib/redis_store.h"

namespace ratelimit {
namespace {

TEST(RedisArgsTest, EachArgumentIsABulkStringWithItsLength) {
  RedisArgs args;
  args.Add("DEL").Add("").Add(int64_t{-42}).AddJoined({"a", "{b}", "c"});
  EXPECT_EQ(args.count(), 4);
  EXPECT_EQ(std::string(args.wire()), "$3\r\nDEL\r\n$0\r\n\r\n$3\r\n-42\r\n$5\r\na{b}c\r\n");
}

TEST(RedisArgsTest, BytesAreCopiedAsTheyAre) {
  const std::string key("a\r\n\0b", 5);
  RedisArgs args;
  args.Add(key);
  EXPECT_EQ(std::string(args.wire()), std::string("$5\r\na\r\n\0b\r\n", 11));
}

TEST(RedisStoreArgsTest, ACheckSendsTheKeyThenLimitWindowCostSpendAndNow) {
  const LimitRequest request{AllowanceId{"user:42", Algorithm::kSlidingWindow, 60'000}, 100, 3};
  RedisArgs args = RedisStore::CheckArgs("rl:", request, /*spend=*/true, nullptr);
  EXPECT_EQ(args.count(), 6);
  EXPECT_EQ(std::string(args.wire()),
            "$21\r\nrl:{sw:60000:user:42}\r\n$3\r\n100\r\n$5\r\n60000\r\n$1\r\n3\r\n$1\r\n1\r\n"
            "$0\r\n\r\n");
}

TEST(RedisStoreArgsTest, APeekWithATestClockSendsSpendZeroAndTheClocksTime) {
  FakeClock clock(absl::FromUnixMillis(1'700'000'000'123));
  const LimitRequest request{AllowanceId{"k", Algorithm::kTokenBucket, 1'000},
                             9'007'199'254'740'991, 1};
  RedisArgs args = RedisStore::CheckArgs("", request, /*spend=*/false, &clock);
  EXPECT_EQ(std::string(args.wire()),
            "$11\r\n{tb:1000:k}\r\n$16\r\n9007199254740991\r\n$4\r\n1000\r\n$1\r\n1\r\n"
            "$1\r\n0\r\n$13\r\n1700000000123\r\n");
}

TEST(RedisStoreArgsTest, TheKeyInTheCommandIsKeyFor) {
  const LimitRequest request{AllowanceId{"x y:{z}", Algorithm::kFixedWindow, 5}, 1, 1};
  const std::string key = RedisStore::KeyFor("p:", request.id);
  EXPECT_EQ(key, "p:{fw:5:x y:{z}}");
  RedisArgs expected;
  expected.Add(key);
  const std::string wire(RedisStore::CheckArgs("p:", request, true, nullptr).wire());
  EXPECT_EQ(wire.substr(0, expected.wire().size()), expected.wire());
}

// hiredis replies built by hand, as its reader would build them.
redisReply Integer(long long value) {
  redisReply r{};
  r.type = REDIS_REPLY_INTEGER;
  r.integer = value;
  return r;
}

redisReply Text(int type, std::string& text) {
  redisReply r{};
  r.type = type;
  r.str = text.data();
  r.len = text.size();
  return r;
}

redisReply Array(std::vector<redisReply*>& elements) {
  redisReply r{};
  r.type = REDIS_REPLY_ARRAY;
  r.element = elements.data();
  r.elements = elements.size();
  return r;
}

TEST(ToRedisIntegersTest, AnArrayOfIntegersIsReadInOrder) {
  redisReply a = Integer(1), b = Integer(-7), c = Integer(9'007'199'254'740'991), d = Integer(0);
  std::vector<redisReply*> elements = {&a, &b, &c, &d};
  const redisReply reply = Array(elements);
  absl::StatusOr<RedisIntegers> integers = ToRedisIntegers(&reply);
  ASSERT_TRUE(integers.ok()) << integers.status();
  EXPECT_EQ(*integers, (RedisIntegers{1, -7, 9'007'199'254'740'991, 0}));
}

TEST(ToRedisIntegersTest, AnErrorReplyIsTheSameStatusAsForAnOwnedReply) {
  for (std::string message : {std::string("ERR something broke"), std::string("WRONGPASS no")}) {
    SCOPED_TRACE(message);
    const redisReply reply = Text(REDIS_REPLY_ERROR, message);
    absl::StatusOr<RedisIntegers> integers = ToRedisIntegers(&reply);
    EXPECT_FALSE(integers.ok());
    EXPECT_EQ(integers.status(), RedisReplyError(ToRedisReply(&reply)));
  }
}

TEST(ToRedisIntegersTest, AnyOtherShapeIsAnInternalError) {
  std::string text = "1";
  redisReply status = Text(REDIS_REPLY_STATUS, text), string = Text(REDIS_REPLY_STRING, text);
  redisReply one = Integer(1);
  std::vector<redisReply*> mixed = {&one, &string};
  redisReply array = Array(mixed);
  for (const redisReply* reply : {&status, &string, &one, &array}) {
    SCOPED_TRACE(reply->type);
    EXPECT_EQ(ToRedisIntegers(reply).status().code(), absl::StatusCode::kInternal);
  }
}

}  // namespace
}  // namespace ratelimit
