#include "lib/redis_store.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/redis_scripts.h"

namespace ratelimit {
namespace {

absl::string_view AlgorithmCode(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kFixedWindow:
      return "fw";
    case Algorithm::kSlidingWindow:
      return "sw";
    case Algorithm::kTokenBucket:
      return "tb";
  }
  return "??";
}

absl::StatusOr<Decision> ParseDecision(const absl::StatusOr<RedisReply>& reply, int64_t limit) {
  if (!reply.ok()) return reply.status();
  if (absl::Status error = RedisReplyError(*reply); !error.ok()) return error;
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 4) {
    return absl::InternalError("redis: the script's reply has an unexpected shape");
  }
  for (const RedisReply& element : reply->elements) {
    if (element.type != RedisReply::Type::kInteger) {
      return absl::InternalError("redis: the script's reply holds a non-integer");
    }
  }
  Decision decision;
  decision.allowed = reply->elements[0].integer == 1;
  decision.limit = limit;
  decision.remaining = reply->elements[1].integer;
  decision.reset_after_ms = reply->elements[2].integer;
  decision.retry_after_ms = reply->elements[3].integer;
  decision.source = Source::kRedis;
  return decision;
}

}  // namespace

RedisStore::RedisStore(RedisClient& client, Options options)
    : client_(client),
      options_(std::move(options)),
      fixed_window_script_(client.RegisterScript(kFixedWindowScript)),
      sliding_window_script_(
          client.RegisterScript(absl::StrCat(kScriptPrelude, kSlidingWindowScript))),
      token_bucket_script_(
          client.RegisterScript(absl::StrCat(kScriptPrelude, kTokenBucketScript))) {}

RedisClient::ScriptId RedisStore::ScriptFor(Algorithm algorithm) const {
  switch (algorithm) {
    case Algorithm::kFixedWindow:
      break;
    case Algorithm::kSlidingWindow:
      return sliding_window_script_;
    case Algorithm::kTokenBucket:
      return token_bucket_script_;
  }
  return fixed_window_script_;
}

std::string RedisStore::KeyFor(absl::string_view prefix, const AllowanceId& id) {
  return absl::StrCat(prefix, "{", AlgorithmCode(id.algorithm), ":", id.window_ms, ":", id.key,
                      "}");
}

void RedisStore::Check(const LimitRequest& request, bool spend, DecisionCallback done) {
  const Clock* clock = test_clock_.load();
  std::vector<std::string> args = {
      KeyFor(options_.key_prefix, request.id),
      absl::StrCat(request.limit),
      absl::StrCat(request.id.window_ms),
      absl::StrCat(request.cost),
      spend ? "1" : "0",
      clock != nullptr ? absl::StrCat(absl::ToUnixMillis(clock->Now())) : std::string(),
  };
  client_.Eval(ScriptFor(request.id.algorithm), 1, std::move(args),
               [limit = request.limit, done = std::move(done)](
                   const absl::StatusOr<RedisReply>& reply) { done(ParseDecision(reply, limit)); });
}

void RedisStore::Reset(const AllowanceId& id, ResetCallback done) {
  client_.Command({"DEL", KeyFor(options_.key_prefix, id)},
                  [done = std::move(done)](absl::StatusOr<RedisReply> reply) {
                    if (!reply.ok()) return done(reply.status());
                    done(RedisReplyError(*reply));
                  });
}

}  // namespace ratelimit
