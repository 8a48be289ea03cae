// Fuzz target for redaction::DetectorSet with every built-in detector.
//
// The input is arbitrary bytes (tool output, logs, invalid UTF-8). Scan must not crash or read
// out of bounds; its matches must be non-empty, inside the text, sorted and non-overlapping, and
// name a detector of the set with that detector's kind. Redact must agree with Scan (true exactly
// when Scan found something, the same matches, the output rebuilt from the gaps and the
// replacements) and must leave none of the matched e-mail, card or SSN text in its output (unless
// the same text also stands unmatched elsewhere in the input, e.g. glued to a letter).
// The input is also scanned as two halves split at a derived offset: a match found inside one
// half must lie in that half, which checks that no scanner reads past the end of its view.
// When the halves hold no quote or backslash, a match in either must also be found in the JSON
// text {"a":"<half>","b":"<half>"} (the promise JsonRedactor::LeavesUnchanged rests on: a quote
// bounds a match like the text's ends do).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "src/middleware/redaction/detectors.h"

namespace {

using mcpmw::redaction::BuiltinDetectors;
using mcpmw::redaction::DetectorKind;
using mcpmw::redaction::DetectorSet;
using mcpmw::redaction::Match;

[[noreturn]] void Fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "detectors_fuzzer: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<size_t>(input.size(), 400)), input.data());
  __builtin_trap();
}

const DetectorSet& Set() {
  static const DetectorSet* set = [] {
    absl::StatusOr<DetectorSet> s = DetectorSet::Create(BuiltinDetectors());
    if (!s.ok()) {
      std::fprintf(stderr, "detectors_fuzzer: %s\n", std::string(s.status().message()).c_str());
      __builtin_trap();
    }
    return new DetectorSet(*std::move(s));
  }();
  return *set;
}

void CheckMatches(const DetectorSet& set, std::string_view text, const std::vector<Match>& m,
                  std::string_view input) {
  size_t prev_end = 0;
  for (const Match& x : m) {
    if (x.begin >= x.end || x.end > text.size()) {
      Fail("a match is empty or outside the text", input);
    }
    if (x.begin < prev_end) {
      Fail("matches overlap or are not sorted", input);
    }
    if (x.detector >= set.size() || set.spec(x.detector).kind != x.kind) {
      Fail("a match names the wrong detector", input);
    }
    prev_end = x.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const DetectorSet& set = Set();
  // A copy of exactly `size` bytes, so ASan catches any read past the text.
  std::string owned(reinterpret_cast<const char*>(data), size);
  std::string_view input(owned);

  std::vector<Match> matches;
  set.Scan(input, &matches);
  CheckMatches(set, input, matches, input);

  std::string out = "untouched";
  std::vector<Match> redact_matches;
  bool changed = set.Redact(input, &out, &redact_matches);
  if (changed != !matches.empty() || redact_matches != matches) {
    Fail("Redact disagrees with Scan", input);
  }
  if (!changed) {
    if (out != "untouched") {
      Fail("Redact wrote its output although nothing matched", input);
    }
  } else {
    std::string expected;
    size_t pos = 0;
    for (const Match& x : matches) {
      expected.append(input.substr(pos, x.begin - pos));
      expected.append(set.spec(x.detector).replacement);
      pos = x.end;
    }
    expected.append(input.substr(pos));
    if (out != expected) {
      Fail("Redact output is not the text with each match replaced", input);
    }
    // The unmatched gaps, joined by a byte no e-mail, card number or SSN contains. A secret may
    // legitimately survive only where the input also holds it outside every match.
    std::string gaps;
    pos = 0;
    for (const Match& x : matches) {
      gaps.append(input.substr(pos, x.begin - pos));
      gaps.push_back('\0');
      pos = x.end;
    }
    gaps.append(input.substr(pos));
    for (const Match& x : matches) {
      if (x.kind != DetectorKind::kEmail && x.kind != DetectorKind::kCardNumber &&
          x.kind != DetectorKind::kUsSsn) {
        continue;
      }
      std::string_view secret = input.substr(x.begin, x.end - x.begin);
      if (gaps.find(secret) == std::string::npos && out.find(secret) != std::string::npos) {
        Fail("a redacted e-mail, card number or SSN is still in the output", input);
      }
    }
  }

  // The two halves, each in its own exact-size buffer.
  size_t split = size == 0 ? 0 : (size_t{data[0]} * 131 + size / 2) % (size + 1);
  bool part_found = false;
  for (std::string_view part : {input.substr(0, split), input.substr(split)}) {
    std::string copy(part);
    std::vector<Match> part_matches;
    set.Scan(copy, &part_matches);
    CheckMatches(set, copy, part_matches, input);
    part_found = part_found || !part_matches.empty();
  }
  if (part_found && input.find_first_of("\"\\") == std::string_view::npos) {
    std::string json = R"({"a":")";
    json.append(input.substr(0, split));
    json.append(R"(","b":")");
    json.append(input.substr(split));
    json.append(R"("})");
    if (!set.FindsAny(json)) {
      Fail("a match inside a JSON string is not found in the JSON text", input);
    }
  }
  return 0;
}
