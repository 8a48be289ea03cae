#include "src/middleware/report.h"

#include <charconv>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/trace.h"

namespace mcpmw::middleware {
namespace {

void Key(std::string_view key, std::string* out) {
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

void Str(std::string_view key, std::string_view value, std::string* out) {
  Key(key, out);
  jsonrpc::AppendJsonString(value, out);
  out->push_back(',');
}

}  // namespace

std::string ReportStage::Render(const MessageContext& ctx) const {
  std::string out;
  out.reserve(512);
  out += "{\"v\":1,";
  Str("invocationId", ctx.invocation_id, &out);
  Str("bundleVersion", bundle_.version, &out);
  Str("method", ctx.method, &out);
  if (!ctx.tool_name.empty()) {
    Str("tool", ctx.tool_name, &out);
  }
  Str("server", ctx.server_id, &out);
  out += "\"principal\":{";
  Str("tenant", ctx.principal.tenant, &out);
  Str("user", ctx.principal.user, &out);
  Str("agent", ctx.principal.agent, &out);
  out.back() = '}';
  out += ',';
  bool rejected = ctx.outcome.kind == Verdict::Kind::kReject;
  Str("outcome", ExchangeOutcome(ctx), &out);
  if (rejected) {
    // The deny row of the stage whose verdict took effect (none when mcpmw ended the exchange).
    const Decision* deny = nullptr;
    for (const Decision& d : ctx.decisions) {
      if (!ctx.stopped_by.empty() && d.stage == ctx.stopped_by && d.status == "deny") {
        deny = &d;
      }
    }
    absl::StrAppend(&out, "\"error\":{\"code\":", ctx.outcome.code, ",");
    if (deny != nullptr) {
      Str("stage", deny->stage, &out);
      Str("reasonCode", deny->reason_code, &out);
    }
    out.back() = '}';
    out += ',';
  }
  out += "\"decisions\":[";
  for (const Decision& d : ctx.decisions) {
    out += '{';
    Str("stage", d.stage, &out);
    Str("status", d.status, &out);
    Str("reasonCode", d.reason_code, &out);
    if (d.decision_id.empty()) {
      // "<invocation>:<stage>" without building the string: both parts need no escaping
      // (the session id is hex, the stage names are fixed identifiers).
      absl::StrAppend(&out, "\"decisionId\":\"", ctx.invocation_id, ":", Sv(d.stage), "\",");
    } else {
      Str("decisionId", d.decision_id, &out);
    }
    absl::StrAppend(&out, "\"enforced\":", d.enforced ? "true" : "false", "},");
  }
  if (out.back() == ',') {
    out.pop_back();
  }
  out += "],";
  if (ctx.rate.limited) {
    out += "\"rateLimit\":{";
    Str("ruleId", ctx.rate.rule_id, &out);
    Str("key", ctx.rate.key, &out);
    absl::StrAppend(&out, "\"retryAfterMs\":", ctx.rate.retry_after_ms, "},");
  }
  out += "\"redactions\":[";
  for (const RedactionNote& n : ctx.redactions) {
    out += '{';
    Str("direction", n.direction == Direction::kClientToServer ? "request" : "response", &out);
    Str("ruleId", n.rule_id, &out);
    Str("pointer", n.pointer, &out);
    Str("action", n.action, &out);
    out.back() = '}';
    out += ',';
  }
  if (out.back() == ',') {
    out.pop_back();
  }
  out += "],";
  char usd[32];
  auto [usd_end, ec] = std::to_chars(usd, usd + sizeof(usd), ctx.cost.usd);  // shortest form
  absl::StrAppend(
      &out, "\"cost\":{\"usd\":", absl::string_view(usd, ec == std::errc() ? usd_end - usd : 0),
      ",\"inputTokens\":", ctx.cost.input_tokens, ",\"outputTokens\":", ctx.cost.output_tokens,
      "},");
  int64_t latency_us =
      ctx.finished > ctx.started
          ? std::chrono::duration_cast<std::chrono::microseconds>(ctx.finished - ctx.started)
                .count()
          : 0;
  absl::StrAppend(&out, "\"latencyUs\":", latency_us,
                  ",\"dispatched\":", ctx.dispatched ? "true" : "false", "}");
  return out;
}

void ReportStage::OnComplete(MessageContext& ctx) {
  if (sink_) {
    sink_(Render(ctx));
  }
}

}  // namespace mcpmw::middleware
