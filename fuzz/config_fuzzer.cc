// Fuzzes Redis URL and command-line parsing: never a crash, errors are InvalidArgument, and a
// password never appears in an error message.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "lib/redis_url.h"
#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string password = "pw" + std::to_string(in.ConsumeIntegral<uint32_t>()) + "zz";

  // A URL with a known password somewhere in it.
  const std::string before = in.ConsumeRandomLengthString(64);
  const std::string after = in.ConsumeRandomLengthString(64);
  const std::string url = before + password + after;
  absl::StatusOr<ratelimit::RedisEndpoint> endpoint = ratelimit::ParseRedisUrl(url);
  if (!endpoint.ok()) {
    if (endpoint.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    if (endpoint.status().message().find(password) != absl::string_view::npos) std::abort();
  } else if (ratelimit::RedactedUrl(*endpoint).find(password) != std::string::npos &&
             endpoint->host.find(password) == std::string::npos &&
             endpoint->username.find(password) == std::string::npos) {
    std::abort();
  }

  // Arbitrary arguments, one of them carrying the URL.
  std::vector<std::string> args;
  while (in.remaining_bytes() > 0 && args.size() < 8)
    args.push_back(in.ConsumeRandomLengthString(40));
  // The password may only leak from the URL: text a caller put elsewhere may be echoed.
  bool password_elsewhere = false;
  for (const std::string& arg : args) password_elsewhere |= arg.find(password) != std::string::npos;
  args.push_back("--redis=" + url);
  absl::StatusOr<ratelimit::ServerConfig> config =
      ratelimit::LoadServerConfig(args, [](const char*) -> const char* { return nullptr; });
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    if (!password_elsewhere &&
        config.status().message().find(password) != absl::string_view::npos) {
      std::abort();
    }
  } else if (ratelimit::DescribeConfig(*config).find(password) != std::string::npos &&
             config->redis && config->redis->host.find(password) == std::string::npos &&
             config->redis->username.find(password) == std::string::npos) {
    std::abort();
  }
  return 0;
}
