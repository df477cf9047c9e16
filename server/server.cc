#include "server/server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "lib/logging.h"

namespace ratelimit {
namespace {

constexpr const char* kServiceName = ratelimit::v1::RateLimitService::service_full_name();

// How long gRPC may take, once every call is answered, to write the last answers out.
constexpr absl::Duration kAnswerFlushWindow = absl::Milliseconds(100);

std::unique_ptr<RedisClient> MakeRedisClient(const ServerConfig& config) {
  if (!config.redis) return nullptr;
  RedisClient::Options options;
  options.endpoint = *config.redis;
  options.command_timeout = config.redis_timeout;
  return std::make_unique<RedisClient>(options);
}

// Plaintext, or TLS with the configured certificate; with a client CA, mutual TLS.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const ServerConfig& config) {
  if (!config.tls) return grpc::InsecureServerCredentials();
  const TlsConfig& tls = *config.tls;
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.client_ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  return grpc::SslServerCredentials(options);
}

}  // namespace

RateLimitServer::RateLimitServer(const ServerConfig& config)
    : config_(config),
      metrics_(config.metrics_max_key_prefixes),
      memory_(clock_, MemoryStore::Options{.max_entries = config.memory_store_max_size}),
      breaker_("redis", config.breaker, clock_,
               {.on_transition = [this](BreakerState,
                                        BreakerState to) { metrics_.RecordBreakerTransition(to); },
                .on_failure = [this] { metrics_.RecordBreakerFailure(); }}),
      redis_client_(MakeRedisClient(config)),
      redis_store_(redis_client_ ? std::make_unique<RedisStore>(
                                       *redis_client_, RedisStore::Options{config.redis_prefix})
                                 : nullptr),
      limiter_(memory_, redis_store_.get(), &breaker_,
               {.on_remote_result =
                    [this](const absl::Status& status, std::chrono::nanoseconds took) {
                      metrics_.RecordRedisCall(status, took);
                    }}),
      service_(limiter_, &metrics_) {
  metrics_.AddScrapeTimeCollectors(memory_);
}

RateLimitServer::~RateLimitServer() {
  if (grpc_server_ != nullptr) Shutdown(absl::ZeroDuration());
}

absl::Status RateLimitServer::Start() {
  if (!config_.admin_address.empty()) {
    absl::StatusOr<std::unique_ptr<AdminServer>> admin = AdminServer::Start(
        {config_.admin_address, config_.admin_basic_auth}, metrics_,
        [this] { return service_.Health(); }, config_.redis.has_value());
    if (!admin.ok()) return admin.status();
    admin_server_ = std::move(*admin);
  }

  // Redis before gRPC, so that a server whose Redis is down still starts, answering from memory.
  if (redis_client_ != nullptr) {
    redis_client_->Start();
    // Often enough that an idle server's breaker closes within a tenth of the open duration of
    // when it could; the check is one atomic load while the breaker is closed.
    const absl::Duration interval =
        std::clamp(config_.breaker.open_duration / 10, absl::Milliseconds(10), absl::Seconds(1));
    prober_ = std::thread([this, interval] {
      while (!stop_probing_.WaitForNotificationWithTimeout(interval)) limiter_.ProbeIfDue();
    });
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.grpc_address, MakeServerCredentials(config_), &port_);
  // gRPC sets SO_REUSEPORT by default: a second server on a taken port would start and take half
  // the connections, each with its own memory store. Refuse to share the port instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service_);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || port_ == 0) {
    grpc_server_.reset();
    StopRedis();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", config_.grpc_address,
        config_.tls ? " (in use, not an address, or the TLS certificate and key do not match)"
                    : " (in use, or not an address)"));
  }
  // grpc.health.v1 answers for the whole server ("") and for the service by its full name.
  grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  spdlog::info("serving gRPC on {} (port {}, {})", config_.grpc_address, port_,
               !config_.tls                         ? "plaintext"
               : config_.tls->client_ca_pem.empty() ? "TLS"
                                                    : "TLS with client certificates");
  return absl::OkStatus();
}

void RateLimitServer::StopRedis() {
  stop_probing_.Notify();
  if (prober_.joinable()) prober_.join();
  if (redis_client_ != nullptr) redis_client_->Stop();
}

void RateLimitServer::Shutdown(absl::Duration grace) {
  if (grpc_server_ == nullptr) return;
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  spdlog::info("shutting down: refusing new calls, finishing those in flight for up to {}",
               absl::FormatDuration(grace));
  // The service drains its own calls: gRPC's Shutdown(deadline) can wait out the whole
  // deadline for a connection that has just finished a call, even with nothing in flight.
  const int64_t unfinished = service_.Drain(grace);
  if (unfinished > 0)
    spdlog::warn("{} calls still in flight after the grace; answering them from memory",
                 unfinished);
  // Stopping the client answers every call still waiting on Redis (from memory) before gRPC
  // shuts down: gRPC's Wait() returns only once each call has finished, which for a call held by
  // a frozen Redis would otherwise be at the Redis timeout, however short the grace.
  StopRedis();
  // Every answer is decided now, but the last ones may not be written yet: gRPC gets a short,
  // fixed window to send them before it cancels what is left. (Counting each call until its
  // OnDone would need reactors of our own, whose OnDone gRPC runs on another thread: a third
  // less throughput in memory mode.)
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + kAnswerFlushWindow));
  grpc_server_->Wait();
  grpc_server_.reset();
  admin_server_.reset();
  spdlog::info("shutdown complete");
}

}  // namespace ratelimit
