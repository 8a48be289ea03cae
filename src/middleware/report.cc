#include "src/middleware/report.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/trace.h"

namespace mcpmw::middleware {
namespace {

// True when JSON takes `value` as it is: printable ASCII without '"' or '\\'. Nearly every
// value (ids, names, stages, codes, pointers) is. No early exit, so the loop vectorises.
bool Plain(std::string_view value) {
  unsigned bad = 0;
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    bad |= static_cast<unsigned>(u < 0x20) | static_cast<unsigned>(u >= 0x80) |
           static_cast<unsigned>(c == '"') | static_cast<unsigned>(c == '\\');
  }
  return bad == 0;
}

// Writes a report into a std::string through a cursor: the string is grown ahead of the
// cursor, each piece is one memcpy, and the string is cut back to the cursor at the end. The
// writer renders one report per message, ~30 pieces each, so the per-append bookkeeping of
// std::string (length, terminator, capacity) was most of its rendering time.
class Cursor {
 public:
  explicit Cursor(std::string* out) : out_(out) { Reserve(out->size(), 1024); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor() { out_->resize(Used()); }

  void Raw(std::string_view text) {
    Ensure(text.size());
    std::memcpy(p_, text.data(), text.size());
    p_ += text.size();
  }
  template <size_t N>
  void Lit(const char (&literal)[N]) {
    Raw(std::string_view(literal, N - 1));
  }
  void Char(char c) {
    Ensure(1);
    *p_++ = c;
  }
  // `value` as a JSON string.
  void Quoted(std::string_view value) {
    if (Plain(value)) {
      Ensure(value.size() + 2);
      *p_++ = '"';
      std::memcpy(p_, value.data(), value.size());
      p_ += value.size();
      *p_++ = '"';
      return;
    }
    const size_t used = Used();
    out_->resize(used);
    jsonrpc::AppendJsonString(value, out_);
    Reserve(out_->size(), 1024);
  }
  // One member "key":"value", (trailing comma); `quoted_key` holds the quotes and the colon.
  template <size_t N>
  void Member(const char (&quoted_key)[N], std::string_view value) {
    Lit(quoted_key);
    Quoted(value);
    Char(',');
  }
  template <typename Int>
  void Number(Int value) {
    Ensure(24);
    p_ = std::to_chars(p_, p_ + 24, value).ptr;
  }
  // Twelve significant digits: a sum of prices is written 0.0008, not 0.0007999999999999999.
  void Usd(double value) {
    Ensure(32);
    auto [end, ec] = std::to_chars(p_, p_ + 32, value, std::chars_format::general, 12);
    if (ec == std::errc()) {
      p_ = end;
    }
  }
  // Replaces the last character written (a trailing comma) with `c`.
  void Replace(char c) { p_[-1] = c; }
  char Last() const { return p_[-1]; }
  void Unwrite() { --p_; }

 private:
  size_t Used() const { return static_cast<size_t>(p_ - out_->data()); }
  void Ensure(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) {
      Reserve(Used(), std::max<size_t>(n, 1024));
    }
  }
  // Sizes the string to `used + more` and puts the cursor at `used`.
  void Reserve(size_t used, size_t more) {
    out_->resize(used + more);
    p_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }

  std::string* out_;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

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
  Cursor out(out_ptr);
  out.Lit("{\"v\":3,");
  out.Member(R"("invocationId":)", invocation_id_);
  out.Member(R"("bundleVersion":)",
             bundle_version_ != nullptr ? std::string_view(*bundle_version_) : "");
  out.Member(R"("method":)", method_);
  if (!tool_.empty()) {
    out.Member(R"("tool":)", tool_);
  }
  out.Member(R"("server":)", server_);
  out.Lit("\"principal\":{");
  out.Member(R"("tenant":)", principal_.tenant);
  out.Member(R"("user":)", principal_.user);
  out.Member(R"("agent":)", principal_.agent);
  out.Replace('}');
  out.Char(',');
  out.Member(R"("outcome":)", outcome_);
  if (rejected_) {
    // The deny row of the stage whose verdict took effect (none when mcpmw ended the exchange).
    const Decision* deny = nullptr;
    for (const Decision& d : decisions_) {
      if (!stopped_by_.empty() && d.stage == stopped_by_ && d.status == "deny") {
        deny = &d;
      }
    }
    out.Lit(R"("error":{"code":)");
    out.Number(error_code_);
    out.Char(',');
    if (deny != nullptr) {
      out.Member(R"("stage":)", deny->stage);
      out.Member(R"("reasonCode":)", deny->reason_code);
    }
    out.Replace('}');
    out.Char(',');
  }
  // Rows are [stage, status, reasonCode] (plus "observe" for a stage in observe mode), and a
  // routine pass is its stage's name alone: a governed call records about six rows, most of
  // them passes, and their text was a third of the record.
  out.Lit("\"decisions\":[");
  for (const Decision& d : decisions_) {
    if (d.routine && d.enforced) {
      out.Quoted(d.stage);
      out.Char(',');
      continue;
    }
    out.Char('[');
    out.Quoted(d.stage);
    out.Char(',');
    out.Quoted(d.status);
    out.Char(',');
    out.Quoted(d.reason_code);
    if (!d.enforced) {
      out.Lit(",\"observe\"");
    }
    out.Lit("],");
  }
  if (out.Last() == ',') {
    out.Unwrite();
  }
  out.Lit("],");
  if (rate_.limited) {
    out.Lit("\"rateLimit\":{");
    out.Member(R"("ruleId":)", rate_.rule_id);
    out.Member(R"("key":)", rate_.key);
    out.Lit("\"retryAfterMs\":");
    out.Number(rate_.retry_after_ms);
    out.Lit("},");
  }
  // What was redacted (never the value); the member is left out when nothing was.
  if (!redactions_.empty()) {
    out.Lit("\"redactions\":[");
    for (const RedactionNote& n : redactions_) {
      out.Char('{');
      out.Member(R"("direction":)",
                 n.direction == Direction::kClientToServer ? "request" : "response");
      out.Member(R"("ruleId":)", n.rule_id);
      out.Member(R"("pointer":)", n.pointer);
      out.Member(R"("action":)", n.action);
      out.Replace('}');
      out.Char(',');
    }
    out.Replace(']');
    out.Char(',');
  }
  out.Lit(R"("cost":{"usd":)");
  out.Usd(cost_.usd);
  out.Lit(R"(,"inputTokens":)");
  out.Number(cost_.input_tokens);
  out.Lit(R"(,"outputTokens":)");
  out.Number(cost_.output_tokens);
  out.Lit(R"(},"latencyUs":)");
  out.Number(latency_us_);
  out.Raw(dispatched_ ? R"(,"dispatched":true})" : R"(,"dispatched":false})");
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
