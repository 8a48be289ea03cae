#include "src/eval/assembler.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/common/sha256.h"
#include "src/common/strings.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

// The prototype's catch-path report id (a constant in its code).
constexpr std::string_view kFallbackReportId =
    "3cf96bb647d58b00c60a742ea6d044fb07f3d5802464777b43bedc1417f73848";

bool IsGatingStage(std::string_view stage) {
  return stage == "authenticate" || stage == "policy" || stage == "tool-filter" ||
         stage == "rate-limit" || stage == "request-redaction" || stage == "dispatch";
}

JsonValue Row(std::string_view component, std::string_view stage, JsonValue status,
              std::string reason, JsonValue decision_id) {
  JsonValue row = JsonValue::Object();
  row.Set("componentId", component);
  row.Set("stage", stage);
  row.Set("status", std::move(status));
  row.Set("reasonCode", std::move(reason));
  row.Set("decisionId", std::move(decision_id));
  return row;
}

// JS `(first ?? second) || fallback` over strings: the first present choice wins, and an empty
// one falls to `fallback` without trying the next.
std::string Reason(const JsonValue* first, const JsonValue* second, std::string_view fallback) {
  const JsonValue* chosen = first != nullptr ? first : second;
  if (chosen == nullptr || chosen->is_null() ||
      (chosen->is_string() && chosen->as_string().empty())) {
    return std::string(fallback);
  }
  return JsToString(chosen);
}

const JsonValue* FirstItemMember(const JsonValue& artifact, std::string_view list,
                                 std::string_view key) {
  const std::vector<JsonValue>& items = ItemsOf(artifact, list);
  return items.empty() ? nullptr : items.front().Find(key);
}

// "<prefix>:<first event's ruleId>" or "<prefix>:none".
std::string RedactionReason(const JsonValue& artifact, std::string_view prefix) {
  const std::vector<JsonValue>& events = ItemsOf(artifact, "redactionEvents");
  if (events.empty()) {
    return absl::StrCat(Sv(prefix), ":none");
  }
  return absl::StrCat(Sv(prefix), ":", JsToString(events.front().Find("ruleId")));
}

JsonValue FallbackReport() {
  JsonValue rows = JsonValue::Array();
  const std::string_view table[][3] = {
      {"auth-evaluator", "authenticate", "deny"},
      {"cost-meter", "cost-meter", "observe-only"},
      {"upstream-dispatcher", "dispatch", "deny"},
      {"policy-evaluator", "policy", "deny"},
      {"rate-limit-enforcer", "rate-limit", "deny"},
      {"request-redactor", "request-redaction", "deny"},
      {"response-redactor", "response-redaction", "observe-only"},
      {"tool-visibility-filter", "tool-filter", "deny"},
      {"trace-recorder", "trace", "observe-only"},
  };
  for (const auto& [component, stage, status] : table) {
    std::string reason = stage == "cost-meter"     ? "cost:computed"
                         : stage == "authenticate" ? "auth:unspecified"
                                                   : absl::StrCat(Sv(stage), ":unspecified");
    rows.Append(Row(component, stage, status, std::move(reason), ""));
  }
  JsonValue report = JsonValue::Object();
  report.Set("executionReportId", kFallbackReportId);
  report.Set("invocationId", "");
  report.Set("traceId", "");
  report.Set("finalStatus", "errored");
  report.Set("middlewareDecisions", std::move(rows));
  JsonValue request = JsonValue::Object();
  for (std::string_view key : {"tenantId", "userId", "agentId", "serverId", "toolName"}) {
    request.Set(key, "");
  }
  report.Set("requestSummary", std::move(request));
  JsonValue enforcement = JsonValue::Object();
  enforcement.Set("authPassed", false);
  enforcement.Set("policyStatus", "deny");
  enforcement.Set("rateLimitAllowed", false);
  enforcement.Set("selectedToolAllowed", false);
  report.Set("enforcementSummary", std::move(enforcement));
  JsonValue observability = JsonValue::Object();
  observability.Set("spanCount", 0);
  observability.Set("metricCount", 0);
  report.Set("observability", std::move(observability));
  JsonValue cost = JsonValue::Object();
  cost.Set("totalUsd", 0);
  cost.Set("totalTokens", 0);
  report.Set("cost", std::move(cost));
  JsonValue response = JsonValue::Object();
  response.Set("httpStatusCode", 500);
  response.Set("dispatched", false);
  response.Set("containsSensitiveData", false);
  report.Set("response", std::move(response));
  return report;
}

}  // namespace

JsonValue AssembleReport(const Artifacts& a) {
  for (const JsonValue* artifact :
       {&a.normalized_context, &a.auth, &a.policy, &a.tool_filter, &a.rate_limit,
        &a.redacted_request, &a.upstream, &a.redacted_response, &a.trace, &a.cost}) {
    if (!artifact->is_object()) {
      return FallbackReport();
    }
  }
  const JsonValue& ctx = a.normalized_context;

  std::string tool_reason =
      IsTrue(a.tool_filter, "selectedToolAllowed")
          ? "tool-filter:allowed"
          : Reason(FirstItemMember(a.tool_filter, "blockedTools", "reasonCode"), nullptr,
                   "tool-filter:unspecified");
  const JsonValue rate_default =
      IsTrue(a.rate_limit, "allowed") ? "rate-limit:allowed" : "rate-limit:denied";
  std::string dispatch_reason =
      IsTrue(a.upstream, "dispatched") ? "dispatch:dispatched"
      : !StrOf(a.upstream, "blockedByStage").empty()
          ? absl::StrCat("dispatch:blocked-by-", Sv(StrOf(a.upstream, "blockedByStage")))
          : "dispatch:not-dispatched";

  JsonValue rows = JsonValue::Array();
  rows.Append(Row("auth-evaluator", "authenticate", ValueOf(a.auth, "status"),
                  Reason(a.auth.Find("reasonCode"), nullptr, "auth:unspecified"),
                  ValueOf(a.auth, "decisionId")));
  rows.Append(
      Row("policy-evaluator", "policy", ValueOf(a.policy, "status"),
          Reason(a.policy.Find("deniedReasonCode"),
                 FirstItemMember(a.policy, "applicableRules", "reasonCode"), "policy:unspecified"),
          ValueOf(a.policy, "decisionId")));
  rows.Append(Row("tool-visibility-filter", "tool-filter", ValueOf(a.tool_filter, "status"),
                  std::move(tool_reason), ValueOf(a.tool_filter, "decisionId")));
  rows.Append(
      Row("rate-limit-enforcer", "rate-limit", ValueOf(a.rate_limit, "status"),
          Reason(a.rate_limit.Find("deniedReasonCode"), &rate_default, "rate-limit:unspecified"),
          ValueOf(a.rate_limit, "decisionId")));
  rows.Append(Row("request-redactor", "request-redaction", ValueOf(a.redacted_request, "status"),
                  RedactionReason(a.redacted_request, "request-redaction"),
                  ValueOf(a.redacted_request, "decisionId")));
  rows.Append(Row("upstream-dispatcher", "dispatch", ValueOf(a.upstream, "status"),
                  std::move(dispatch_reason), ValueOf(a.upstream, "decisionId")));
  rows.Append(Row("response-redactor", "response-redaction", ValueOf(a.redacted_response, "status"),
                  RedactionReason(a.redacted_response, "response-redaction"),
                  ValueOf(a.redacted_response, "decisionId")));
  rows.Append(Row("trace-recorder", "trace", "observe-only",
                  Reason(a.trace.Find("exportTarget"), nullptr, "trace:unspecified"),
                  ValueOf(a.trace, "traceId")));
  rows.Append(Row("cost-meter", "cost-meter", "observe-only", "cost:computed",
                  ValueOf(a.cost, "costRecordId")));
  std::stable_sort(rows.items().begin(), rows.items().end(),
                   [](const JsonValue& x, const JsonValue& y) {
                     if (int c = CompareCodeUnits(StrOf(x, "stage"), StrOf(y, "stage")); c != 0) {
                       return c < 0;
                     }
                     return CompareCodeUnits(StrOf(x, "status"), StrOf(y, "status")) < 0;
                   });

  const bool gated = std::any_of(rows.items().begin(), rows.items().end(), [](const JsonValue& r) {
    return IsGatingStage(StrOf(r, "stage")) && StrOf(r, "status") == "deny";
  });
  const std::string_view final_status =
      gated ? "blocked"
      : (StrOf(a.upstream, "status") == "deny" && NumOf(a.upstream, "httpStatusCode") >= 500)
          ? "errored"
          : "served";

  JsonValue request = JsonValue::Object();
  CopyIfPresent(request, ctx, "tenantId");
  CopyIfPresent(request, ctx, "userId");
  CopyIfPresent(request, ctx, "agentId");
  CopyIfPresent(request, a.redacted_request, "serverId");
  const std::string_view tool = StrOf(a.redacted_request, "toolName");
  request.Set("toolName", tool.empty() ? StrOf(ctx, "normalizedToolName") : tool);

  JsonValue enforcement = JsonValue::Object();
  enforcement.Set("authPassed", ValueOf(a.auth, "authenticated"));
  enforcement.Set("policyStatus", ValueOf(a.policy, "status"));
  enforcement.Set("rateLimitAllowed", ValueOf(a.rate_limit, "allowed"));
  enforcement.Set("selectedToolAllowed", ValueOf(a.tool_filter, "selectedToolAllowed"));

  JsonValue observability = JsonValue::Object();
  observability.Set("spanCount", ItemsOf(a.trace, "spans").size());
  observability.Set("metricCount", ItemsOf(a.trace, "metrics").size());

  JsonValue cost = JsonValue::Object();
  cost.Set("totalUsd", ValueOf(a.cost, "totalUsd"));
  const JsonValue* usage = a.cost.Find("usage");
  cost.Set("totalTokens", usage != nullptr ? ValueOf(*usage, "totalTokens") : JsonValue());

  JsonValue response = JsonValue::Object();
  response.Set("httpStatusCode", ValueOf(a.upstream, "httpStatusCode"));
  response.Set("dispatched", ValueOf(a.upstream, "dispatched"));
  response.Set("containsSensitiveData", ValueOf(a.redacted_response, "containsSensitiveData"));

  JsonValue report = JsonValue::Object();
  report.Set("executionReportId",
             Sha256Hex({StrOf(ctx, "invocationId"), StrOf(a.policy, "decisionId"),
                        StrOf(a.rate_limit, "decisionId"), StrOf(a.cost, "costRecordId")}));
  report.Set("invocationId", ValueOf(ctx, "invocationId"));
  report.Set("traceId", ValueOf(ctx, "traceId"));
  report.Set("finalStatus", final_status);
  report.Set("middlewareDecisions", std::move(rows));
  report.Set("requestSummary", std::move(request));
  report.Set("enforcementSummary", std::move(enforcement));
  report.Set("observability", std::move(observability));
  report.Set("cost", std::move(cost));
  report.Set("response", std::move(response));
  return report;
}

}  // namespace mcpmw::eval
