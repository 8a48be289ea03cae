// mcpmw common: reading a JSON configuration document (a policy bundle, a pool profile) with
// errors that start with the JSON pointer of the bad value, and unknown keys refused.
//
//   ObjectReader r(obj, "/pools/0");
//   MCPMW_ASSIGN_OR_RETURN(std::string name, r.RequiredString("name"));
//   MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> n, r.Whole("minWarm", 1000));
//   MCPMW_RETURN_IF_ERROR(r.RejectUnknown());   // "/pools/0/minWarn: unknown key; expected …"
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::json {

// One RFC 6901 reference token: '~' → "~0", '/' → "~1".
std::string EscapeToken(std::string_view token);

// InvalidArgument "<pointer>: <what>" ("/" for the document itself).
absl::Status Bad(std::string_view pointer, std::string_view what);

// "an array", "a number", … for error messages.
std::string_view TypeName(simdjson::dom::element_type t);

absl::StatusOr<simdjson::dom::object> AsObject(simdjson::dom::element e, std::string_view pointer);
absl::StatusOr<simdjson::dom::array> AsArray(simdjson::dom::element e, std::string_view pointer);

// Walks one object, remembering which keys were read so unknown ones are refused. Absent members
// read as nullopt (or an empty list); present members of the wrong type are errors.
class ObjectReader {
 public:
  ObjectReader(simdjson::dom::object obj, std::string pointer)
      : obj_(obj), pointer_(std::move(pointer)) {}

  // The pointer of member `key`.
  std::string Ptr(std::string_view key) const {
    return absl::StrCat(pointer_, "/", EscapeToken(key));
  }
  const std::string& pointer() const { return pointer_; }
  const simdjson::dom::object& obj() const { return obj_; }

  std::optional<simdjson::dom::element> Get(std::string_view key);

  absl::StatusOr<std::optional<std::string>> String(std::string_view key);
  // A non-empty string; absent or empty is an error.
  absl::StatusOr<std::string> RequiredString(std::string_view key);
  // A finite number.
  absl::StatusOr<std::optional<double>> Number(std::string_view key);
  absl::StatusOr<std::optional<bool>> Bool(std::string_view key);
  // A whole number in [0, max] (1e3 counts; 1.5 and -1 do not).
  absl::StatusOr<std::optional<uint64_t>> Whole(std::string_view key,
                                                uint64_t max = std::numeric_limits<int64_t>::max());
  // Whole milliseconds, at most a day.
  absl::StatusOr<std::optional<std::chrono::milliseconds>> Millis(std::string_view key);
  absl::StatusOr<std::vector<std::string>> Strings(std::string_view key);
  // The member as a reader of its own, or nullopt when absent.
  absl::StatusOr<std::optional<ObjectReader>> Object(std::string_view key);

  // The value `choices` maps the member's string to; `fallback` when the member is absent, or
  // an error saying what is allowed when there is no fallback.
  template <typename T>
  absl::StatusOr<T> Choice(std::string_view key,
                           std::initializer_list<std::pair<std::string_view, T>> choices,
                           std::optional<T> fallback) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> s, String(key));
    std::string list;     // "a", "b", "c"
    std::string options;  // "a", "b" or "c"
    size_t n = 0;
    for (const auto& [name, value] : choices) {
      if (s && *s == name) {
        return value;
      }
      std::string quoted = absl::StrCat("\"", Sv(name), "\"");
      absl::StrAppend(&list, n == 0 ? "" : ", ", quoted);
      absl::StrAppend(&options, n == 0 ? "" : n + 1 == choices.size() ? " or " : ", ", quoted);
      ++n;
    }
    if (s) {
      return Bad(Ptr(key), absl::StrCat("\"", *s, "\" is not one of ", list));
    }
    if (fallback) {
      return *fallback;
    }
    return Bad(Ptr(key), absl::StrCat("required: ", options));
  }

  // InvalidArgument for the first key that was never asked for.
  absl::Status RejectUnknown() const;

 private:
  simdjson::dom::object obj_;
  std::string pointer_;
  std::set<std::string> known_;
};

}  // namespace mcpmw::json
