#include "server/admin.h"

#include <CivetServer.h>
#include <civetweb.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/logging.h"
#include "nlohmann/json.hpp"

namespace ratelimit {
namespace {

namespace pb = ::ratelimit::v1;

// What the request callback needs. CivetWeb's callbacks carry no pointer of ours, so the one
// admin server of the process publishes its state here.
struct AdminState {
  std::string expected_credentials;  // base64("user:password"), or empty for none.
  AdminServer::HealthSource health;
  bool redis_configured = false;
};
std::atomic<const AdminState*> g_state{nullptr};

// Compares in time that does not depend on where the strings differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// Writes a whole response; a HEAD request gets the headers only.
void Send(mg_connection* conn, int status, absl::string_view reason, absl::string_view type,
          absl::string_view body, absl::string_view extra_headers = "") {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", type,
                   "\r\nContent-Length: ", body.size(), "\r\nCache-Control: no-store\r\n",
                   extra_headers, "Connection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  const mg_request_info* info = mg_get_request_info(conn);
  const bool head_only = info != nullptr && info->request_method != nullptr &&
                         absl::string_view(info->request_method) == "HEAD";
  if (!head_only) mg_write(conn, body.data(), body.size());
}

// "Basic <credentials>", the scheme in any case (RFC 7617), with the expected credentials.
bool Authorized(const char* header, absl::string_view expected_credentials) {
  if (header == nullptr) return false;
  absl::string_view given(header);
  constexpr absl::string_view kScheme = "basic ";
  if (given.size() < kScheme.size() || !absl::EqualsIgnoreCase(given.substr(0, 6), kScheme)) {
    return false;
  }
  return ConstantTimeEquals(absl::StripLeadingAsciiWhitespace(given.substr(kScheme.size())),
                            expected_credentials);
}

// Runs before CivetWeb's handlers: answers /health itself and refuses unauthenticated
// requests; returns 0 to let the Exposer serve /metrics.
int BeginRequest(mg_connection* conn) {
  const AdminState* state = g_state.load();
  const mg_request_info* info = mg_get_request_info(conn);
  if (state == nullptr || info == nullptr) return 0;

  if (!state->expected_credentials.empty()) {
    if (!Authorized(mg_get_header(conn, "Authorization"), state->expected_credentials)) {
      Send(conn, 401, "Unauthorized", "text/plain", "authentication required\n",
           "WWW-Authenticate: Basic realm=\"ratelimit\"\r\n");
      return 401;
    }
  }

  const absl::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
  const absl::string_view method = info->request_method != nullptr ? info->request_method : "";
  const bool is_metrics = uri == "/metrics";
  if (uri == "/health" || is_metrics) {
    // /health reads as HEAD too, for probes; the exposer serves /metrics to GET only.
    if (method != "GET" && (is_metrics || method != "HEAD")) {
      Send(conn, 405, "Method Not Allowed", "text/plain", "method not allowed\n",
           is_metrics ? "Allow: GET\r\n" : "Allow: GET, HEAD\r\n");
      return 405;
    }
  }
  if (uri == "/health") {
    int status = 200;
    const std::string body =
        AdminServer::HealthJson(state->health(), state->redis_configured, &status);
    Send(conn, status, status == 200 ? "OK" : "Service Unavailable", "application/json", body);
    return status;
  }
  if (uri == "/metrics") return 0;
  Send(conn, 404, "Not Found", "text/plain", "not found: try /metrics or /health\n");
  return 404;
}

}  // namespace

std::string AdminServer::HealthJson(const pb::HealthSummary& health, bool redis_configured,
                                    int* http_status) {
  std::string breaker = "CLOSED";
  if (health.breaker_state() == pb::BREAKER_STATE_HALF_OPEN) breaker = "HALF_OPEN";
  if (health.breaker_state() == pb::BREAKER_STATE_OPEN) breaker = "OPEN";
  const bool degraded = redis_configured && health.backend() != "redis";
  nlohmann::json body = {
      {"status", degraded ? "degraded" : "ok"},
      {"serving", health.serving()},
      {"redis", {{"configured", redis_configured}, {"connected", health.redis_connected()}}},
      {"circuitBreaker", {{"state", breaker}}},
      {"memoryStore",
       {{"size", health.memory_store().size()}, {"maxSize", health.memory_store().max_size()}}},
  };
  *http_status = health.serving() ? 200 : 503;
  return body.dump() + "\n";
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const Options& options,
                                                                const Metrics& metrics,
                                                                HealthSource health,
                                                                bool redis_configured) {
  auto state =
      new AdminState{absl::Base64Escape(options.basic_auth), std::move(health), redis_configured};
  // Leaked on purpose: CivetWeb threads may read it until the process ends.
  g_state.store(state);

  static CivetCallbacks callbacks;
  callbacks.begin_request = &BeginRequest;

  std::unique_ptr<AdminServer> server(new AdminServer());
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(
        // Each connection holds a worker thread until its request is read, so a few idle
        // connections would otherwise keep probes and scrapes waiting: more workers than a
        // handful, and a short wait for a request that does not come.
        std::vector<std::string>{"listening_ports", options.address, "num_threads", "16",
                                 "request_timeout_ms", "2000"},
        &callbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve the admin endpoint on ", options.address, ": ", e.what()));
  }
  for (const auto& collectable : metrics.Collectables()) {
    server->exposer_->RegisterCollectable(collectable);
  }
  const std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports[0];
  spdlog::info("serving /metrics and /health on {} (port {}){}", options.address, server->port_,
               options.basic_auth.empty() ? "" : " with basic auth");
  return server;
}

AdminServer::~AdminServer() = default;

}  // namespace ratelimit
