// mcpmw common: bridging std::string_view and absl::string_view.
//
// Debian 12's Abseil (20220623) is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type and absl::StrCat & co. do not take std::string_view. mcpmw
// uses std::string_view everywhere (simdjson hands them out) and converts at the call site.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace mcpmw {

inline absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view Sv(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace mcpmw
