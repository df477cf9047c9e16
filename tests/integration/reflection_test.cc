// A client that knows nothing of ratelimit.proto, as grpcurl would be: it lists the services
// through server reflection, fetches their descriptors, and calls Check with a dynamic message.

#include <future>
#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"

namespace ratelimit {
namespace {

namespace refl = ::grpc::reflection::v1alpha;
namespace gpb = ::google::protobuf;

class ReflectionClient {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(refl::ServerReflection::NewStub(channel)) {}

  std::vector<refl::ServerReflectionResponse> Ask(
      const std::vector<refl::ServerReflectionRequest>& requests) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    auto stream = stub_->ServerReflectionInfo(&context);
    std::vector<refl::ServerReflectionResponse> responses;
    for (const auto& request : requests) {
      EXPECT_TRUE(stream->Write(request));
      refl::ServerReflectionResponse response;
      EXPECT_TRUE(stream->Read(&response));
      responses.push_back(response);
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return responses;
  }

 private:
  std::unique_ptr<refl::ServerReflection::Stub> stub_;
};

TEST(ReflectionTest, ListsDescribesAndCallsTheService) {
  testing::ServerProcess server;
  ASSERT_TRUE(server.Start().ok());
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  ReflectionClient client(channel);

  // List.
  refl::ServerReflectionRequest list;
  list.set_list_services("");
  refl::ServerReflectionResponse listed = client.Ask({list})[0];
  std::set<std::string> services;
  for (const auto& s : listed.list_services_response().service()) services.insert(s.name());
  EXPECT_TRUE(services.count("ratelimit.v1.RateLimitService"));
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));

  // Describe: the file that defines the service, and what it imports.
  refl::ServerReflectionRequest describe;
  describe.set_file_containing_symbol("ratelimit.v1.RateLimitService");
  refl::ServerReflectionResponse described = client.Ask({describe})[0];
  ASSERT_TRUE(described.has_file_descriptor_response()) << described.DebugString();
  gpb::DescriptorPool pool;
  std::vector<gpb::FileDescriptorProto> files;
  for (const std::string& bytes : described.file_descriptor_response().file_descriptor_proto()) {
    files.emplace_back().ParseFromString(bytes);
  }
  // Dependencies first: add until everything is in.
  for (size_t round = 0; round < files.size(); ++round) {
    for (const auto& file : files) {
      if (pool.FindFileByName(file.name()) == nullptr) pool.BuildFile(file);
    }
  }
  const gpb::ServiceDescriptor* service = pool.FindServiceByName("ratelimit.v1.RateLimitService");
  ASSERT_NE(service, nullptr);
  const gpb::MethodDescriptor* check = service->FindMethodByName("Check");
  ASSERT_NE(check, nullptr);
  for (const char* method : {"Peek", "Reset", "GetHealth"}) {
    EXPECT_NE(service->FindMethodByName(method), nullptr) << method;
  }

  // Call Check with a message built from the fetched descriptor alone.
  gpb::DynamicMessageFactory factory(&pool);
  std::unique_ptr<gpb::Message> request(factory.GetPrototype(check->input_type())->New());
  const gpb::Reflection* r = request->GetReflection();
  const gpb::Descriptor* in = check->input_type();
  r->SetString(request.get(), in->FindFieldByName("key"), "reflected");
  r->SetInt64(request.get(), in->FindFieldByName("limit"), 1);
  gpb::Message* window = r->MutableMessage(request.get(), in->FindFieldByName("window"));
  window->GetReflection()->SetInt64(window, window->GetDescriptor()->FindFieldByName("seconds"),
                                    60);

  grpc::GenericStub generic(channel);
  auto call_check = [&](bool* allowed) {
    grpc::ByteBuffer request_bytes;
    bool own = false;
    grpc::Status serialized = grpc::GenericSerialize<grpc::ProtoBufferWriter, gpb::Message>(
        *request, &request_bytes, &own);
    ASSERT_TRUE(serialized.ok());
    grpc::ByteBuffer response_bytes;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    std::promise<grpc::Status> done;
    generic.UnaryCall(&context, "/ratelimit.v1.RateLimitService/Check", grpc::StubOptions(),
                      &request_bytes, &response_bytes,
                      [&done](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status status = done.get_future().get();
    ASSERT_TRUE(status.ok()) << status.error_message();
    std::unique_ptr<gpb::Message> response(factory.GetPrototype(check->output_type())->New());
    grpc::Status parsed = grpc::GenericDeserialize<grpc::ProtoBufferReader, gpb::Message>(
        &response_bytes, response.get());
    ASSERT_TRUE(parsed.ok());
    const gpb::FieldDescriptor* field = check->output_type()->FindFieldByName("allowed");
    *allowed = response->GetReflection()->GetBool(*response, field);
  };
  bool first = false;
  bool second = true;
  call_check(&first);
  call_check(&second);
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
}

}  // namespace
}  // namespace ratelimit
