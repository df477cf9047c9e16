#include "tests/support/redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ratelimit::testing {

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)), port_(PickFreePort()), dir_(MakeTempDir("redis-test")) {
  for (size_t i = 0; i + 1 < extra_args_.size(); ++i) {
    if (extra_args_[i] == "--requirepass") password_ = extra_args_[i + 1];
  }
}

std::string RedisServer::url() const {
  return absl::StrCat("redis://", password_.empty() ? "" : absl::StrCat(":", password_, "@"),
                      "127.0.0.1:", port_);
}

absl::Status RedisServer::Start() {
  if (process_.running()) Kill();
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_,
                                   "--enable-debug-command",
                                   "local"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  if (absl::Status s = process_.Start(argv, dir_ + "/redis.log"); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<RedisReply> pong = Command({"PING"});
    if (pong.ok() && pong->type == RedisReply::Type::kStatus) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("redis-server did not answer PING: " + process_.ReadLog());
}

void RedisServer::Kill() {
  process_.Signal(SIGCONT);
  process_.Signal(SIGKILL);
  (void)process_.Wait(absl::Seconds(5));
}

void RedisServer::Pause() { process_.Signal(SIGSTOP); }
void RedisServer::Resume() { process_.Signal(SIGCONT); }

absl::StatusOr<RedisReply> RedisServer::Command(const std::vector<std::string>& args) const {
  timeval timeout{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return absl::UnavailableError("cannot connect to the test redis");
  }
  redisSetTimeout(c, timeout);
  auto call = [c](const std::vector<std::string>& a) -> redisReply* {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& s : a) {
      argv.push_back(s.data());
      lens.push_back(s.size());
    }
    return static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  };
  if (!password_.empty()) {
    if (redisReply* r = call({"AUTH", password_})) freeReplyObject(r);
  }
  redisReply* reply = call(args);
  if (reply == nullptr) {
    redisFree(c);
    return absl::UnavailableError("no reply from the test redis");
  }
  RedisReply out = ToRedisReply(reply);
  freeReplyObject(reply);
  redisFree(c);
  return out;
}

}  // namespace ratelimit::testing
