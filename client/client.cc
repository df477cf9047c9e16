#include "ratelimit/client.h"

#include <future>

#include "absl/strings/str_cat.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Failures of the service rather than of the request: these fall to the fail mode.
bool ServiceFailed(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// One call in flight: owns what gRPC writes into until the callback runs.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

template <typename T>
T Wait(const std::function<void(std::function<void(T)>)>& start) {
  std::promise<T> promise;
  start([&promise](T value) { promise.set_value(std::move(value)); });
  return promise.get_future().get();
}

}  // namespace

Client::Client(const std::string& target, ClientOptions options)
    : Client(grpc::CreateChannel(target, options.credentials != nullptr
                                             ? options.credentials
                                             : grpc::InsecureChannelCredentials()),
             options) {}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(pb::RateLimitService::NewStub(channel_)) {}

bool Client::WaitForConnected(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

void Client::Decide(const CheckParams& params, bool peek, CheckCallback done) {
  auto call = std::make_shared<Call<pb::CheckRequest, pb::CheckResponse>>();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  call->request.set_key(params.key);
  call->request.set_limit(params.limit);
  ToProto(params.window, call->request.mutable_window());
  call->request.set_cost(params.cost);
  call->request.set_algorithm(params.algorithm);

  auto on_done = [call, fail_mode = options_.fail_mode,
                  done = std::move(done)](grpc::Status status) {
    CheckResult result;
    if (status.ok()) {
      const pb::CheckResponse& r = call->response;
      result.allowed = r.allowed();
      result.limit = r.limit();
      result.remaining = r.remaining();
      result.reset_after = FromProto(r.reset_after());
      result.retry_after = FromProto(r.retry_after());
      result.source = r.source();
      done(result);
      return;
    }
    if (!ServiceFailed(status.error_code())) {
      done(FromGrpc(status));
      return;
    }
    result.decided_locally = true;
    result.allowed = fail_mode == FailMode::kOpen;
    result.limit = call->request.limit();
    result.service_status = FromGrpc(status);
    done(result);
  };
  if (peek) {
    stub_->async()->Peek(&call->context, &call->request, &call->response, std::move(on_done));
  } else {
    stub_->async()->Check(&call->context, &call->request, &call->response, std::move(on_done));
  }
}

void Client::CheckAsync(const CheckParams& params, CheckCallback done) {
  Decide(params, /*peek=*/false, std::move(done));
}

void Client::PeekAsync(const CheckParams& params, CheckCallback done) {
  Decide(params, /*peek=*/true, std::move(done));
}

void Client::ResetAsync(const std::string& key, absl::Duration window, pb::Algorithm algorithm,
                        ResetCallback done) {
  auto call = std::make_shared<Call<pb::ResetRequest, pb::ResetResponse>>();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  call->request.set_key(key);
  ToProto(window, call->request.mutable_window());
  call->request.set_algorithm(algorithm);
  stub_->async()->Reset(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) { done(FromGrpc(status)); });
}

void Client::HealthAsync(HealthCallback done) {
  auto call = std::make_shared<Call<pb::GetHealthRequest, pb::HealthSummary>>();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  stub_->async()->GetHealth(&call->context, &call->request, &call->response,
                            [call, done = std::move(done)](grpc::Status status) {
                              if (!status.ok()) return done(FromGrpc(status));
                              done(call->response);
                            });
}

absl::StatusOr<CheckResult> Client::Check(const CheckParams& params) {
  return Wait<absl::StatusOr<CheckResult>>([&](auto done) { CheckAsync(params, done); });
}

absl::StatusOr<CheckResult> Client::Peek(const CheckParams& params) {
  return Wait<absl::StatusOr<CheckResult>>([&](auto done) { PeekAsync(params, done); });
}

absl::Status Client::Reset(const std::string& key, absl::Duration window, pb::Algorithm algorithm) {
  return Wait<absl::Status>([&](auto done) { ResetAsync(key, window, algorithm, done); });
}

absl::StatusOr<pb::HealthSummary> Client::Health() {
  return Wait<absl::StatusOr<pb::HealthSummary>>([&](auto done) { HealthAsync(done); });
}

}  // namespace ratelimit
