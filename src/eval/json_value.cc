#include "src/eval/json_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/eval/js_string.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::eval {

JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue v;
  v.kind_ = Kind::kArray;
  v.array_ = std::move(items);
  return v;
}

JsonValue JsonValue::Object() {
  JsonValue v;
  v.kind_ = Kind::kObject;
  return v;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const JsonMember& m : object_) {
    if (m.key == key) {
      return &m.value;
    }
  }
  return nullptr;
}

JsonValue* JsonValue::Find(std::string_view key) {
  return const_cast<JsonValue*>(static_cast<const JsonValue*>(this)->Find(key));
}

JsonValue& JsonValue::Set(std::string_view key, JsonValue value) {
  if (kind_ != Kind::kObject) {
    *this = Object();
  }
  if (JsonValue* existing = Find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  object_.push_back({std::string(key), std::move(value)});
  return object_.back().value;
}

bool JsonValue::Erase(std::string_view key) {
  auto it = std::find_if(object_.begin(), object_.end(),
                         [key](const JsonMember& m) { return m.key == key; });
  if (it == object_.end()) {
    return false;
  }
  object_.erase(it);
  return true;
}

void JsonValue::Append(JsonValue value) {
  if (kind_ != Kind::kArray) {
    *this = Array();
  }
  array_.push_back(std::move(value));
}

bool operator==(const JsonValue& a, const JsonValue& b) {
  if (a.kind_ != b.kind_) {
    return false;
  }
  switch (a.kind_) {
    case JsonValue::Kind::kNull:
      return true;
    case JsonValue::Kind::kBool:
      return a.bool_ == b.bool_;
    case JsonValue::Kind::kNumber:
      return a.number_ == b.number_;
    case JsonValue::Kind::kString:
      return a.string_ == b.string_;
    case JsonValue::Kind::kArray:
      return a.array_ == b.array_;
    case JsonValue::Kind::kObject:
      if (a.object_.size() != b.object_.size()) {
        return false;
      }
      return std::all_of(a.object_.begin(), a.object_.end(), [&b](const JsonMember& m) {
        const JsonValue* other = b.Find(m.key);
        return other != nullptr && *other == m.value;
      });
  }
  return false;
}

namespace {

JsonValue FromElement(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      return JsonValue();
    case simdjson::dom::element_type::BOOL:
      return JsonValue(e.get_bool().value_unsafe());
    case simdjson::dom::element_type::INT64:
      return JsonValue(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return JsonValue(e.get_uint64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE:
      return JsonValue(e.get_double().value_unsafe());
    case simdjson::dom::element_type::STRING:
      return JsonValue(e.get_string().value_unsafe());
    case simdjson::dom::element_type::ARRAY: {
      JsonValue out = JsonValue::Array();
      // Copied out of the result first: value_unsafe() on a temporary returns a reference that
      // would dangle for the loop's duration.
      const simdjson::dom::array array = e.get_array().value_unsafe();
      for (simdjson::dom::element item : array) {
        out.Append(FromElement(item));
      }
      return out;
    }
    case simdjson::dom::element_type::OBJECT: {
      JsonValue out = JsonValue::Object();
      const simdjson::dom::object object = e.get_object().value_unsafe();
      for (simdjson::dom::key_value_pair kv : object) {
        out.Set(kv.key, FromElement(kv.value));
      }
      return out;
    }
  }
  return JsonValue();
}

void Write(const JsonValue& v, bool sort_keys, std::string* out) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull:
      out->append("null");
      return;
    case JsonValue::Kind::kBool:
      out->append(v.as_bool() ? "true" : "false");
      return;
    case JsonValue::Kind::kNumber:
      out->append(std::isfinite(v.as_number()) ? NumberToString(v.as_number()) : "null");
      return;
    case JsonValue::Kind::kString:
      jsonrpc::AppendJsonStringLikeJs(v.as_string(), out);
      return;
    case JsonValue::Kind::kArray: {
      out->push_back('[');
      bool first = true;
      for (const JsonValue& item : v.items()) {
        if (!first) {
          out->push_back(',');
        }
        first = false;
        Write(item, sort_keys, out);
      }
      out->push_back(']');
      return;
    }
    case JsonValue::Kind::kObject: {
      std::vector<const JsonMember*> members;
      members.reserve(v.members().size());
      for (const JsonMember& m : v.members()) {
        members.push_back(&m);
      }
      if (sort_keys) {
        std::stable_sort(members.begin(), members.end(),
                         [](const JsonMember* a, const JsonMember* b) {
                           return CompareCodeUnits(a->key, b->key) < 0;
                         });
      }
      out->push_back('{');
      bool first = true;
      for (const JsonMember* m : members) {
        if (!first) {
          out->push_back(',');
        }
        first = false;
        jsonrpc::AppendJsonStringLikeJs(m->key, out);
        out->push_back(':');
        Write(m->value, sort_keys, out);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

absl::StatusOr<JsonValue> ParseJson(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (simdjson::error_code error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(simdjson::error_message(error));
  }
  return FromElement(root);
}

std::string StringifyJson(const JsonValue& value) {
  std::string out;
  Write(value, /*sort_keys=*/false, &out);
  return out;
}

std::string CanonicalJson(const JsonValue& value) {
  std::string out;
  Write(value, /*sort_keys=*/true, &out);
  return out;
}

JsonValue SortKeysDeep(const JsonValue& value) {
  if (value.is_array()) {
    JsonValue out = JsonValue::Array();
    for (const JsonValue& item : value.items()) {
      out.Append(SortKeysDeep(item));
    }
    return out;
  }
  if (!value.is_object()) {
    return value;
  }
  JsonValue out = JsonValue::Object();
  for (const JsonMember& m : value.members()) {
    out.Set(m.key, SortKeysDeep(m.value));
  }
  std::stable_sort(
      out.members().begin(), out.members().end(),
      [](const JsonMember& a, const JsonMember& b) { return CompareCodeUnits(a.key, b.key) < 0; });
  return out;
}

std::string NumberToString(double d) {
  if (std::isnan(d)) {
    return "NaN";
  }
  if (std::isinf(d)) {
    return d > 0 ? "Infinity" : "-Infinity";
  }
  if (d == 0) {
    return "0";  // also -0
  }
  // The shortest round-trip digits come from to_chars; only the layout is ECMAScript's
  // (Number::toString steps 6-12): k digits, decimal exponent n with value = 0.digits × 10^n.
  char buf[64];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), std::abs(d), std::chars_format::scientific);
  std::string_view sci(buf, end - buf);  // "d.ddde+XX" or "de-XX"
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') {
      digits.push_back(c);
    }
  }
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  std::string out = d < 0 ? "-" : "";
  if (k <= n && n <= 21) {
    out += digits;
    out.append(n - k, '0');
  } else if (0 < n && n <= 21) {
    absl::StrAppend(&out, digits.substr(0, n), ".", digits.substr(n));
  } else if (-6 < n && n <= 0) {
    absl::StrAppend(&out, "0.", std::string(-n, '0'), digits);
  } else {
    out += digits[0];
    if (k > 1) {
      absl::StrAppend(&out, ".", digits.substr(1));
    }
    absl::StrAppend(&out, "e", n - 1 >= 0 ? "+" : "-", std::abs(n - 1));
  }
  return out;
}

std::string ToFixed(double d, int digits) {
  digits = std::clamp(digits, 0, 20);
  if (!std::isfinite(d) || std::abs(d) >= 1e21) {
    return NumberToString(d);
  }
  const double magnitude = std::abs(d);
  const double twice_scale = 2 * std::pow(10.0, digits);  // exact for digits <= 20
  const double p = magnitude * twice_scale;
  // printf rounds exact ties to even; toFixed takes the larger candidate. A tie means
  // magnitude × 10^digits is exactly k + 0.5, i.e. magnitude × 2·10^digits is exactly an odd
  // integer (fma yields the rounding error of the product, zero when it is exact).
  if (std::fma(magnitude, twice_scale, -p) == 0 && p < 9007199254740992.0 &&
      std::fmod(p, 2.0) == 1.0) {
    std::string n = std::to_string(static_cast<uint64_t>((p + 1) / 2));
    if (static_cast<int>(n.size()) <= digits) {
      n.insert(0, digits + 1 - n.size(), '0');
    }
    std::string out = d < 0 ? "-" : "";
    out += n.substr(0, n.size() - digits);
    if (digits > 0) {
      absl::StrAppend(&out, ".", n.substr(n.size() - digits));
    }
    return out;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, d);
  std::string out(buf);
  if (out[0] == '-' && std::signbit(d) && d == 0) {
    out.erase(0, 1);  // (-0).toFixed(4) is "0.0000"
  }
  return out;
}

}  // namespace mcpmw::eval
