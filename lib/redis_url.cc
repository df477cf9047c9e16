#include "lib/redis_url.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ratelimit {
namespace {

absl::Status UrlError(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("redis URL: ", what, " (expected redis://[[user]:password@]host[:port][/db])"));
}

}  // namespace

absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "redis://";
  if (!absl::StartsWith(url, kScheme)) return UrlError("must start with redis://");
  absl::string_view rest = url.substr(kScheme.size());
  RedisEndpoint endpoint;

  // Credentials end at the last '@', since a password may itself contain '@'.
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = credentials.find(':');
    if (colon == absl::string_view::npos) return UrlError("credentials must be [user]:password");
    endpoint.username = std::string(credentials.substr(0, colon));
    endpoint.password = std::string(credentials.substr(colon + 1));
    if (endpoint.password.empty()) return UrlError("password is empty");
  }

  // Database number.
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    absl::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && (!absl::SimpleAtoi(db, &endpoint.db) || endpoint.db < 0 ||
                        db.find_first_not_of("0123456789") != absl::string_view::npos)) {
      return UrlError("database must be a non-negative number");
    }
  }

  // Host and port; an IPv6 address comes in brackets.
  absl::string_view port;
  if (absl::StartsWith(rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return UrlError("unclosed '[' in host");
    endpoint.host = std::string(rest.substr(1, close - 1));
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return UrlError("unexpected text after ']'");
      port = after.substr(1);
      if (port.empty()) return UrlError("port is empty");
    }
  } else {
    size_t colon = rest.find(':');
    endpoint.host = std::string(rest.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return UrlError("port is empty");
    }
  }
  if (endpoint.host.empty()) return UrlError("host is empty");
  if (!port.empty() &&
      (!absl::SimpleAtoi(port, &endpoint.port) || endpoint.port < 1 || endpoint.port > 65535 ||
       port.find_first_not_of("0123456789") != absl::string_view::npos)) {
    return UrlError("port must be a number from 1 to 65535");
  }
  return endpoint;
}

std::string RedactedUrl(const RedisEndpoint& endpoint) {
  std::string credentials;
  if (!endpoint.password.empty()) credentials = absl::StrCat(endpoint.username, ":***@");
  const bool ipv6 = endpoint.host.find(':') != std::string::npos;
  return absl::StrCat("redis://", credentials, ipv6 ? "[" : "", endpoint.host, ipv6 ? "]" : "", ":",
                      endpoint.port, "/", endpoint.db);
}

}  // namespace ratelimit
