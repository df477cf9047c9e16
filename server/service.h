#ifndef RATELIMIT_SERVER_SERVICE_H_
#define RATELIMIT_SERVER_SERVICE_H_

#include <atomic>

#include "lib/limiter.h"
#include "ratelimit/v1/ratelimit.grpc.pb.h"

namespace ratelimit {

// The gRPC face of the limiter, on gRPC's callback API: a check that waits on Redis holds no
// gRPC thread. Thread-safe.
class RateLimitServiceImpl final : public ratelimit::v1::RateLimitService::CallbackService {
 public:
  explicit RateLimitServiceImpl(Limiter& limiter);

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

  // Called when shutdown begins: health reports not serving from then on.
  void SetServing(bool serving) { serving_.store(serving); }

  // The facts GetHealth and the admin /health endpoint report.
  ratelimit::v1::HealthSummary Health() const;

 private:
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   const ratelimit::v1::CheckRequest* request,
                                   ratelimit::v1::CheckResponse* response, bool spend);

  Limiter& limiter_;
  std::atomic<bool> serving_{true};
};

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_SERVICE_H_
