// mcpmw eval: a small mutable JSON value and the JavaScript-exact writers the prototype's ids
// depend on (seed-spec §3.2, §3.4).
//
// Every artifact of the offline pipeline is a JsonValue, so the port reads its inputs the way the
// prototype's TypeScript did (a missing member is distinct from null) and emits artifacts whose
// members keep the order the prototype wrote them in. Numbers are IEEE doubles, as in JS.
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mcpmw::eval {

struct JsonMember;

// null, bool, number (double), string (UTF-8), array, or object with insertion-ordered members.
// A value type: copies are deep. Not thread-safe for concurrent mutation.
class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;  // null
  JsonValue(std::nullptr_t) {}
  JsonValue(bool b) : kind_(Kind::kBool), bool_(b) {}
  JsonValue(double d) : kind_(Kind::kNumber), number_(d) {}
  template <std::integral T>
  JsonValue(T n) : kind_(Kind::kNumber), number_(static_cast<double>(n)) {}
  JsonValue(const char* s) : kind_(Kind::kString), string_(s) {}
  JsonValue(std::string_view s) : kind_(Kind::kString), string_(s) {}
  JsonValue(std::string s) : kind_(Kind::kString), string_(std::move(s)) {}

  static JsonValue Array(std::vector<JsonValue> items = {});
  static JsonValue Object();

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  // The payload of the matching kind; the value of another kind yields false / 0 / "" / empty.
  bool as_bool() const { return kind_ == Kind::kBool && bool_; }
  double as_number() const { return kind_ == Kind::kNumber ? number_ : 0; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return array_; }
  std::vector<JsonValue>& items() { return array_; }
  const std::vector<JsonMember>& members() const { return object_; }
  std::vector<JsonMember>& members() { return object_; }

  // The member named `key`; nullptr when this is not an object or has no such member. The
  // pointer is valid until this object's members change.
  const JsonValue* Find(std::string_view key) const;
  JsonValue* Find(std::string_view key);
  // Replaces the member's value in place, or appends the member (JS property assignment).
  // Turns a non-object into an empty object first. Returns the stored value.
  JsonValue& Set(std::string_view key, JsonValue value);
  // Removes the member (JS `delete`); false when there was none.
  bool Erase(std::string_view key);
  // Appends to an array (turning a non-array into an empty array first).
  void Append(JsonValue value);

  // Deep equality in the sense of a test's toEqual: objects compare as unordered sets of
  // members, arrays element by element, numbers by value (so -0 == 0).
  friend bool operator==(const JsonValue& a, const JsonValue& b);

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> array_;
  std::vector<JsonMember> object_;
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

// Parses one JSON document (RFC 8259, UTF-8). A key that repeats keeps its first position and
// its last value, as JSON.parse does. InvalidArgument names what is wrong (simdjson's message).
absl::StatusOr<JsonValue> ParseJson(std::string_view text);

// JSON.stringify(value) without indentation: members in insertion order, numbers per
// NumberToString, non-finite numbers as null, strings escaped as JSON.stringify escapes them.
std::string StringifyJson(const JsonValue& value);

// The prototype's canonicalJson (seed §3.4): StringifyJson with every object's keys sorted by
// UTF-16 code units, at every depth. The hashed form of every content-derived id.
std::string CanonicalJson(const JsonValue& value);

// A copy of `value` whose objects, at every depth, have their members sorted by UTF-16 code
// units (the dispatcher's echoed result).
JsonValue SortKeysDeep(const JsonValue& value);

// ECMAScript Number::toString (radix 10): shortest round-trip digits, `1e+21`, `1e-7`, `-0` as
// "0", "NaN", "Infinity".
std::string NumberToString(double d);

// ECMAScript Number.prototype.toFixed(digits) for 0 <= digits <= 20: the exact decimal value
// rounded half away from zero, e.g. ToFixed(0.038, 4) == "0.0380", ToFixed(-0.01, 4) ==
// "-0.0100"; magnitudes >= 1e21 fall back to NumberToString, as in JS.
std::string ToFixed(double d, int digits);

}  // namespace mcpmw::eval
