#include "src/eval/pipeline.h"

#include <algorithm>

#include "src/eval/access.h"
#include "src/eval/auth.h"
#include "src/eval/cost.h"
#include "src/eval/dispatcher.h"
#include "src/eval/js_string.h"
#include "src/eval/normalizer.h"
#include "src/eval/policy.h"
#include "src/eval/rate_limit.h"
#include "src/eval/request_redactor.h"
#include "src/eval/response_redactor.h"
#include "src/eval/tool_filter.h"
#include "src/eval/trace.h"

namespace mcpmw::eval {

PipelineResult RunPipeline(const JsonValue& raw) {
  PipelineResult r;
  Artifacts& a = r.artifacts;
  a.normalized_context = Normalize(raw);
  a.auth = EvaluateAuth(a.normalized_context);
  a.policy = EvaluatePolicy(a.normalized_context, a.auth);
  a.tool_filter = FilterTools(a.normalized_context, a.policy);
  a.rate_limit = EnforceRateLimit(a.normalized_context, a.policy);
  a.redacted_request = RedactRequest(a.normalized_context, a.policy, a.tool_filter);
  a.upstream = Dispatch(a.normalized_context, a.auth, a.policy, a.rate_limit, a.redacted_request);
  a.redacted_response = RedactResponse(a.policy, a.upstream);
  a.trace = RecordTrace(a.normalized_context, a.auth, a.policy, a.rate_limit, a.upstream,
                        a.redacted_response);
  a.cost = MeterCost(a.normalized_context, a.upstream);
  r.report = AssembleReport(a);
  r.summary = Summarize(r.report);
  return r;
}

Summary Summarize(const JsonValue& report) {
  Summary s;
  for (const JsonValue& row : ItemsOf(report, "middlewareDecisions")) {
    const std::string_view status = StrOf(row, "status");
    if (status == "deny") {
      ++s.error_count;
    } else if (status == "observe-only" || status == "transform") {
      ++s.warning_count;
    }
    std::string stage(StrOf(row, "stage"));
    if (status != "allow" &&
        std::find(s.categories.begin(), s.categories.end(), stage) == s.categories.end()) {
      s.categories.push_back(std::move(stage));
    }
  }
  std::sort(s.categories.begin(), s.categories.end(),
            [](const std::string& x, const std::string& y) { return CompareCodeUnits(x, y) < 0; });
  s.passed = StrOf(report, "finalStatus") == "served";
  return s;
}

}  // namespace mcpmw::eval
