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

// The packed form of a report (ReportDraft::PackInto, RenderPackedReport): its values in the
// order the JSON writes them, each string as a 4-byte length and its bytes, numbers as their
// native bytes. Packing is a run of copies into memory the packer only writes (an audit queue
// slot the writer read last), and rendering reads it front to back.
//
//   invocationId bundleVersion method tool server tenant user agent outcome   (strings)
//   u8 rejected [i32 code, u8 has_deny [stage reasonCode]]
//   u32 rows, each: u8 flags (kBareRow | kObserveRow) stage [status reasonCode]
//   u8 limited [ruleId key u64 retryAfterMs]
//   u32 redactions, each: u8 direction ruleId pointer action
//   f64 usd, u64 inputTokens, u64 outputTokens, i64 latencyUs, u8 dispatched
namespace {

constexpr uint8_t kBareRow = 1;     // a routine pass in enforce mode: written as its stage alone
constexpr uint8_t kObserveRow = 2;  // the stage ran in observe mode

int64_t LatencyUs(const MessageContext& ctx) {
  return ctx.finished > ctx.started
             ? std::chrono::duration_cast<std::chrono::microseconds>(ctx.finished - ctx.started)
                   .count()
             : 0;
}

// Counts the bytes a report packs to.
class SizeCounter {
 public:
  void U8(uint8_t /*v*/) { size_ += 1; }
  void U32(uint32_t /*v*/) { size_ += 4; }
  void U64(uint64_t /*v*/) { size_ += 8; }
  void F64(double /*v*/) { size_ += 8; }
  void Str(std::string_view v) { size_ += 4 + v.size(); }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

// Writes them.
class Packer {
 public:
  explicit Packer(char* out) : p_(out) {}
  void U8(uint8_t v) { *p_++ = static_cast<char>(v); }
  void U32(uint32_t v) { Put(&v, sizeof(v)); }
  void U64(uint64_t v) { Put(&v, sizeof(v)); }
  void F64(double v) { Put(&v, sizeof(v)); }
  void Str(std::string_view v) {
    U32(static_cast<uint32_t>(v.size()));
    Put(v.data(), v.size());
  }

 private:
  void Put(const void* bytes, size_t n) {
    if (n > 0) {  // an empty view's data may be null, which memcpy must not be given
      std::memcpy(p_, bytes, n);
      p_ += n;
    }
  }
  char* p_;
};

// Reads them back. Reading past the end (a packing bug) yields zeros and empty strings, so the
// report stays valid JSON.
class Unpacker {
 public:
  explicit Unpacker(std::string_view packed)
      : p_(packed.data()), end_(packed.data() + packed.size()) {}
  uint8_t U8() { return Get<uint8_t>(); }
  uint32_t U32() { return Get<uint32_t>(); }
  uint64_t U64() { return Get<uint64_t>(); }
  double F64() { return Get<double>(); }
  std::string_view Str() {
    size_t n = U32();
    if (static_cast<size_t>(end_ - p_) < n) {
      p_ = end_;
      return "";  // not a null view: it is copied with memcpy
    }
    std::string_view v(p_, n);
    p_ += n;
    return v;
  }

 private:
  template <typename T>
  T Get() {
    T v{};
    if (static_cast<size_t>(end_ - p_) < sizeof(T)) {
      p_ = end_;
      return v;
    }
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  const char* p_;
  const char* end_;
};

// Packs (Out = Packer) or sizes (Out = SizeCounter) what the report for `ctx` says.
template <typename Out>
void Pack(const MessageContext& ctx, std::string_view bundle_version, Out& out) {
  out.Str(ctx.invocation_id);
  out.Str(bundle_version);
  out.Str(ctx.method);
  out.Str(ctx.tool_name);
  out.Str(ctx.server_id);
  out.Str(ctx.principal.tenant);
  out.Str(ctx.principal.user);
  out.Str(ctx.principal.agent);
  out.Str(ExchangeOutcome(ctx));
  const bool rejected = ctx.outcome.kind == Verdict::Kind::kReject;
  out.U8(rejected ? 1 : 0);
  if (rejected) {
    out.U32(static_cast<uint32_t>(ctx.outcome.code));
    // The deny row of the stage whose verdict took effect (none when mcpmw ended the exchange).
    const Decision* deny = nullptr;
    for (const Decision& d : ctx.decisions) {
      if (!ctx.stopped_by.empty() && d.stage == ctx.stopped_by && d.status == "deny") {
        deny = &d;
      }
    }
    out.U8(deny != nullptr ? 1 : 0);
    if (deny != nullptr) {
      out.Str(deny->stage);
      out.Str(deny->reason_code);
    }
  }
  out.U32(static_cast<uint32_t>(ctx.decisions.size()));
  for (const Decision& d : ctx.decisions) {
    const bool bare = d.routine && d.enforced;
    out.U8(static_cast<uint8_t>((bare ? kBareRow : 0) | (d.enforced ? 0 : kObserveRow)));
    out.Str(d.stage);
    if (!bare) {
      out.Str(d.status);
      out.Str(d.reason_code);
    }
  }
  out.U8(ctx.rate.limited ? 1 : 0);
  if (ctx.rate.limited) {
    out.Str(ctx.rate.rule_id);
    out.Str(ctx.rate.key);
    out.U64(ctx.rate.retry_after_ms);
  }
  out.U32(static_cast<uint32_t>(ctx.redactions.size()));
  for (const RedactionNote& n : ctx.redactions) {
    out.U8(n.direction == Direction::kClientToServer ? 0 : 1);
    out.Str(n.rule_id);
    out.Str(n.pointer);
    out.Str(n.action);
  }
  out.F64(ctx.cost.usd);
  out.U64(ctx.cost.input_tokens);
  out.U64(ctx.cost.output_tokens);
  out.U64(static_cast<uint64_t>(LatencyUs(ctx)));
  out.U8(ctx.dispatched ? 1 : 0);
}

size_t PackedSize(const MessageContext& ctx, std::string_view bundle_version) {
  SizeCounter counter;
  Pack(ctx, bundle_version, counter);
  return counter.size();
}

}  // namespace

ReportDraft::ReportDraft(const MessageContext& ctx, std::string_view bundle_version)
    : ctx_(ctx), bundle_version_(bundle_version), packed_size_(PackedSize(ctx, bundle_version)) {}

void ReportDraft::PackInto(char* out) const {
  Packer packer(out);
  Pack(ctx_, bundle_version_, packer);
}

std::string ReportDraft::Json() const {
  std::string packed(packed_size_, '\0');
  PackInto(packed.data());
  std::string out;
  RenderPackedReport(packed, &out);
  return out;
}

void RenderPackedReport(std::string_view packed, std::string* out_ptr) {
  Unpacker in(packed);
  Cursor out(out_ptr);
  out.Lit("{\"v\":3,");
  out.Member(R"("invocationId":)", in.Str());
  out.Member(R"("bundleVersion":)", in.Str());
  out.Member(R"("method":)", in.Str());
  if (std::string_view tool = in.Str(); !tool.empty()) {
    out.Member(R"("tool":)", tool);
  }
  out.Member(R"("server":)", in.Str());
  out.Lit("\"principal\":{");
  out.Member(R"("tenant":)", in.Str());
  out.Member(R"("user":)", in.Str());
  out.Member(R"("agent":)", in.Str());
  out.Replace('}');
  out.Char(',');
  out.Member(R"("outcome":)", in.Str());
  if (in.U8() != 0) {
    out.Lit(R"("error":{"code":)");
    out.Number(static_cast<int32_t>(in.U32()));
    out.Char(',');
    if (in.U8() != 0) {
      out.Member(R"("stage":)", in.Str());
      out.Member(R"("reasonCode":)", in.Str());
    }
    out.Replace('}');
    out.Char(',');
  }
  // Rows are [stage, status, reasonCode] (plus "observe" for a stage in observe mode), and a
  // routine pass is its stage's name alone: a governed call records about six rows, most of
  // them passes, and their text was a third of the record.
  out.Lit("\"decisions\":[");
  const uint32_t rows = in.U32();
  for (uint32_t i = 0; i < rows; ++i) {
    const uint8_t flags = in.U8();
    if ((flags & kBareRow) != 0) {
      out.Quoted(in.Str());
      out.Char(',');
      continue;
    }
    out.Char('[');
    out.Quoted(in.Str());
    out.Char(',');
    out.Quoted(in.Str());
    out.Char(',');
    out.Quoted(in.Str());
    if ((flags & kObserveRow) != 0) {
      out.Lit(",\"observe\"");
    }
    out.Lit("],");
  }
  if (out.Last() == ',') {
    out.Unwrite();
  }
  out.Lit("],");
  if (in.U8() != 0) {
    out.Lit("\"rateLimit\":{");
    out.Member(R"("ruleId":)", in.Str());
    out.Member(R"("key":)", in.Str());
    out.Lit("\"retryAfterMs\":");
    out.Number(in.U64());
    out.Lit("},");
  }
  // What was redacted (never the value); the member is left out when nothing was.
  if (const uint32_t notes = in.U32(); notes > 0) {
    out.Lit("\"redactions\":[");
    for (uint32_t i = 0; i < notes; ++i) {
      out.Char('{');
      out.Member(R"("direction":)", in.U8() == 0 ? "request" : "response");
      out.Member(R"("ruleId":)", in.Str());
      out.Member(R"("pointer":)", in.Str());
      out.Member(R"("action":)", in.Str());
      out.Replace('}');
      out.Char(',');
    }
    out.Replace(']');
    out.Char(',');
  }
  out.Lit(R"("cost":{"usd":)");
  out.Usd(in.F64());
  out.Lit(R"(,"inputTokens":)");
  out.Number(in.U64());
  out.Lit(R"(,"outputTokens":)");
  out.Number(in.U64());
  out.Lit(R"(},"latencyUs":)");
  out.Number(static_cast<int64_t>(in.U64()));
  out.Raw(in.U8() != 0 ? R"(,"dispatched":true})" : R"(,"dispatched":false})");
}

std::string ReportStage::Render(const MessageContext& ctx) const {
  return ReportDraft(ctx, bundle_.version).Json();
}

void ReportStage::OnComplete(MessageContext& ctx) {
  if (sink_) {
    sink_(ReportDraft(ctx, bundle_.version));
  }
}

}  // namespace mcpmw::middleware
