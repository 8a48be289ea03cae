// mcpmw middleware: the `report` stage, last in every chain.
//
// Builds one JSON report per governed exchange (a client request and its answer, or the error
// mcpmw gave in its place) and hands it to a sink — in the sidecar and the gateway, an audit
// producer (src/audit/audit_sink.h), which chains and signs it off the message path. The report
// (README "Audit record"):
//
//   {"v":3,"invocationId":…,"bundleVersion":…,"method":…,
//    "tool":…,"server":…,"principal":{"tenant":…,"user":…,"agent":…},
//    "outcome":"served"|"blocked"|"errored","error":{"code":N,"stage":…,"reasonCode":…}?,
//    "decisions":[stage | [stage,status,reasonCode,"observe"?]…],
//    "rateLimit":{"ruleId":…,"key":…,"retryAfterMs":N}?,
//    "redactions":[{"direction":"request"|"response","ruleId":…,"pointer":…,"action":…}…]?,
//    "cost":{"usd":x,"inputTokens":N,"outputTokens":N},"latencyUs":N,"dispatched":bool}
//
// A decision row is an array, not an object: a governed call records about six, and their field
// names would be a fifth of the record's bytes, which the audit writer hashes and writes. Its
// decision id is "<invocationId>:<stage>" (the `decisionId` a refused client saw), so it is not
// repeated; a fourth element "observe" marks a stage that ran in observe mode. A routine pass
// (Decision::routine: dispatch:dispatched, rate-limit:allowed, request-redaction:0, …) is the
// stage's name alone, since its status and reason say nothing more. `redactions` is left out
// when nothing was redacted. (v1 wrote rows as {"stage","status","reasonCode","enforced":false?}
// objects; v2 wrote every row as an array and always wrote `redactions`.)
// It never holds an argument or result value: what was redacted is named by rule and pointer.
//
// The stage does not render on the message path: OnComplete hands its sink a ReportDraft, which
// an audit producer packs (every value copied, in the order the report writes them) straight
// into its queue, and the audit writer renders the packed bytes on its own thread
// (RenderPackedReport).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "src/middleware/stage.h"

namespace mcpmw::middleware {

// A finished exchange's report, not yet rendered: what the report stage hands its sink. It views
// the exchange, so a sink uses it during the call: packs it, to render later (an audit producer
// renders on its writer thread), or renders it at once.
class ReportDraft {
 public:
  ReportDraft(const MessageContext& ctx, std::string_view bundle_version);

  // How many bytes PackInto writes.
  size_t packed_size() const { return packed_size_; }
  // Writes exactly packed_size() bytes to `out`: every value the report holds, copied (no
  // pointers), so RenderPackedReport can render them after the exchange is gone and on another
  // thread.
  void PackInto(char* out) const;
  // The report's JSON: packed, then rendered.
  std::string Json() const;

 private:
  const MessageContext& ctx_;
  std::string_view bundle_version_;
  size_t packed_size_;
};

// Appends the JSON of a report packed by ReportDraft::PackInto (the whole of `packed`) to `out`,
// on one line. An audit::PackedRenderer.
void RenderPackedReport(std::string_view packed, std::string* out);

using ReportSink = std::function<void(const ReportDraft& draft)>;

class ReportStage final : public Stage {
 public:
  ReportStage(const policy::Bundle& bundle, ReportSink sink)
      : bundle_(bundle), sink_(std::move(sink)) {}

  std::string_view name() const override { return "report"; }
  FactSet reads() const override { return Facts({Fact::kInvocation}); }
  uint8_t hooks() const override { return 0; }

  void OnComplete(MessageContext& ctx) override;

  // The report for `ctx`, as the sink renders what OnComplete sends.
  std::string Render(const MessageContext& ctx) const;

 private:
  const policy::Bundle& bundle_;
  ReportSink sink_;
};

}  // namespace mcpmw::middleware
