// mcpmw redaction: JSON document rewriting.
//
// Place in the message path: the `request_redaction` stage (ARCHITECTURE §4) hands it the
// tools/call `params.arguments` before dispatch; the `response_redaction` stage hands it the
// tools/call `result` (its `content[].text`, `structuredContent`, resource `contents[].text` are
// ordinary string values and members of that document) before the response goes back to the
// client. A JsonRedactor is built once per bundle load (ARCHITECTURE §5, `redactionRules`) and
// is immutable afterwards.
//
// What it does to a document, in document order:
//   1. Path rules. The first rule (in configuration order) whose path matches a member or
//      element decides its fate: kMask replaces the value (of any type) with the JSON string
//      `mask`; kDrop removes the member, or the element from its array (later elements shift);
//      kHash replaces it with the string "sha256:<64 lowercase hex>" of SHA-256(salt + value),
//      where value is a string's UTF-8 content, or the compact JSON of any other value. A node a
//      rule decided is not looked into further (no other rule, no detector).
//   2. Detectors. Every other string *value* at any depth goes through the DetectorSet and each
//      match is replaced by its detector's replacement. Object keys are neither scanned nor
//      rewritten: a key is structure the receiver relies on, and it appears in event pointers.
//   3. When something changed, the document is written back compactly (no insignificant
//      whitespace), members in their original order, strings escaped per RFC 8259; numbers are
//      re-rendered from their parsed value (1.0 stays 1.0, 1e2 becomes 100.0).
//
// Events say what and where, never the secret: the rule or detector id, the RFC 6901 pointer
// (into the *original* document), the action, the detector kind and the match count. Neither the
// original value nor a preview of it is kept anywhere (legacy bug B10 fixed).
//
// Path syntax (a subset of JSONPath; at least one step after the root):
//   path  := "$" step+
//   step  := "." name          member `name` (any bytes but '.', '[' and ']')
//          | "[" "'" key "'" "]" | "[" '"' key '"' "]"   member `key` (no escapes)
//          | "[" digits "]"    array element by index
//          | ".*" | "[*]"      every member or element
//          | ".." name | "..*" | ".." "[" … "]"   the step that follows, at any depth below
// Examples: "$.password", "$.items[*].card", "$.users[0].email", "$..ssn", "$['odd.key']".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "simdjson.h"
#include "src/middleware/redaction/detectors.h"

namespace mcpmw::redaction {

// One JSON-path rule of a bundle's `redactionRules`.
struct PathRule {
  enum Action { kMask, kDrop, kHash };

  std::string id;  // names the rule in errors and events; empty: the path
  std::string path;
  Action action = kMask;
  std::string mask = "[REDACTED]";  // kMask only: the replacement string value (UTF-8)
};

// "mask", "drop", "hash". The view is static.
std::string_view PathActionName(PathRule::Action action);

// One thing a Redact call changed. Holds no part of the value it replaced.
struct RedactionEvent {
  std::string rule_id;   // the PathRule id, or the detector id
  std::string pointer;   // RFC 6901 pointer into the original document ("" is the root)
  std::string action;    // "mask", "drop", "hash", or "redact" for detector replacements
  std::string detector;  // DetectorKindName of the detector, "" for path rules
  size_t matches = 0;    // 1 for path rules; the number of matches replaced in this string
  bool operator==(const RedactionEvent&) const = default;
};

class JsonRedactor {
 public:
  // Validates and compiles. InvalidArgument, naming the rule id, for a path outside the syntax
  // above or a mask that is not valid UTF-8; naming the detector id for a replacement that is not
  // valid UTF-8. `detectors` may be empty (path rules only); `rules` may be empty (detectors
  // only). `hash_salt` is prepended to every hashed value; give each deployment its own so hashes
  // cannot be looked up in a precomputed table.
  static absl::StatusOr<JsonRedactor> Create(std::vector<PathRule> rules, DetectorSet detectors,
                                             std::string hash_salt);

  // Redacts `json`. Returns nullopt when nothing changed, so the caller forwards the original
  // bytes untouched; otherwise the rewritten document. Appends one event per change to `events`
  // (may be null), in document order. InvalidArgument when `json` is not one valid JSON document
  // (also for numbers simdjson cannot hold, e.g. integers beyond 64 bits).
  // Thread-safe: each thread uses its own parser.
  absl::StatusOr<std::optional<std::string>> Redact(std::string_view json,
                                                    std::vector<RedactionEvent>* events) const;

  // As Redact, for a document the caller has already parsed (a member of a message parsed once
  // for every stage): `root` is the document, and the result and events are exactly what Redact
  // gives for that document's text. Never fails. `size_hint` reserves the rewritten text.
  // Thread-safe; `root`'s parser must not be reused during the call.
  std::optional<std::string> RedactParsed(simdjson::dom::element root,
                                          std::vector<RedactionEvent>* events,
                                          size_t size_hint) const;

  // True when Redact would change nothing in any JSON value written anywhere inside `text`,
  // decided from the bytes alone, without parsing: `text` holds no backslash (so every string
  // and member name in it reads exactly as written), no detector finds anything in the whole
  // text, and every path rule names a member whose name does not appear in it.
  // False says only "parse and look": always so when a path rule names no member (e.g. "$.*")
  // or a detector is custom (an RE2 pattern may be anchored to a string's ends, which the raw
  // text does not show it). Sound because the fixed detectors treat the quote around a string
  // like the ends of the text, so a match inside a string is also a match in the raw text.
  // Says nothing about whether `text` is valid JSON. Thread-safe.
  bool LeavesUnchanged(std::string_view text) const;

  const DetectorSet& detectors() const { return detectors_; }

 private:
  // One step of a compiled path.
  struct Step {
    enum Type : uint8_t { kKey, kIndex, kAny, kDescend } type;
    std::string key;   // kKey
    size_t index = 0;  // kIndex
  };
  struct CompiledRule {
    PathRule rule;
    std::vector<Step> steps;
    // The name of each member step: a text in which one of them does not appear cannot hold a
    // document that matches the rule.
    std::vector<std::string> member_names;
  };
  friend class JsonRedactorWalk;

  // Parses `path` (syntax above) into `steps`; InvalidArgument naming rule `id`.
  static absl::Status ParsePath(std::string_view id, std::string_view path,
                                std::vector<Step>* steps);

  std::vector<CompiledRule> rules_;
  DetectorSet detectors_;
  std::string hash_salt_;
  // LeavesUnchanged can decide anything: every rule names a member, no detector is custom.
  bool raw_decidable_ = true;
};

}  // namespace mcpmw::redaction
