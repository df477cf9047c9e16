#ifndef RATELIMIT_TESTS_SUPPORT_SERVER_PROCESS_H_
#define RATELIMIT_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "ratelimit/v1/ratelimit.grpc.pb.h"
#include "tests/support/process.h"

namespace ratelimit::testing {

// A real ratelimit-server process on a free loopback port.
class ServerProcess {
 public:
  // `flags` are passed as they are; --grpc-address and --admin-address are added, on free ports.
  explicit ServerProcess(std::vector<std::string> flags = {}, std::vector<std::string> env = {});

  // Starts and waits until GetHealth answers.
  absl::Status Start();
  // Sends `signal` and waits for the exit code.
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(15));

  std::string address() const;
  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  pid_t pid() const { return process_.pid(); }
  std::string Log() const { return process_.ReadLog(); }
  std::unique_ptr<ratelimit::v1::RateLimitService::Stub> NewStub() const;
  ratelimit::v1::RateLimitService::Stub& stub() { return *stub_; }

 private:
  std::vector<std::string> flags_;
  std::vector<std::string> env_;
  int port_;
  int admin_port_;
  std::string dir_;
  ChildProcess process_;
  std::unique_ptr<ratelimit::v1::RateLimitService::Stub> stub_;
};

// A CheckRequest with the window in milliseconds.
ratelimit::v1::CheckRequest MakeCheck(const std::string& key, int64_t limit, int64_t window_ms,
                                      int64_t cost = 1);

// Calls Check (or Peek) with a deadline; fills `response`.
grpc::Status CallCheck(ratelimit::v1::RateLimitService::Stub& stub,
                       const ratelimit::v1::CheckRequest& request,
                       ratelimit::v1::CheckResponse* response, bool peek = false,
                       absl::Duration deadline = absl::Seconds(5));

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_SERVER_PROCESS_H_
