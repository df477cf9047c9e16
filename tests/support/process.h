#ifndef RATELIMIT_TESTS_SUPPORT_PROCESS_H_
#define RATELIMIT_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ratelimit::testing {

// A child process started by a test, with its output in a log file. Killed when destroyed.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `argv` with `env` added to this process's environment.
  absl::Status Start(const std::vector<std::string>& argv, const std::string& log_path,
                     const std::vector<std::string>& env = {});
  void Signal(int signal) const;
  // Waits for the process to exit and returns its exit code (128 + signal if killed by one).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// A loopback TCP port that was free a moment ago.
int PickFreePort();

// A fresh temporary directory.
std::string MakeTempDir(const std::string& prefix);

}  // namespace ratelimit::testing

#endif  // RATELIMIT_TESTS_SUPPORT_PROCESS_H_
