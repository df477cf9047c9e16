#ifndef RATELIMIT_CLIENT_CLIENT_H_
#define RATELIMIT_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ratelimit/v1/ratelimit.grpc.pb.h"

namespace ratelimit {

// What a check decides when the service cannot be reached or misses the deadline.
enum class FailMode {
  kOpen,    // Allow: protect availability.
  kClosed,  // Deny: protect what is behind the limit.
};

struct ClientOptions {
  // How long each call may take, connection included.
  absl::Duration deadline = absl::Milliseconds(50);
  FailMode fail_mode = FailMode::kOpen;
  // Insecure by default; pass grpc::SslCredentials(...) for a TLS server.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// One allowance and what to spend from it.
struct CheckParams {
  std::string key;
  int64_t limit = 0;
  absl::Duration window;
  // 0 means 1.
  int64_t cost = 1;
  ratelimit::v1::Algorithm algorithm = ratelimit::v1::ALGORITHM_FIXED_WINDOW;
};

// The answer to a check: the service's, or the fail mode's when the service did not answer.
struct CheckResult {
  bool allowed = false;
  int64_t limit = 0;
  int64_t remaining = 0;
  absl::Duration reset_after;
  absl::Duration retry_after;
  ratelimit::v1::Source source = ratelimit::v1::SOURCE_UNSPECIFIED;
  // True when the fail mode decided, not the service; `service_status` says why.
  bool decided_locally = false;
  absl::Status service_status;
};

// A client of RateLimitService over one channel, reused for the client's life. Thread-safe:
// share one between threads. Asynchronous callbacks run on gRPC's threads and must not block,
// nor destroy the client.
//
// Results: a check that the service could not answer (unreachable, deadline, server trouble)
// is decided by the fail mode and is not an error; errors are for what retrying cannot fix,
// such as INVALID_ARGUMENT.
class Client {
 public:
  using CheckCallback = std::function<void(absl::StatusOr<CheckResult>)>;
  using ResetCallback = std::function<void(absl::Status)>;
  using HealthCallback = std::function<void(absl::StatusOr<ratelimit::v1::HealthSummary>)>;

  // `target` is a gRPC target such as "127.0.0.1:50051" or "dns:///ratelimit:50051".
  explicit Client(const std::string& target, const ClientOptions& options = {});
  // For tests and callers that build their own channel.
  Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options);
  // Waits for the calls in flight to finish: each ends by its deadline.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  class InFlight;

  absl::StatusOr<CheckResult> Check(const CheckParams& params);
  absl::StatusOr<CheckResult> Peek(const CheckParams& params);
  absl::Status Reset(const std::string& key, absl::Duration window,
                     ratelimit::v1::Algorithm algorithm = ratelimit::v1::ALGORITHM_FIXED_WINDOW);
  absl::StatusOr<ratelimit::v1::HealthSummary> Health();

  void CheckAsync(const CheckParams& params, CheckCallback done);
  void PeekAsync(const CheckParams& params, CheckCallback done);
  void ResetAsync(const std::string& key, absl::Duration window, ratelimit::v1::Algorithm algorithm,
                  ResetCallback done);
  void HealthAsync(HealthCallback done);

  // Waits until the channel is connected, so that the first calls do not pay for the
  // connection. False when `timeout` passes first.
  bool WaitForConnected(absl::Duration timeout);

  const ClientOptions& options() const { return options_; }

 private:
  void Decide(const CheckParams& params, bool peek, CheckCallback done);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ratelimit::v1::RateLimitService::Stub> stub_;
  std::unique_ptr<InFlight> in_flight_;
};

}  // namespace ratelimit

#endif  // RATELIMIT_CLIENT_CLIENT_H_
