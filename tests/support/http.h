#ifndef RATELIMIT_TESTS_SUPPORT_HTTP_H_
#define RATELIMIT_TESTS_SUPPORT_HTTP_H_

#include <string>

#include "absl/status/statusor.h"

namespace ratelimit::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// A plain HTTP/1.0 GET to 127.0.0.1:`port`, optionally with basic auth ("user:password").
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     const std::string& basic_auth = "");

// A TCP connection to 127.0.0.1:`port`: its descriptor, or -1 when nothing accepts there.
int ConnectLoopback(int port);

// Sends `raw` bytes as they are and returns whatever comes back (for garbage-input tests).
absl::StatusOr<std::string> SendRaw(int port, const std::string& raw);

// The value of one series in Prometheus text format, e.g.
// `ratelimit_requests_total{allowed="true",source="memory"}`; NaN when absent.
double MetricValue(const std::string& exposition, const std::string& series);

// How many series of `name` the exposition holds.
int CountSeries(const std::string& exposition, const std::string& name);

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_HTTP_H_
