#ifndef RATELIMIT_TESTS_SUPPORT_REDIS_SERVER_H_
#define RATELIMIT_TESTS_SUPPORT_REDIS_SERVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/redis_client.h"
#include "tests/support/process.h"

namespace ratelimit::testing {

// A real redis-server on a free loopback port, started for one test and killed after it.
class RedisServer {
 public:
  // `extra_args` go to redis-server as they are, e.g. {"--requirepass", "pw"}.
  explicit RedisServer(std::vector<std::string> extra_args = {});

  // Starts (or restarts, on the same port) and waits until it answers PING.
  absl::Status Start();
  void Kill();    // SIGKILL: the data is gone with it.
  void Pause();   // SIGSTOP: the socket stays open and nothing answers.
  void Resume();  // SIGCONT.

  int port() const { return port_; }
  std::string url() const;

  // Runs one command on a fresh blocking connection, with the password if one was set.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args) const;

 private:
  std::vector<std::string> extra_args_;
  std::string password_;
  int port_;
  std::string dir_;
  ChildProcess process_;
};

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_REDIS_SERVER_H_
