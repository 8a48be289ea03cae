#include "src/eval/trace.h"

#include <algorithm>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

std::string_view StatusOf(const JsonValue& artifact) {
  const JsonValue* status = artifact.Find("status");
  return status != nullptr && status->is_string() ? std::string_view(status->as_string())
                                                  : std::string_view("deny");
}

JsonValue Metric(std::string_view key, JsonValue value) {
  JsonValue metric = JsonValue::Object();
  metric.Set("key", key);
  metric.Set("value", std::move(value));
  return metric;
}

}  // namespace

JsonValue RecordTrace(const JsonValue& ctx, const JsonValue& auth, const JsonValue& policy,
                      const JsonValue& rate_limit, const JsonValue& upstream,
                      const JsonValue& response) {
  std::string trace_id(StrOf(ctx, "traceId"));
  if (trace_id.empty()) {
    trace_id = Sha256Hex(StrOf(ctx, "invocationId"));
  }
  struct SpanSpec {
    std::string_view kind;
    std::string_view name;
    std::string_view decision;
  };
  // The cost-meter span reports the dispatcher's status: the prototype had no cost decision yet.
  const SpanSpec specs[] = {
      {"middleware", "authenticate", StatusOf(auth)},
      {"middleware", "policy", StatusOf(policy)},
      {"middleware", "rate-limit", StatusOf(rate_limit)},
      {"upstream", "dispatch", StatusOf(upstream)},
      {"middleware", "response-redaction", StatusOf(response)},
      {"middleware", "cost-meter", StatusOf(upstream)},
  };
  JsonValue spans = JsonValue::Array();
  int ordinal = 0;
  for (const SpanSpec& spec : specs) {
    ++ordinal;
    JsonValue attributes = JsonValue::Object();
    attributes.Set("tenantId", StrOf(ctx, "tenantId"));
    attributes.Set("userId", StrOf(ctx, "userId"));
    attributes.Set("agentId", StrOf(ctx, "agentId"));
    attributes.Set("toolName", StrOf(ctx, "normalizedToolName"));
    attributes.Set("decisionStatus", spec.decision);
    JsonValue span = JsonValue::Object();
    span.Set("spanId", Sha256Hex({trace_id, spec.kind, spec.name, std::to_string(ordinal)}));
    span.Set("spanKind", spec.kind);
    span.Set("spanName", spec.name);
    span.Set("stage", spec.name);
    span.Set("status", spec.decision == "deny" ? "error" : "ok");
    span.Set("attributes", std::move(attributes));
    spans.Append(std::move(span));
  }
  std::stable_sort(
      spans.items().begin(), spans.items().end(), [](const JsonValue& a, const JsonValue& b) {
        if (int c = CompareCodeUnits(StrOf(a, "spanKind"), StrOf(b, "spanKind")); c != 0) {
          return c < 0;
        }
        return CompareCodeUnits(StrOf(a, "spanName"), StrOf(b, "spanName")) < 0;
      });

  JsonValue metrics = JsonValue::Array();
  metrics.Append(Metric("middleware.blocked", StatusOf(upstream) == "deny" ? 1 : 0));
  metrics.Append(Metric("middleware.http_status", NumOf(upstream, "httpStatusCode")));
  metrics.Append(Metric("middleware.redaction_events",
                        static_cast<double>(ItemsOf(response, "redactionEvents").size())));
  metrics.Append(Metric("middleware.upstream_latency_ms", NumOf(upstream, "upstreamLatencyMs")));

  JsonValue out = JsonValue::Object();
  out.Set("traceId", trace_id);
  out.Set("spans", std::move(spans));
  out.Set("metrics", std::move(metrics));
  out.Set("exportTarget", "otel-collector");
  return out;
}

}  // namespace mcpmw::eval
