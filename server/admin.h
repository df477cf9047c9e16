#ifndef RATELIMIT_SERVER_ADMIN_H_
#define RATELIMIT_SERVER_ADMIN_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "ratelimit/v1/ratelimit.pb.h"
#include "server/metrics.h"

namespace ratelimit {

// The admin HTTP endpoint: prometheus-cpp's Exposer serves GET /metrics on threads of its own,
// and GET /health answers JSON for people and probes. Both sit behind basic auth when it is
// configured. One per process.
class AdminServer {
 public:
  struct Options {
    std::string address;
    // "user:password"; empty: no authentication.
    std::string basic_auth;
  };
  using HealthSource = std::function<ratelimit::v1::HealthSummary()>;

  // Binds and starts serving; fails when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(const Options& options,
                                                            const Metrics& metrics,
                                                            HealthSource health,
                                                            bool redis_configured);
  ~AdminServer();

  int port() const { return port_; }

  // The /health body and status for a summary.
  static std::string HealthJson(const ratelimit::v1::HealthSummary& health, bool redis_configured,
                                int* http_status);

 private:
  AdminServer() = default;

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace ratelimit

#endif  // RATELIMIT_SERVER_ADMIN_H_
