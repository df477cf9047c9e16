#include "ratelimit/client.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

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

}  // namespace

// Counts a client's calls in flight, so that the client outlives every one of them.
class Client::InFlight {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  void Remove() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  void WaitForNone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

// One call in flight: owns the context and messages, and deletes itself in OnDone, the one
// place gRPC promises that it is done with them. The caller's callback runs after that, so a
// caller woken by it may destroy the client at once.
template <typename Request, typename Response>
class Call final : public grpc::ClientUnaryReactor {
 public:
  using Done = std::function<void(const grpc::Status&, const Request&, const Response&)>;

  Call(absl::Duration deadline, Client::InFlight& in_flight) : in_flight_(in_flight) {
    in_flight_.Add();
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }

  void Start(Done done) {
    done_ = std::move(done);
    StartCall();
  }

  void OnDone(const grpc::Status& status) override {
    Done done = std::move(done_);
    const Request final_request = std::move(request);
    const Response final_response = std::move(response);
    Client::InFlight& in_flight = in_flight_;
    delete this;
    // `status` belongs to gRPC's call, which outlives this reactor.
    done(status, final_request, final_response);
    in_flight.Remove();
  }

  grpc::ClientContext context;
  Request request;
  Response response;

 private:
  Client::InFlight& in_flight_;
  Done done_;
};

template <typename T>
T Wait(const std::function<void(std::function<void(T)>)>& start) {
  std::promise<T> promise;
  start([&promise](T value) { promise.set_value(std::move(value)); });
  return promise.get_future().get();
}

}  // namespace

Client::Client(const std::string& target, const ClientOptions& options)
    : Client(grpc::CreateChannel(target, options.credentials != nullptr
                                             ? options.credentials
                                             : grpc::InsecureChannelCredentials()),
             options) {}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(pb::RateLimitService::NewStub(channel_)),
      in_flight_(std::make_unique<InFlight>()) {}

Client::~Client() { in_flight_->WaitForNone(); }

bool Client::WaitForConnected(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

void Client::Decide(const CheckParams& params, bool peek, CheckCallback done) {
  auto* call = new Call<pb::CheckRequest, pb::CheckResponse>(options_.deadline, *in_flight_);
  call->request.set_key(params.key);
  call->request.set_limit(params.limit);
  ToProto(params.window, call->request.mutable_window());
  call->request.set_cost(params.cost);
  call->request.set_algorithm(params.algorithm);
  if (peek) {
    stub_->async()->Peek(&call->context, &call->request, &call->response, call);
  } else {
    stub_->async()->Check(&call->context, &call->request, &call->response, call);
  }
  call->Start([fail_mode = options_.fail_mode, done = std::move(done)](
                  const grpc::Status& status, const pb::CheckRequest& request,
                  const pb::CheckResponse& response) {
    CheckResult result;
    if (status.ok()) {
      result.allowed = response.allowed();
      result.limit = response.limit();
      result.remaining = response.remaining();
      result.reset_after = FromProto(response.reset_after());
      result.retry_after = FromProto(response.retry_after());
      result.source = response.source();
      done(result);
      return;
    }
    if (!ServiceFailed(status.error_code())) {
      done(FromGrpc(status));
      return;
    }
    result.decided_locally = true;
    result.allowed = fail_mode == FailMode::kOpen;
    result.limit = request.limit();
    result.service_status = FromGrpc(status);
    done(result);
  });
}

void Client::CheckAsync(const CheckParams& params, CheckCallback done) {
  Decide(params, /*peek=*/false, std::move(done));
}

void Client::PeekAsync(const CheckParams& params, CheckCallback done) {
  Decide(params, /*peek=*/true, std::move(done));
}

void Client::ResetAsync(const std::string& key, absl::Duration window, pb::Algorithm algorithm,
                        ResetCallback done) {
  auto* call = new Call<pb::ResetRequest, pb::ResetResponse>(options_.deadline, *in_flight_);
  call->request.set_key(key);
  ToProto(window, call->request.mutable_window());
  call->request.set_algorithm(algorithm);
  stub_->async()->Reset(&call->context, &call->request, &call->response, call);
  call->Start([done = std::move(done)](const grpc::Status& status, const pb::ResetRequest&,
                                       const pb::ResetResponse&) { done(FromGrpc(status)); });
}

void Client::HealthAsync(HealthCallback done) {
  auto* call = new Call<pb::GetHealthRequest, pb::HealthSummary>(options_.deadline, *in_flight_);
  stub_->async()->GetHealth(&call->context, &call->request, &call->response, call);
  call->Start([done = std::move(done)](const grpc::Status& status, const pb::GetHealthRequest&,
                                       const pb::HealthSummary& health) {
    if (!status.ok()) return done(FromGrpc(status));
    done(health);
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
