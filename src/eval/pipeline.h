// mcpmw eval: the prototype's offline pipeline (seed §5), behind `mcpmw eval FILE`.
//
// One RawProxyInvocationV1 document runs through eleven pure stages, each reading the artifacts
// of the stages before it:
//
//   Normalize → EvaluateAuth → EvaluatePolicy → FilterTools → EnforceRateLimit → RedactRequest
//   → Dispatch → RedactResponse → RecordTrace → MeterCost → AssembleReport
//
// No stage short-circuits: a deny propagates by later stages reading earlier statuses, and the
// dispatcher's fixed order (auth, policy, rate limit, request redaction) decides which blocker
// is reported. Nothing is sent anywhere; "served" means "would have been forwarded". Artifacts,
// reason codes and ids match the prototype's (seed-spec §2-§6) field for field, except for these
// deliberate deviations:
//
//   1. Real SHA-256 for the rate-limit decisionId (the prototype's copy was broken, bug B6), and
//      so for every executionReportId: the vectors' seedOutputWithStandardRateLimitSha.
//   2. Legacy policy conditions: an empty needle (no string serverId in the tool arguments, an
//      empty tool name, an empty scope) never matches (bug B1 fixed). The prototype applied
//      every eligible rule to a request without a serverId argument.
//   3. Equal-priority policy rules are ordered by ruleId in UTF-16 code-unit order, not ICU
//      localeCompare (seed §3.3; differs only for mixed case or punctuation in rule ids).
//   4. Malformed input takes a defined path instead of whatever a JS TypeError caused: a rule or
//      catalog list that is not an array of objects gives the normalizer's fallback; a non-number
//      price gives the cost meter's zero record instead of JS coercion ("0.5", null).
//   5. toLowerCase covers ASCII, Latin-1, Latin Extended-A, Greek (no final-sigma rule),
//      Cyrillic, Armenian and fullwidth Latin, not all of Unicode; a description cut at 120
//      UTF-16 units never splits a surrogate pair.
//   6. `mcpmw eval` exits 1 when the report is not served (the prototype always exited 0) and
//      2 for usage errors and unreadable, non-JSON or non-object input (the prototype: 1).
//
// Kept as in the prototype, on purpose (the vectors depend on them): server ids for the tool
// filter and policy come from the tool arguments (B2), rate limiting is stateless (B7), response
// redaction ignores the configured rules (B8), transform patches are never applied (B9), and
// redaction events carry the original value (B10).
#pragma once

#include <string>
#include <vector>

#include "src/eval/assembler.h"
#include "src/eval/json_value.h"

namespace mcpmw::eval {

// What the prototype's tests and CLI derive from a report.
struct Summary {
  int error_count = 0;    // decision rows with status deny
  int warning_count = 0;  // rows with observe-only or transform (trace and cost always count)
  std::vector<std::string> categories;  // distinct stages of non-allow rows, code-unit sorted
  bool passed = false;                  // finalStatus == "served"
};

struct PipelineResult {
  Artifacts artifacts;
  JsonValue report;  // MiddlewareExecutionReportV1
  Summary summary;
};

// Runs the whole pipeline on `raw` (any JSON value; malformed input takes the documented
// fallback paths, so this never fails). Deterministic: the same input gives the same bytes.
PipelineResult RunPipeline(const JsonValue& raw);

// The Summary of a MiddlewareExecutionReportV1.
Summary Summarize(const JsonValue& report);

}  // namespace mcpmw::eval
