#include "lib/flag_parser.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace ratelimit {
namespace {

std::string EnvName(const FlagSet& set, const std::string& name) {
  return absl::StrCat(set.env_prefix, absl::AsciiStrToUpper(name));
}

absl::CommandLineFlag* Find(const FlagSet& set, const std::string& name) {
  if (std::find(set.names.begin(), set.names.end(), name) == set.names.end()) return nullptr;
  return absl::FindCommandLineFlag(name);
}

// What a value of the flag's type looks like.
absl::string_view Expected(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<absl::Duration>()) return "a duration such as 250ms, 10s or 1m";
  if (flag.IsOfType<bool>()) return "true or false";
  if (flag.IsOfType<int32_t>() || flag.IsOfType<int64_t>()) return "a whole number";
  if (flag.IsOfType<double>()) return "a number";
  return "a value of the flag's type";
}

absl::Status Set(absl::CommandLineFlag& flag, const std::string& name, absl::string_view value,
                 absl::string_view origin) {
  std::string ignored;
  if (flag.ParseFrom(value, &ignored)) return absl::OkStatus();
  // Neither the value nor Abseil's message (which quotes it) is repeated: a misplaced value
  // may hold a password.
  return absl::InvalidArgumentError(absl::StrCat(DashedFlag(name), " (from ", origin,
                                                 "): invalid value, expected ", Expected(flag)));
}

}  // namespace

std::string DashedFlag(const std::string& name) {
  return absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
}

absl::Status ParseFlags(const FlagSet& set, const std::vector<std::string>& args,
                        const std::function<const char*(const char*)>& getenv,
                        std::vector<std::string>* positional) {
  // Defaults first, so that parsing twice gives the same answer.
  for (const std::string& name : set.names) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) return absl::InternalError("flag not defined: " + name);
    std::string ignored;
    flag->ParseFrom(flag->DefaultValue(), &ignored);
  }
  if (!set.env_prefix.empty()) {
    for (const std::string& name : set.names) {
      const std::string env = EnvName(set, name);
      if (const char* value = getenv(env.c_str()); value != nullptr) {
        if (absl::Status s = Set(*absl::FindCommandLineFlag(name), name, value, env); !s.ok()) {
          return s;
        }
      }
    }
  }

  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      if (positional == nullptr) {
        // Its text is not repeated: it may be a misplaced value with a password in it.
        return absl::InvalidArgumentError(absl::StrCat("unexpected argument number ", i + 1,
                                                       ": every setting is a --flag=value"));
      }
      positional->push_back(std::string(arg));
      continue;
    }
    if (arg == "--") {
      if (positional == nullptr) return absl::InvalidArgumentError("unexpected argument '--'");
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      break;
    }
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    const size_t eq = arg.find('=');
    std::string name = std::string(arg.substr(0, eq));
    absl::StrReplaceAll({{"-", "_"}}, &name);
    absl::CommandLineFlag* flag = Find(set, name);
    if (flag == nullptr) {
      // Only a name that looks like one is repeated: anything else may be a misplaced value.
      const bool plausible =
          name.size() <= 64 && name.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
      return absl::InvalidArgumentError(
          plausible ? absl::StrCat("unknown flag ", DashedFlag(name))
                    : absl::StrCat("unknown flag in argument number ", i + 1));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
      value = args[++i];
    } else {
      // A following --flag is not taken as the value: more likely the value was left out.
      return absl::InvalidArgumentError(
          absl::StrCat(DashedFlag(name), ": missing value (for a value that starts with --, write ",
                       DashedFlag(name), "=VALUE)"));
    }
    if (absl::Status s = Set(*flag, name, value, "command line"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FlagUsage(const FlagSet& set) {
  std::string out;
  for (const std::string& name : set.names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    absl::StrAppend(&out, "  ", DashedFlag(name), " (default: \"", flag->DefaultValue(), "\"");
    if (!set.env_prefix.empty()) absl::StrAppend(&out, ", env ", EnvName(set, name));
    absl::StrAppend(&out, ")\n      ", flag->Help(), "\n");
  }
  return out;
}

absl::Status FlagError(const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(DashedFlag(name), ": ", what));
}

absl::StatusOr<std::string> ReadPemFlagFile(const std::string& name, const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return FlagError(name, "cannot read the file: it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return FlagError(
        name, absl::StrCat("cannot read the file: ", std::generic_category().message(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return FlagError(name, "the file holds no PEM block");
  }
  return text.str();
}

}  // namespace ratelimit
