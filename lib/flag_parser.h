#ifndef RATELIMIT_LIB_FLAG_PARSER_H_
#define RATELIMIT_LIB_FLAG_PARSER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratelimit {

// The Abseil flags one program accepts, and where else they may come from. Abseil defines,
// types and parses each value; this adds what the binaries need on top: values from
// environment variables, `--dashed-names`, and errors returned rather than exiting, so that
// callers choose the exit code.
struct FlagSet {
  // Flag names as defined (with underscores).
  std::vector<std::string> names;
  // Each flag may also come from env_prefix + NAME_IN_UPPER_CASE; empty: no environment.
  std::string env_prefix;
};

// Resets the set's flags to their defaults, applies the environment, then `args` (which win).
// `--name=value` and `--name value` both work, with dashes or underscores; a bool flag alone
// means true. Arguments that are not flags go to `positional`, or are an error when it is null.
// Errors are InvalidArgument, naming the flag and where its value came from, never the value.
absl::Status ParseFlags(const FlagSet& set, const std::vector<std::string>& args,
                        const std::function<const char*(const char*)>& getenv,
                        std::vector<std::string>* positional = nullptr);

// One entry per flag: name, default, environment variable and help text.
std::string FlagUsage(const FlagSet& set);

// "grpc_address" -> "--grpc-address".
std::string DashedFlag(const std::string& name);

// InvalidArgument "--name: what".
absl::Status FlagError(const std::string& name, absl::string_view what);

// Reads, whole, the PEM file (certificate or key) that flag `name` names. Errors name the flag,
// not the path: a value given in the wrong place may be a URL with a password.
absl::StatusOr<std::string> ReadPemFlagFile(const std::string& name, const std::string& path);

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_FLAG_PARSER_H_
