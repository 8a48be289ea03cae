// mcpmw eval: reading artifacts the way the prototype's TypeScript read them (internal to
// src/eval). A missing member and a member of the wrong type read as the caller's default;
// where the prototype would have thrown, components check explicitly and take their fallback.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// obj[key] when it is a string, else "". The view lives as long as `obj` is unchanged.
inline std::string_view StrOf(const JsonValue& obj, std::string_view key) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
}

// obj[key] when it is a number, else `fallback`.
inline double NumOf(const JsonValue& obj, std::string_view key, double fallback = 0) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->is_number() ? v->as_number() : fallback;
}

// obj[key] === true.
inline bool IsTrue(const JsonValue& obj, std::string_view key) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->as_bool();
}

// The elements of obj[key] when it is an array, else none.
inline const std::vector<JsonValue>& ItemsOf(const JsonValue& obj, std::string_view key) {
  static const std::vector<JsonValue> kNone;
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->is_array() ? v->items() : kNone;
}

// obj[key] when present, else null (for copying a member through unchanged).
inline JsonValue ValueOf(const JsonValue& obj, std::string_view key) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr ? *v : JsonValue();
}

// out[key] = src[key] when src has the member; an absent (JS undefined) member stays absent,
// as JSON.stringify drops it.
inline void CopyIfPresent(JsonValue& out, const JsonValue& src, std::string_view key) {
  if (const JsonValue* v = src.Find(key)) {
    out.Set(key, *v);
  }
}

// The string elements of obj[key] (others skipped).
inline std::vector<std::string> StringsOf(const JsonValue& obj, std::string_view key) {
  std::vector<std::string> out;
  for (const JsonValue& v : ItemsOf(obj, key)) {
    if (v.is_string()) {
      out.push_back(v.as_string());
    }
  }
  return out;
}

// JS String(value) as used in string concatenation; nullptr is `undefined`.
inline std::string JsToString(const JsonValue* v) {
  if (v == nullptr) {
    return "undefined";
  }
  switch (v->kind()) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return v->as_bool() ? "true" : "false";
    case JsonValue::Kind::kNumber:
      return NumberToString(v->as_number());
    case JsonValue::Kind::kString:
      return v->as_string();
    case JsonValue::Kind::kArray: {
      // Array.prototype.toString: elements joined by ",", null and undefined as "".
      std::string out;
      for (size_t i = 0; i < v->items().size(); ++i) {
        if (i > 0) {
          out.push_back(',');
        }
        if (!v->items()[i].is_null()) {
          out += JsToString(&v->items()[i]);
        }
      }
      return out;
    }
    case JsonValue::Kind::kObject:
      return "[object Object]";
  }
  return "";
}

}  // namespace mcpmw::eval
