#include "server/service.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;

// Maps a core status to the wire. absl's codes are gRPC's codes, number for number.
grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

const grpc::Status& ShuttingDown() {
  static const auto* status =
      new grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  return *status;
}

WireDuration FromProto(bool present, const google::protobuf::Duration& d) {
  return WireDuration{present, d.seconds(), d.nanos()};
}

void SetMillis(int64_t ms, google::protobuf::Duration* out) {
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
}

void FillResponse(const Decision& decision, pb::CheckResponse* response) {
  response->set_allowed(decision.allowed);
  response->set_limit(decision.limit);
  response->set_remaining(decision.remaining);
  SetMillis(decision.reset_after_ms, response->mutable_reset_after());
  SetMillis(decision.retry_after_ms, response->mutable_retry_after());
  response->set_source(decision.source == Source::kRedis ? pb::SOURCE_REDIS : pb::SOURCE_MEMORY);
}

pb::BreakerState ToProto(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return pb::BREAKER_STATE_CLOSED;
    case BreakerState::kHalfOpen:
      return pb::BREAKER_STATE_HALF_OPEN;
    case BreakerState::kOpen:
      return pb::BREAKER_STATE_OPEN;
  }
  return pb::BREAKER_STATE_UNSPECIFIED;
}

}  // namespace

RateLimitServiceImpl::RateLimitServiceImpl(Limiter& limiter, Metrics* metrics)
    : limiter_(limiter), metrics_(metrics) {}

bool RateLimitServiceImpl::BeginCall() {
  in_flight_.fetch_add(1);
  if (!draining_.load()) return true;
  in_flight_.fetch_sub(1);
  return false;
}

int64_t RateLimitServiceImpl::Drain(absl::Duration grace) {
  draining_.store(true);
  const absl::Time deadline = absl::Now() + grace;
  while (in_flight_.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  return in_flight_.load();
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::Check(grpc::CallbackServerContext* context,
                                                      const pb::CheckRequest* request,
                                                      pb::CheckResponse* response) {
  return Decide(context, request, response, /*spend=*/true);
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::Peek(grpc::CallbackServerContext* context,
                                                     const pb::CheckRequest* request,
                                                     pb::CheckResponse* response) {
  return Decide(context, request, response, /*spend=*/false);
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::Decide(grpc::CallbackServerContext* context,
                                                       const pb::CheckRequest* request,
                                                       pb::CheckResponse* response, bool spend) {
  const auto start = std::chrono::steady_clock::now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<LimitRequest> limit_request = MakeLimitRequest(
      request->key(), request->limit(), FromProto(request->has_window(), request->window()),
      request->cost(), static_cast<int>(request->algorithm()));
  if (!limit_request.ok()) {
    reactor->Finish(ToGrpc(limit_request.status()));
    return reactor;
  }
  if (!BeginCall()) {
    reactor->Finish(ShuttingDown());
    return reactor;
  }
  // The request message outlives the reactor's Finish, so the key's bytes stay valid.
  limiter_.Check(*limit_request, spend,
                 [this, reactor, request, response, spend, start](const Decision& decision) {
                   FillResponse(decision, response);
                   // Peeks are not counted: only answered checks are.
                   if (spend && metrics_ != nullptr) {
                     metrics_->RecordCheck(request->key(), decision,
                                           std::chrono::steady_clock::now() - start);
                   }
                   reactor->Finish(grpc::Status::OK);
                   EndCall();
                 });
  return reactor;
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::Reset(grpc::CallbackServerContext* context,
                                                      const pb::ResetRequest* request,
                                                      pb::ResetResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<AllowanceId> id =
      MakeAllowanceId(request->key(), FromProto(request->has_window(), request->window()),
                      static_cast<int>(request->algorithm()));
  if (!id.ok()) {
    reactor->Finish(ToGrpc(id.status()));
    return reactor;
  }
  if (!BeginCall()) {
    reactor->Finish(ShuttingDown());
    return reactor;
  }
  limiter_.Reset(*id, [this, reactor](const absl::Status& status) {
    reactor->Finish(ToGrpc(status));
    EndCall();
  });
  return reactor;
}

pb::HealthSummary RateLimitServiceImpl::Health() const {
  pb::HealthSummary health;
  health.set_serving(!draining_.load());
  health.set_backend(limiter_.using_remote() ? "redis" : "memory");
  health.set_redis_connected(limiter_.remote_connected());
  health.set_breaker_state(ToProto(limiter_.breaker()->state()));
  health.mutable_memory_store()->set_size(limiter_.memory().size());
  health.mutable_memory_store()->set_max_size(limiter_.memory().max_size());
  return health;
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::GetHealth(grpc::CallbackServerContext* context,
                                                          const pb::GetHealthRequest*,
                                                          pb::HealthSummary* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  *response = Health();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace ratelimit
