// mcpmw eval: cost-meter (seed §6.10), after the trace recorder.
//
// (ctx, UpstreamExecutionResultV1) → CostMeteringRecordV1: a base fee plus input and output
// tokens at the configured prices. (The prototype also passed the redacted response, unused.)
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. Tokens are floor(estimate) when positive, else 0; output tokens are 0 when the
// dispatcher denied. Subtotals are plain IEEE products (30 × 0.00004 = 0.0012000000000000001);
// totalUsd is their left-to-right sum rounded by RoundHalfEven4. costRecordId =
// SHA-256(invocationId + canonicalJson(lineItems) + totalUsd.toFixed(4)). Pricing that is
// missing or has a non-number price gives the prototype's fallback record: three zero line
// items, empty ids, total 0.
JsonValue MeterCost(const JsonValue& ctx, const JsonValue& upstream);

// The prototype's currency rounding: half-even at 4 decimals, where a fractional part within
// 1e-12·max(1, |x·10⁴|) of one half counts as a tie. RoundHalfEven4(0.00025) == 0.0002,
// RoundHalfEven4(2.00015) == 2.0002, RoundHalfEven4(-0.00005) == 0.
double RoundHalfEven4(double x);

}  // namespace mcpmw::eval
