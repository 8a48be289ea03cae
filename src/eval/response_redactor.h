// mcpmw eval: response-redactor (seed §6.8), after dispatch.
//
// (PolicyEvaluationV1, UpstreamExecutionResultV1) → RedactedResponseV1. As in the prototype the
// configured redaction rules are not used: only when policy says `transform` are a top-level
// `internalNotes` removed and a top-level `secret` masked (bug B8, kept).
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. responsePayload is a shallow copy of the upstream result (a non-object result is
// wrapped as {raw: value}), else of its error, else {}. status is `transform` when something was
// redacted, else the dispatcher's status (a missing one reads as deny). containsSensitiveData is
// true when a key named ssn, creditCard or apiKey remains at any depth.
JsonValue RedactResponse(const JsonValue& policy, const JsonValue& upstream);

}  // namespace mcpmw::eval
