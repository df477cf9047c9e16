// Asks a ratelimit-server once whether "example:user" may spend 1 of 10 per minute.
// Usage: check_once [target]; exits 0 when allowed, 1 when denied, 2 on error.

#include <iostream>

#include "ratelimit/client.h"

int main(int argc, char** argv) {
  ratelimit::Client client(
      argc > 1 ? argv[1] : "127.0.0.1:50051",
      {.deadline = absl::Seconds(1), .fail_mode = ratelimit::FailMode::kClosed});
  absl::StatusOr<ratelimit::CheckResult> result =
      client.Check({.key = "example:user", .limit = 10, .window = absl::Minutes(1)});
  if (!result.ok() || result->decided_locally) {
    std::cerr << "no answer: " << (result.ok() ? result->service_status : result.status()) << "\n";
    return 2;
  }
  std::cout << (result->allowed ? "allowed" : "denied") << ", " << result->remaining
            << " remaining\n";
  return result->allowed ? 0 : 1;
}
