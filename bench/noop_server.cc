// The framework's floor: a gRPC server with the same service and the same callback API as
// ratelimit-server, whose Check answers a constant at once. Whatever it cannot exceed, no gRPC
// C++ service can on this machine.
// Usage: noop_server [address] (default 127.0.0.1:50061); stops on SIGTERM or SIGINT.

#include <signal.h>

#include <iostream>

#include "grpcpp/grpcpp.h"
#include "ratelimit/v1/ratelimit.grpc.pb.h"

namespace {

namespace pb = ::ratelimit::v1;

class NoopService final : public pb::RateLimitService::CallbackService {
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context, const pb::CheckRequest*,
                                  pb::CheckResponse* response) override {
    response->set_allowed(true);
    response->set_limit(1);
    response->set_source(pb::SOURCE_MEMORY);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* GetHealth(grpc::CallbackServerContext* context,
                                      const pb::GetHealthRequest*,
                                      pb::HealthSummary* health) override {
    health->set_serving(true);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:50061";
  NoopService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "noop_server: cannot listen on " << address << "\n";
    return 1;
  }
  int signal = 0;
  sigwait(&stop, &signal);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}
