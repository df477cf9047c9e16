#ifndef RATELIMIT_LIB_LOGGING_H_
#define RATELIMIT_LIB_LOGGING_H_

// spdlog, taught to print absl::string_view (Debian's Abseil has its own string_view type).

#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

#endif  // RATELIMIT_LIB_LOGGING_H_
