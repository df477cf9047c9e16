#include "tests/support/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ratelimit::testing {

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

absl::StatusOr<std::string> SendRaw(int port, const std::string& raw) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot connect to port ", port));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = write(fd, raw.data() + sent, raw.size() - sent);
    if (n <= 0) break;
    sent += n;
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buffer[8192];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) out.append(buffer, n);
  close(fd);
  return out;
}

absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                     const std::string& basic_auth) {
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n");
  if (!basic_auth.empty()) {
    absl::StrAppend(&request, "Authorization: Basic ", absl::Base64Escape(basic_auth), "\r\n");
  }
  request += "\r\n";
  absl::StatusOr<std::string> raw = SendRaw(port, request);
  if (!raw.ok()) return raw.status();
  const size_t head_end = raw->find("\r\n\r\n");
  if (raw->size() < 12 || head_end == std::string::npos) {
    return absl::InternalError("not an HTTP response: " + *raw);
  }
  HttpResponse response;
  if (!absl::SimpleAtoi(raw->substr(9, 3), &response.status)) {
    return absl::InternalError("no status in: " + raw->substr(0, 40));
  }
  response.headers = raw->substr(0, head_end);
  response.body = raw->substr(head_end + 4);
  return response;
}

double MetricValue(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      double value;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

int CountSeries(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, name.size(), name) == 0 && line.size() > name.size() &&
        (line[name.size()] == '{' || line[name.size()] == ' ')) {
      ++count;
    }
  }
  return count;
}

}  // namespace ratelimit::testing
