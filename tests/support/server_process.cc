#include "tests/support/server_process.h"

#include <signal.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/support/http.h"
#include "tests/support/window.h"

namespace ratelimit::testing {

namespace pb = ::ratelimit::v1;

namespace {

bool PortAccepts(int port) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace

ServerProcess::ServerProcess(std::vector<std::string> flags, std::vector<std::string> env)
    : flags_(std::move(flags)),
      env_(std::move(env)),
      port_(PickFreePort()),
      admin_port_(PickFreePort()),
      dir_(MakeTempDir("ratelimit-server-test")) {}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::unique_ptr<pb::RateLimitService::Stub> ServerProcess::NewStub() const {
  return pb::RateLimitService::NewStub(
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
}

absl::Status ServerProcess::Start() {
  std::vector<std::string> argv = {RATELIMIT_SERVER_PATH,
                                   absl::StrCat("--grpc-address=", address()),
                                   absl::StrCat("--admin-address=127.0.0.1:", admin_port_)};
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  if (absl::Status s = process_.Start(argv, dir_ + "/server.log", env_); !s.ok()) return s;
  // Wait until the port accepts connections before making a channel: a channel whose first
  // connection is refused backs off for seconds.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && !PortAccepts(port_)) {
    absl::StatusOr<int> exited = process_.Wait(absl::Milliseconds(1));
    if (exited.ok()) {
      return absl::InternalError(
          absl::StrCat("server exited with ", *exited, " during start-up: ", Log()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  stub_ = NewStub();
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
    pb::HealthSummary health;
    if (stub_->GetHealth(&context, pb::GetHealthRequest(), &health).ok()) {
      // Tests count decisions in one-minute fixed windows right after start-up.
      WaitForRoomInWindow();
      return absl::OkStatus();
    }
    absl::StatusOr<int> exited = process_.Wait(absl::Milliseconds(1));
    if (exited.ok()) {
      return absl::InternalError(
          absl::StrCat("server exited with ", *exited, " during start-up: ", Log()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("server did not answer in time: " + Log());
}

absl::StatusOr<int> ServerProcess::Stop(int signal, absl::Duration timeout) {
  process_.Signal(signal);
  return process_.Wait(timeout);
}

pb::CheckRequest MakeCheck(const std::string& key, int64_t limit, int64_t window_ms, int64_t cost) {
  pb::CheckRequest request;
  request.set_key(key);
  request.set_limit(limit);
  request.mutable_window()->set_seconds(window_ms / 1000);
  request.mutable_window()->set_nanos(static_cast<int32_t>(window_ms % 1000) * 1'000'000);
  request.set_cost(cost);
  request.set_algorithm(pb::ALGORITHM_FIXED_WINDOW);
  return request;
}

grpc::Status CallCheck(pb::RateLimitService::Stub& stub, const pb::CheckRequest& request,
                       pb::CheckResponse* response, bool peek, absl::Duration deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return peek ? stub.Peek(&context, request, response) : stub.Check(&context, request, response);
}

}  // namespace ratelimit::testing
