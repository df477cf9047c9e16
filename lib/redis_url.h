#ifndef RATELIMIT_LIB_REDIS_URL_H_
#define RATELIMIT_LIB_REDIS_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratelimit {

// Where Redis is and how to log in.
struct RedisEndpoint {
  std::string host;
  int port = 6379;
  std::string username;  // Empty: AUTH with the password alone.
  std::string password;  // Empty: no AUTH.
  int db = 0;
};

// Parses redis://[[username]:password@]host[:port][/db]. Hosts may be names, IPv4 or [IPv6].
// Error messages never contain the password.
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url);

// The URL with the password replaced by "***", fit for logs.
std::string RedactedUrl(const RedisEndpoint& endpoint);

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REDIS_URL_H_
