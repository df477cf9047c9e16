#include "lib/redis_store.h"

#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

// Calls `use` with the pieces of an allowance's Redis key, so that a command can take the key
// without building it in a string of its own first.
template <typename Use>
auto WithKeyPieces(absl::string_view prefix, const AllowanceId& id, Use use) {
  const absl::AlphaNum window(id.window_ms);
  return use({prefix, "{", AlgorithmCode(id.algorithm), ":", window.Piece(), ":", id.key, "}"});
}

// The script's reply: {allowed (1 or 0), remaining, reset_after_ms, retry_after_ms}.
absl::StatusOr<Decision> ParseDecision(const absl::StatusOr<RedisIntegers>& reply, int64_t limit) {
  if (!reply.ok()) return reply.status();
  if (reply->size() != 4) {
    return absl::InternalError("redis: the script's reply has an unexpected shape");
  }
  Decision decision;
  decision.allowed = (*reply)[0] == 1;
  decision.limit = limit;
  decision.remaining = (*reply)[1];
  decision.reset_after_ms = (*reply)[2];
  decision.retry_after_ms = (*reply)[3];
  decision.source = Source::kRedis;
  return decision;
}

}  // namespace

RedisStore::RedisStore(RedisClient& client, Options options)
    : client_(client),
      options_(std::move(options)),
      fixed_window_script_(client.RegisterScript(absl::StrCat(kScriptPrelude, kFixedWindowScript))),
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
  return WithKeyPieces(prefix, id, [](std::initializer_list<absl::string_view> pieces) {
    return absl::StrJoin(pieces, "");
  });
}

RedisArgs RedisStore::CheckArgs(absl::string_view prefix, const LimitRequest& request, bool spend,
                                const Clock* clock) {
  // The key and five numbers, each under 30 bytes on the wire.
  RedisArgs args(prefix.size() + request.id.key.size() + 200);
  WithKeyPieces(prefix, request.id, [&args](std::initializer_list<absl::string_view> pieces) {
    args.AddJoined(pieces);
  });
  args.Add(request.limit).Add(request.id.window_ms).Add(request.cost).Add(spend ? "1" : "0");
  if (clock != nullptr)
    args.Add(absl::ToUnixMillis(clock->Now()));
  else
    args.Add("");
  return args;
}

void RedisStore::Check(const LimitRequest& request, bool spend, DecisionCallback done) {
  client_.Eval(
      ScriptFor(request.id.algorithm), 1,
      CheckArgs(options_.key_prefix, request, spend, test_clock_.load()),
      [limit = request.limit, done = std::move(done)](const absl::StatusOr<RedisIntegers>& reply) {
        done(ParseDecision(reply, limit));
      });
}

void RedisStore::Reset(const AllowanceId& id, ResetCallback done) {
  RedisArgs args;
  args.Add("DEL");
  WithKeyPieces(options_.key_prefix, id, [&args](std::initializer_list<absl::string_view> pieces) {
    args.AddJoined(pieces);
  });
  client_.Command(std::move(args), [done = std::move(done)](absl::StatusOr<RedisReply> reply) {
    if (!reply.ok()) return done(reply.status());
    done(RedisReplyError(*reply));
  });
}

}  // namespace ratelimit
