#ifndef RATELIMIT_TESTS_SUPPORT_CLI_H_
#define RATELIMIT_TESTS_SUPPORT_CLI_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace ratelimit::testing {

// What one ratelimit-cli run printed on standard output, and its exit code.
struct CliRun {
  int exit_code = -1;
  std::string out;
};

// Runs the built ratelimit-cli with `args` (shell words); standard error is dropped, so tests
// that want the error text pass --json, which prints errors on standard output.
inline CliRun RunCli(const std::string& args) {
  CliRun run;
  FILE* pipe = popen((std::string(RATELIMIT_CLI_PATH) + " " + args + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) run.out += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_CLI_H_
