#ifndef RATELIMIT_SERVER_SERVER_H_
#define RATELIMIT_SERVER_SERVER_H_

#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "lib/circuit_breaker.h"
#include "lib/clock.h"
#include "lib/limiter.h"
#include "lib/memory_store.h"
#include "lib/redis_client.h"
#include "lib/redis_store.h"
#include "server/admin.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/service.h"

namespace ratelimit {

// The whole service: stores, breaker, limiter and the gRPC server, wired from a config.
// Start() once, then Shutdown() once; both from the same thread.
class RateLimitServer {
 public:
  explicit RateLimitServer(const ServerConfig& config);
  ~RateLimitServer();

  // Binds and starts serving. Fails when the address cannot be bound.
  absl::Status Start();

  // Stops taking calls, lets those in flight finish within `grace`, then cancels the rest and
  // stops Redis.
  void Shutdown(absl::Duration grace);

  // The port the gRPC server bound (useful with port 0).
  int port() const { return port_; }
  int admin_port() const { return admin_server_ ? admin_server_->port() : 0; }

 private:
  // Stops the breaker's prober, then the Redis client, which answers what still waits on it.
  void StopRedis();

  const ServerConfig config_;
  SystemClock clock_;
  Metrics metrics_;
  MemoryStore memory_;
  CircuitBreaker breaker_;
  std::unique_ptr<RedisClient> redis_client_;
  std::unique_ptr<RedisStore> redis_store_;
  Limiter limiter_;
  RateLimitServiceImpl service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<AdminServer> admin_server_;
  int port_ = 0;
  // With Redis: lets the breaker probe Redis on its own while no check comes along.
  absl::Notification stop_probing_;
  std::thread prober_;
};

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_SERVER_H_
