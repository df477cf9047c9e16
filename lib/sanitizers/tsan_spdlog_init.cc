// Linked into every executable of a ThreadSanitizer build, never into a release build.
//
// spdlog's registry is a function-local static inside Debian's uninstrumented libspdlog, whose
// "already built" check ThreadSanitizer cannot see: the first log lines from two threads at once
// would look like a race on the registry. Building it before main, on one thread, removes that.

#include "spdlog/spdlog.h"

namespace {

const bool kRegistryBuilt = [] {
  spdlog::default_logger_raw();
  return true;
}();

}  // namespace
