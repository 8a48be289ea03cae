#include "src/middleware/report.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/trace.h"

namespace mcpmw::middleware {
namespace {

// True when JSON takes `value` as it is: printable ASCII without '"' or '\\'. Nearly every
// value (ids, names, stages, codes, pointers) is.
bool Plain(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  });
}

// `value` as a JSON string followed by `after` (a comma or a closing bracket).
void Quoted(std::string_view value, std::string_view after, std::string* out) {
  if (Plain(value)) {
    out->push_back('"');
    out->append(value);
    out->push_back('"');
  } else {
    jsonrpc::AppendJsonString(value, out);
  }
  out->append(after);
}

// One member "key":"value", (trailing comma). `quoted_key` is the key with its quotes and colon,
// as a literal, so writing it is one append.
void Str(std::string_view quoted_key, std::string_view value, std::string* out) {
  out->append(quoted_key);
  Quoted(value, ",", out);
}

// The rows, comma-separated.
void AppendDecisionRows(const std::vector<Decision>& decisions, std::string* out) {
  const size_t start = out->size();
  for (const Decision& d : decisions) {
    out->push_back('[');
    Quoted(d.stage, ",", out);
    Quoted(d.status, ",", out);
    Quoted(d.reason_code, d.enforced ? "]," : ",\"observe\"],", out);
  }
  if (out->size() > start) {
    out->pop_back();  // the last row's comma
  }
}

}  // namespace

namespace {

int64_t LatencyUs(const MessageContext& ctx) {
  return ctx.finished > ctx.started
             ? std::chrono::duration_cast<std::chrono::microseconds>(ctx.finished - ctx.started)
                   .count()
             : 0;
}

}  // namespace

std::unique_ptr<AuditReport> AuditReport::Take(MessageContext& ctx,
                                               std::string_view bundle_version) {
  return Take(ctx, std::make_shared<const std::string>(bundle_version));
}

std::unique_ptr<AuditReport> AuditReport::Take(
    MessageContext& ctx, const std::shared_ptr<const std::string>& bundle_version) {
  auto r = std::make_unique<AuditReport>();
  r->Fill(ctx, bundle_version);
  return r;
}

namespace {

// `to` = `from`: copied into `to`'s buffer when it is large enough, else `from`'s is moved in.
template <typename T>
void Reuse(T& to, T& from) {
  if (to.capacity() >= from.size()) {
    to.assign(from.begin(), from.end());
  } else {
    to = std::move(from);
  }
}

}  // namespace

void AuditReport::Fill(MessageContext& ctx,
                       const std::shared_ptr<const std::string>& bundle_version) {
  Reuse(invocation_id_, ctx.invocation_id);
  if (bundle_version_ != bundle_version) {
    bundle_version_ = bundle_version;
  }
  Reuse(method_, ctx.method);
  Reuse(tool_, ctx.tool_name);
  server_.assign(ctx.server_id);
  Reuse(principal_.tenant, ctx.principal.tenant);
  Reuse(principal_.user, ctx.principal.user);
  Reuse(principal_.agent, ctx.principal.agent);
  outcome_ = ExchangeOutcome(ctx);
  rejected_ = ctx.outcome.kind == Verdict::Kind::kReject;
  error_code_ = ctx.outcome.code;
  stopped_by_ = ctx.stopped_by;
  Reuse(decisions_, ctx.decisions);
  rate_.limited = ctx.rate.limited;
  rate_.retry_after_ms = ctx.rate.retry_after_ms;
  Reuse(rate_.rule_id, ctx.rate.rule_id);
  Reuse(rate_.key, ctx.rate.key);
  Reuse(redactions_, ctx.redactions);
  cost_ = ctx.cost;
  latency_us_ = LatencyUs(ctx);
  dispatched_ = ctx.dispatched;
}

std::unique_ptr<AuditReport> AuditReport::Copy(const MessageContext& ctx,
                                               std::string_view bundle_version) {
  MessageContext copy;
  copy.invocation_id = ctx.invocation_id;
  copy.method = ctx.method;
  copy.tool_name = ctx.tool_name;
  copy.server_id = ctx.server_id;
  copy.principal.tenant = ctx.principal.tenant;
  copy.principal.user = ctx.principal.user;
  copy.principal.agent = ctx.principal.agent;
  copy.outcome = ctx.outcome;
  copy.dispatched = ctx.dispatched;
  copy.upstream_error = ctx.upstream_error;
  copy.stopped_by = ctx.stopped_by;
  copy.decisions = ctx.decisions;
  copy.rate = ctx.rate;
  copy.redactions = ctx.redactions;
  copy.cost = ctx.cost;
  copy.started = ctx.started;
  copy.finished = ctx.finished;
  return Take(copy, bundle_version);
}

std::string AuditReport::Json() const {
  std::string out;
  AppendTo(&out);
  return out;
}

void AuditReport::AppendTo(std::string* out_ptr) const {
  std::string& out = *out_ptr;
  out.reserve(out.size() + 1024);  // a full bundle's report is ~800 B
  out += "{\"v\":2,";
  Str(R"("invocationId":)", invocation_id_, &out);
  Str(R"("bundleVersion":)", bundle_version_ != nullptr ? std::string_view(*bundle_version_) : "",
      &out);
  Str(R"("method":)", method_, &out);
  if (!tool_.empty()) {
    Str(R"("tool":)", tool_, &out);
  }
  Str(R"("server":)", server_, &out);
  out += "\"principal\":{";
  Str(R"("tenant":)", principal_.tenant, &out);
  Str(R"("user":)", principal_.user, &out);
  Str(R"("agent":)", principal_.agent, &out);
  out.back() = '}';
  out += ',';
  Str(R"("outcome":)", outcome_, &out);
  if (rejected_) {
    // The deny row of the stage whose verdict took effect (none when mcpmw ended the exchange).
    const Decision* deny = nullptr;
    for (const Decision& d : decisions_) {
      if (!stopped_by_.empty() && d.stage == stopped_by_ && d.status == "deny") {
        deny = &d;
      }
    }
    absl::StrAppend(&out, R"("error":{"code":)", error_code_, ",");
    if (deny != nullptr) {
      Str(R"("stage":)", deny->stage, &out);
      Str(R"("reasonCode":)", deny->reason_code, &out);
    }
    out.back() = '}';
    out += ',';
  }
  // Rows are [stage, status, reasonCode] (plus "observe" for a stage in observe mode): a
  // governed call records about six, and field names would be a fifth of the record.
  out += "\"decisions\":[";
  AppendDecisionRows(decisions_, &out);
  out += "],";
  if (rate_.limited) {
    out += "\"rateLimit\":{";
    Str(R"("ruleId":)", rate_.rule_id, &out);
    Str(R"("key":)", rate_.key, &out);
    absl::StrAppend(&out, "\"retryAfterMs\":", rate_.retry_after_ms, "},");
  }
  out += "\"redactions\":[";
  for (const RedactionNote& n : redactions_) {
    out += '{';
    Str(R"("direction":)", n.direction == Direction::kClientToServer ? "request" : "response",
        &out);
    Str(R"("ruleId":)", n.rule_id, &out);
    Str(R"("pointer":)", n.pointer, &out);
    Str(R"("action":)", n.action, &out);
    out.back() = '}';
    out += ',';
  }
  if (out.back() == ',') {
    out.pop_back();
  }
  out += "],";
  // Twelve significant digits: a sum of prices is written 0.0008, not 0.0007999999999999999.
  char usd[32];
  auto [usd_end, ec] =
      std::to_chars(usd, usd + sizeof(usd), cost_.usd, std::chars_format::general, 12);
  absl::StrAppend(
      &out, R"("cost":{"usd":)", absl::string_view(usd, ec == std::errc() ? usd_end - usd : 0),
      ",\"inputTokens\":", cost_.input_tokens, ",\"outputTokens\":", cost_.output_tokens, "},");
  absl::StrAppend(&out, "\"latencyUs\":", latency_us_,
                  ",\"dispatched\":", dispatched_ ? "true" : "false", "}");
}

std::string ReportStage::Render(const MessageContext& ctx) const {
  return AuditReport::Copy(ctx, bundle_.version)->Json();
}

void ReportStage::OnComplete(MessageContext& ctx) {
  if (!sink_) {
    return;
  }
  std::unique_ptr<AuditReport> report = spent_ ? spent_() : nullptr;
  if (report == nullptr) {
    report = std::make_unique<AuditReport>();
  }
  report->Fill(ctx, version_);
  sink_(std::move(report));
}

}  // namespace mcpmw::middleware
