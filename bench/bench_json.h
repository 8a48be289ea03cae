// mcpmw bench: the few simdjson On-Demand helpers the bench tools share (the echo server and
// mcpmw-load). Deliberately separate from src/jsonrpc: the load generator checks mcpmw's output
// with parsing of its own, so a bug in mcpmw's envelope reader cannot hide itself.
#pragma once

#include <string_view>

#include "simdjson.h"

namespace mcpmw::bench {

// `s` without trailing blanks (raw tokens from On-Demand carry the whitespace after them).
inline std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls fn(key, value) for each member of `object`, in order, until fn returns false. False
// when the object is malformed or fn stopped it.
template <typename Fn>
bool ForEachMember(simdjson::ondemand::object object, Fn fn) {
  for (auto field : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS ||
        field.value().get(value) != simdjson::SUCCESS || !fn(key, value)) {
      return false;
    }
  }
  return true;
}

// The same over a value that must be an object.
template <typename Fn>
bool ForEachMember(simdjson::ondemand::value value, Fn fn) {
  simdjson::ondemand::object object;
  return value.get_object().get(object) == simdjson::SUCCESS && ForEachMember(object, fn);
}

// Parses `line` (followed by SIMDJSON_PADDING readable bytes) as one JSON object and calls
// fn(key, value) for each top-level member.
template <typename Fn>
bool ForEachLineMember(simdjson::ondemand::parser& parser, std::string_view line, Fn fn) {
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(line.data(), line.size(), line.size() + simdjson::SIMDJSON_PADDING).get(doc) !=
          simdjson::SUCCESS ||
      doc.get_object().get(object) != simdjson::SUCCESS) {
    return false;
  }
  return ForEachMember(object, fn);
}

}  // namespace mcpmw::bench
