// TLS on the gRPC port: certificates made for the test with openssl; calls with and without the
// right CA and client certificate; and the flags' validation.

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/cli.h"
#include "tests/support/http.h"
#include "tests/support/process.h"
#include "tests/support/server_process.h"
#include "tests/support/window.h"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;
using testing::CallCheck;
using testing::ChildProcess;
using testing::CliRun;
using testing::MakeCheck;
using testing::PickFreePort;
using testing::RunCli;
using testing::ServerProcess;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// A CA, a server certificate it signed for 127.0.0.1 and localhost, a client certificate it
// signed, and a second CA with a client certificate of its own. Made once for the whole suite.
class Certificates {
 public:
  static const Certificates& Get() {
    static const Certificates* certificates = new Certificates();
    return *certificates;
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string Pem(const std::string& name) const { return ReadFile(Path(name)); }
  bool ok() const { return ok_; }

 private:
  Certificates() : dir_(testing::MakeTempDir("tls-test")) {
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script = absl::StrCat(
        "set -e; cd ", dir_,
        "\nprintf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
        "> server.ext"
        "\nprintf 'extendedKeyUsage=clientAuth\\n' > client.ext",
        "\nfor ca in ca other-ca; do openssl req -x509 ", key,
        " -keyout $ca.key -out $ca.pem -days 2 -subj /CN=ratelimit-test-$ca; done",
        "\nsign() { openssl req ", key,
        " -keyout $1.key -out $1.csr -subj /CN=$3"
        " && openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days 2"
        " -extfile $4 -out $1.pem; }",
        "\nsign server ca localhost server.ext",
        "\nsign client ca ratelimit-test-client client.ext",
        "\nsign other-client other-ca ratelimit-test-other client.ext",
        "\nprintf 'not a certificate\\n' > garbage.pem");
    std::ofstream(dir_ + "/make.sh") << script;
    ok_ = std::system(absl::StrCat("bash ", dir_, "/make.sh > ", dir_, "/make.log 2>&1").c_str()) ==
          0;
  }

  std::string dir_;
  bool ok_ = false;
};

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca,
                                                         const std::string& client = "") {
  const Certificates& certs = Certificates::Get();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = certs.Pem(ca + ".pem");
  if (!client.empty()) {
    options.pem_cert_chain = certs.Pem(client + ".pem");
    options.pem_private_key = certs.Pem(client + ".key");
  }
  return grpc::SslCredentials(options);
}

// A ratelimit-server with TLS on its gRPC port; ServerProcess speaks plaintext, so this waits for
// it with `ready` credentials instead.
class TlsServer {
 public:
  TlsServer(std::vector<std::string> flags, std::vector<std::string> env = {})
      : flags_(std::move(flags)), env_(std::move(env)), port_(PickFreePort()) {}

  absl::Status Start(std::shared_ptr<grpc::ChannelCredentials> ready) {
    std::vector<std::string> argv = {RATELIMIT_SERVER_PATH, "--grpc-address=" + address(),
                                     absl::StrCat("--admin-address=127.0.0.1:", PickFreePort())};
    argv.insert(argv.end(), flags_.begin(), flags_.end());
    const std::string log = testing::MakeTempDir("tls-server") + "/server.log";
    if (absl::Status s = process_.Start(argv, log, env_); !s.ok()) return s;
    // Wait for the port before making a channel: a refused first connection backs off for seconds.
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline && !testing::SendRaw(port_, "").ok()) {
      if (absl::StatusOr<int> exited = process_.Wait(absl::Milliseconds(1)); exited.ok()) {
        return absl::InternalError(absl::StrCat("exited with ", *exited, ": ", Log()));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    auto stub = NewStub(std::move(ready));
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
      pb::HealthSummary health;
      if (stub->GetHealth(&context, pb::GetHealthRequest(), &health).ok()) {
        // Tests count decisions in one-minute fixed windows right after start-up.
        testing::WaitForRoomInWindow();
        return absl::OkStatus();
      }
      if (absl::StatusOr<int> exited = process_.Wait(absl::Milliseconds(1)); exited.ok()) {
        return absl::InternalError(absl::StrCat("exited with ", *exited, ": ", Log()));
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError("no answer over TLS: " + Log());
  }

  std::unique_ptr<pb::RateLimitService::Stub> NewStub(
      std::shared_ptr<grpc::ChannelCredentials> credentials) const {
    // A pool of its own, so no two tests' channels share a connection (or its handshake).
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return pb::RateLimitService::NewStub(
        grpc::CreateCustomChannel(address(), std::move(credentials), args));
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string Log() const { return process_.ReadLog(); }
  absl::StatusOr<int> Stop() {
    process_.Signal(SIGTERM);
    return process_.Wait(absl::Seconds(15));
  }

 private:
  std::vector<std::string> flags_;
  std::vector<std::string> env_;
  int port_;
  ChildProcess process_;
};

grpc::Status Check(const TlsServer& server, std::shared_ptr<grpc::ChannelCredentials> credentials,
                   pb::CheckResponse* response) {
  auto stub = server.NewStub(std::move(credentials));
  return CallCheck(*stub, MakeCheck("tls:k", 100, 60'000), response, /*peek=*/false,
                   absl::Seconds(3));
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Certificates::Get().ok()) << ReadFile(Certificates::Get().Path("make.log"));
  }
  const Certificates& certs_ = Certificates::Get();
};

TEST_F(TlsTest, TheRightCaSucceedsWhilePlaintextAndAWrongCaFail) {
  TlsServer server(
      {"--tls-cert=" + certs_.Path("server.pem"), "--tls-key=" + certs_.Path("server.key")});
  ASSERT_TRUE(server.Start(TlsCredentials("ca")).ok());

  pb::CheckResponse response;
  grpc::Status status = Check(server, TlsCredentials("ca"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.allowed());
  EXPECT_EQ(response.source(), pb::SOURCE_MEMORY);

  status = Check(server, grpc::InsecureChannelCredentials(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  status = Check(server, TlsCredentials("other-ca"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  EXPECT_NE(server.Log().find("tls=on "), std::string::npos) << server.Log();
  EXPECT_NE(server.Log().find(", TLS)"), std::string::npos) << server.Log();
  absl::StatusOr<int> code = server.Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST_F(TlsTest, WithAClientCaOnlyClientsWithItsCertificateGetIn) {
  // Set through the environment this time, as a deployment would.
  TlsServer server({}, {"RATELIMIT_TLS_CERT=" + certs_.Path("server.pem"),
                        "RATELIMIT_TLS_KEY=" + certs_.Path("server.key"),
                        "RATELIMIT_TLS_CLIENT_CA=" + certs_.Path("ca.pem")});
  ASSERT_TRUE(server.Start(TlsCredentials("ca", "client")).ok());

  pb::CheckResponse response;
  grpc::Status status = Check(server, TlsCredentials("ca", "client"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.allowed());

  status = Check(server, TlsCredentials("ca"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << "no client certificate";
  status = Check(server, TlsCredentials("ca", "other-client"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << "signed by another CA";
  status = Check(server, grpc::InsecureChannelCredentials(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << "plaintext";
  EXPECT_NE(server.Log().find("TLS with client certificates"), std::string::npos);
}

TEST_F(TlsTest, TheCliReachesAMutualTlsServerWithItsCaAndCertificate) {
  TlsServer server({"--tls-cert=" + certs_.Path("server.pem"),
                    "--tls-key=" + certs_.Path("server.key"),
                    "--tls-client-ca=" + certs_.Path("ca.pem")});
  ASSERT_TRUE(server.Start(TlsCredentials("ca", "client")).ok());
  const std::string check = "check --target=" + server.address() +
                            " --key=tls:cli --limit=5 --window=1m --deadline=3s --json";
  const std::string ca = " --tls-ca=" + certs_.Path("ca.pem");
  const std::string client =
      " --tls-cert=" + certs_.Path("client.pem") + " --tls-key=" + certs_.Path("client.key");

  CliRun allowed = RunCli(check + ca + client);
  ASSERT_EQ(allowed.exit_code, 0) << allowed.out;
  EXPECT_EQ(nlohmann::json::parse(allowed.out)["remaining"], 4);

  // Each of these is refused, and spends nothing.
  EXPECT_EQ(RunCli(check).exit_code, 2) << "plaintext";
  EXPECT_EQ(RunCli(check + ca).exit_code, 2) << "no client certificate";
  EXPECT_EQ(RunCli(check + " --tls-ca=" + certs_.Path("other-ca.pem") + client).exit_code, 2)
      << "a CA that did not sign the server's certificate";
  EXPECT_EQ(RunCli(check + " --tls" + client).exit_code, 2)
      << "the system's CAs did not sign it either";

  const std::vector<std::pair<std::string, std::string>> bad_flags = {
      {ca + " --tls-cert=" + certs_.Path("client.pem"), "--tls-key: --tls-cert and --tls-key"},
      {ca + " --tls-key=" + certs_.Path("client.key"), "--tls-cert: --tls-cert and --tls-key"},
      {" --tls-ca=" + certs_.Path("missing.pem"), "--tls-ca: cannot read the file"},
      {" --tls-ca=" + certs_.Path("garbage.pem"), "--tls-ca: the file holds no PEM block"},
  };
  for (const auto& [flags, error] : bad_flags) {
    CliRun run = RunCli(check + flags);
    EXPECT_EQ(run.exit_code, 2) << flags;
    EXPECT_NE(run.out.find(error), std::string::npos) << run.out;
  }

  // Peek answers what a check would: 3 left after it means 4 are still there.
  CliRun peek = RunCli("peek" + check.substr(5) + ca + client);
  ASSERT_EQ(peek.exit_code, 0) << peek.out;
  EXPECT_EQ(nlohmann::json::parse(peek.out)["remaining"], 3);
}

TEST_F(TlsTest, BadTlsFlagsStopStartupNamingTheFlag) {
  struct Case {
    std::vector<std::string> flags;
    std::string names;
  };
  const std::string cert = "--tls-cert=" + certs_.Path("server.pem");
  const std::string key = "--tls-key=" + certs_.Path("server.key");
  const std::vector<Case> cases = {
      {{cert}, "--tls-key: must be set together with --tls-cert"},
      {{key}, "--tls-cert: must be set together with --tls-key"},
      {{"--tls-client-ca=" + certs_.Path("ca.pem")}, "--tls-client-ca: needs --tls-cert"},
      {{"--tls-cert=" + certs_.Path("missing.pem"), key}, "--tls-cert: cannot read"},
      {{cert, "--tls-key=" + certs_.Path("missing.key")}, "--tls-key: cannot read"},
      {{cert, key, "--tls-client-ca=" + certs_.Path("missing.pem")},
       "--tls-client-ca: cannot read"},
      {{"--tls-cert=" + certs_.Path("garbage.pem"), key},
       "--tls-cert: the file holds no PEM block"},
      {{"--tls-cert=" + certs_.Path(""), key}, "--tls-cert: cannot read"},  // A directory.
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.names);
    ServerProcess server(c.flags);
    absl::Status started = server.Start();
    ASSERT_FALSE(started.ok());
    EXPECT_NE(started.message().find("exited with 2"), absl::string_view::npos) << started;
    EXPECT_NE(server.Log().find(c.names), std::string::npos) << server.Log();
  }
}

TEST_F(TlsTest, AKeyThatDoesNotMatchTheCertificateStopsStartup) {
  ServerProcess server(
      {"--tls-cert=" + certs_.Path("server.pem"), "--tls-key=" + certs_.Path("client.key")});
  absl::Status started = server.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.message().find("exited with 1"), absl::string_view::npos) << started;
  EXPECT_NE(server.Log().find("the TLS certificate and key do not match"), std::string::npos)
      << server.Log();
}

}  // namespace
}  // namespace ratelimit
