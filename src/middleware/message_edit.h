// mcpmw middleware: editing one JSON-RPC message without re-serialising it.
//
// Stages that change a message (policy transforms, redaction, tools/list filtering) change one
// member: `params.arguments` or `result` (or one array inside it). These helpers find that
// member's exact bytes in the frame with simdjson On-Demand and splice a replacement in, so
// every other byte of the message goes out exactly as it came in.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

// The bytes of the value at `path` (member names from the top-level object) inside `json`, or
// nullopt when a member on the way is absent or not an object. InvalidArgument when `json` is
// not a JSON object. `json` must be followed by simdjson's padding in memory (a frame in a
// ReadBuffer or a std::string that went through PadForParse) — or pass padded = false and a
// padded copy is made.
absl::StatusOr<std::optional<std::string_view>> FindMember(
    std::string_view json, std::initializer_list<std::string_view> path, bool padded = true);

// `json` with `part` (a view into `json`) replaced by `replacement`.
std::string Splice(std::string_view json, std::string_view part, std::string_view replacement);

// The `data` of an error mcpmw answers with:
//   {"stage":…,"reasonCode":…,"decisionId":…[,"ruleId":…][,"retryAfterMs":N]}
std::string ErrorData(std::string_view stage, std::string_view reason_code,
                      std::string_view decision_id, std::string_view rule_id = {},
                      std::optional<uint64_t> retry_after_ms = std::nullopt);

// How every stage refuses: records `stage`'s deny row (its reason and the decision id
// "<invocation>:<stage>") and returns the Reject verdict whose data names the same decision.
// `stage` must be a stage's name() (the row keeps the view).
Verdict Deny(MessageContext& ctx, std::string_view stage, int code, std::string message,
             std::string_view reason_code, std::string_view rule_id = {},
             std::optional<uint64_t> retry_after_ms = std::nullopt);

}  // namespace mcpmw::middleware
