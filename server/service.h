#ifndef RATELIMIT_SERVER_SERVICE_H_
#define RATELIMIT_SERVER_SERVICE_H_

#include <atomic>

#include "absl/time/time.h"
#include "lib/limiter.h"
#include "ratelimit/v1/ratelimit.grpc.pb.h"
#include "server/metrics.h"

namespace ratelimit {

// The gRPC face of the limiter, on gRPC's callback API: a check that waits on Redis holds no
// gRPC thread. Thread-safe.
class RateLimitServiceImpl final : public ratelimit::v1::RateLimitService::CallbackService {
 public:
  // `metrics` may be null.
  RateLimitServiceImpl(Limiter& limiter, Metrics* metrics);

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const ratelimit::v1::CheckRequest* request,
                                  ratelimit::v1::CheckResponse* response) override;
  grpc::ServerUnaryReactor* Peek(grpc::CallbackServerContext* context,
                                 const ratelimit::v1::CheckRequest* request,
                                 ratelimit::v1::CheckResponse* response) override;
  grpc::ServerUnaryReactor* Reset(grpc::CallbackServerContext* context,
                                  const ratelimit::v1::ResetRequest* request,
                                  ratelimit::v1::ResetResponse* response) override;
  grpc::ServerUnaryReactor* GetHealth(grpc::CallbackServerContext* context,
                                      const ratelimit::v1::GetHealthRequest* request,
                                      ratelimit::v1::HealthSummary* response) override;

  // Starts refusing new checks and resets with UNAVAILABLE, then waits up to `grace` for those
  // in flight to finish. Returns how many were still in flight when the wait ended.
  int64_t Drain(absl::Duration grace);

  // The facts GetHealth and the admin /health endpoint report.
  ratelimit::v1::HealthSummary Health() const;

 private:
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   const ratelimit::v1::CheckRequest* request,
                                   ratelimit::v1::CheckResponse* response, bool spend);

  // Counts a call as in flight, unless draining has begun. Paired with EndCall().
  bool BeginCall();
  void EndCall() { in_flight_.fetch_sub(1); }

  Limiter& limiter_;
  Metrics* const metrics_;
  // Sequentially consistent together: either a new call sees draining_, or Drain() sees it in
  // in_flight_.
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_SERVICE_H_
