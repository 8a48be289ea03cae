// mcpmw eval: exchange-assembler (seed §6.11), the pipeline's last stage.
//
// All ten artifacts → MiddlewareExecutionReportV1: one decision row per stage (nine; none for
// the normalizer), the final status, and summaries copied from the artifacts.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// The intermediate artifacts of one evaluation, as produced by the components.
struct Artifacts {
  JsonValue normalized_context;
  JsonValue auth;
  JsonValue policy;
  JsonValue tool_filter;
  JsonValue rate_limit;
  JsonValue redacted_request;
  JsonValue upstream;
  JsonValue redacted_response;
  JsonValue trace;
  JsonValue cost;
};

// Never fails. Decision ids are copied, never recomputed; executionReportId =
// SHA-256(invocationId + policy decisionId + rate-limit decisionId + costRecordId). finalStatus is
// `blocked` when a gating row (authenticate, policy, tool-filter, rate-limit, request-redaction,
// dispatch) denies, else `errored` for a denied dispatch with HTTP >= 500, else `served`. When
// an artifact is not an object, the prototype's constant fallback report (errored, HTTP 500).
JsonValue AssembleReport(const Artifacts& a);

}  // namespace mcpmw::eval
