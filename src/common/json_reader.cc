#include "src/common/json_reader.h"

#include <cmath>

namespace mcpmw::json {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

std::string EscapeToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status Bad(std::string_view pointer, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(pointer.empty() ? std::string_view("/") : pointer), ": ", Sv(what)));
}

std::string_view TypeName(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

absl::StatusOr<object> AsObject(element e, std::string_view pointer) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    return Bad(pointer, absl::StrCat("expected an object, found ", Sv(TypeName(e.type()))));
  }
  return obj;
}

absl::StatusOr<array> AsArray(element e, std::string_view pointer) {
  array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    return Bad(pointer, absl::StrCat("expected an array, found ", Sv(TypeName(e.type()))));
  }
  return arr;
}

std::optional<element> ObjectReader::Get(std::string_view key) {
  known_.insert(std::string(key));
  element e;
  if (obj_.at_key(key).get(e) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return e;
}

absl::StatusOr<std::optional<std::string>> ObjectReader::String(std::string_view key) {
  std::optional<element> e = Get(key);
  if (!e) {
    return std::optional<std::string>();
  }
  std::string_view s;
  if (e->get_string().get(s) != simdjson::SUCCESS) {
    return Bad(Ptr(key), absl::StrCat("expected a string, found ", Sv(TypeName(e->type()))));
  }
  return std::optional<std::string>(std::string(s));
}

absl::StatusOr<std::string> ObjectReader::RequiredString(std::string_view key) {
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> s, String(key));
  if (!s || s->empty()) {
    return Bad(Ptr(key), "required: a non-empty string");
  }
  return *std::move(s);
}

absl::StatusOr<std::optional<double>> ObjectReader::Number(std::string_view key) {
  std::optional<element> e = Get(key);
  if (!e) {
    return std::optional<double>();
  }
  double d = 0;
  if (!e->is_number() || e->get_double().get(d) != simdjson::SUCCESS || !std::isfinite(d)) {
    return Bad(Ptr(key), absl::StrCat("expected a number, found ", Sv(TypeName(e->type()))));
  }
  return std::optional<double>(d);
}

absl::StatusOr<std::optional<bool>> ObjectReader::Bool(std::string_view key) {
  std::optional<element> e = Get(key);
  if (!e) {
    return std::optional<bool>();
  }
  bool b = false;
  if (e->get_bool().get(b) != simdjson::SUCCESS) {
    return Bad(Ptr(key), absl::StrCat("expected true or false, found ", Sv(TypeName(e->type()))));
  }
  return std::optional<bool>(b);
}

absl::StatusOr<std::optional<uint64_t>> ObjectReader::Whole(std::string_view key, uint64_t max) {
  std::optional<element> e = Get(key);
  if (!e) {
    return std::optional<uint64_t>();
  }
  uint64_t v = 0;
  if (e->type() == element_type::DOUBLE) {
    double d = 0;
    if (e->get_double().get(d) != simdjson::SUCCESS || d < 0 ||
        d != static_cast<double>(static_cast<uint64_t>(d))) {
      return Bad(Ptr(key), "expected a whole number ≥ 0, found a fraction or a negative number");
    }
    v = static_cast<uint64_t>(d);
  } else if (e->type() == element_type::INT64 || e->type() == element_type::UINT64) {
    if (e->get_uint64().get(v) != simdjson::SUCCESS) {
      return Bad(Ptr(key), "expected a whole number ≥ 0, found a negative number");
    }
  } else {
    return Bad(Ptr(key),
               absl::StrCat("expected a whole number ≥ 0, found ", Sv(TypeName(e->type()))));
  }
  if (v > max) {
    return Bad(Ptr(key), absl::StrCat("too large: at most ", max));
  }
  return std::optional<uint64_t>(v);
}

absl::StatusOr<std::optional<std::chrono::milliseconds>> ObjectReader::Millis(
    std::string_view key) {
  // A day is far beyond any sensible timeout and keeps every sum of durations from overflowing.
  constexpr uint64_t kMaxMs = 24ULL * 3600 * 1000;
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> v, Whole(key, kMaxMs));
  if (!v) {
    return std::optional<std::chrono::milliseconds>();
  }
  return std::optional<std::chrono::milliseconds>(static_cast<int64_t>(*v));
}

absl::StatusOr<std::vector<std::string>> ObjectReader::Strings(std::string_view key) {
  std::vector<std::string> out;
  std::optional<element> e = Get(key);
  if (!e) {
    return out;
  }
  array arr;
  if (e->get_array().get(arr) != simdjson::SUCCESS) {
    return Bad(Ptr(key),
               absl::StrCat("expected an array of strings, found ", Sv(TypeName(e->type()))));
  }
  size_t i = 0;
  for (element item : arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      return Bad(absl::StrCat(Ptr(key), "/", i),
                 absl::StrCat("expected a string, found ", Sv(TypeName(item.type()))));
    }
    out.emplace_back(s);
    ++i;
  }
  return out;
}

absl::StatusOr<std::optional<ObjectReader>> ObjectReader::Object(std::string_view key) {
  std::optional<element> e = Get(key);
  if (!e) {
    return std::optional<ObjectReader>();
  }
  std::string ptr = Ptr(key);
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(*e, ptr));
  return std::optional<ObjectReader>(ObjectReader(obj, std::move(ptr)));
}

absl::Status ObjectReader::RejectUnknown() const {
  for (auto [key, value] : obj_) {
    if (!known_.contains(std::string(key))) {
      std::string list;
      for (const std::string& k : known_) {
        absl::StrAppend(&list, list.empty() ? "" : ", ", k);
      }
      return Bad(Ptr(key), absl::StrCat("unknown key; expected one of: ", list));
    }
  }
  return absl::OkStatus();
}

}  // namespace mcpmw::json
