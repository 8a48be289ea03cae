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
// The stage does not render on the message path: OnComplete moves what the report says out of
// the finished exchange into an AuditReport and hands that over; the audit writer renders it on
// its own thread (src/common/deferred_json.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/deferred_json.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

// What one report says, owned (nothing points into the exchange, the message or the bundle), so
// it can be rendered after the exchange is gone and on another thread.
class AuditReport final : public DeferredJson {
 public:
  // Moves the strings and rows out of `ctx` (the exchange is over: OnComplete of the last stage).
  static std::unique_ptr<AuditReport> Take(MessageContext& ctx, std::string_view bundle_version);
  // As Take, sharing the bundle version text instead of copying it per report.
  static std::unique_ptr<AuditReport> Take(
      MessageContext& ctx, const std::shared_ptr<const std::string>& bundle_version);
  // Copies instead, leaving `ctx` as it was.
  static std::unique_ptr<AuditReport> Copy(const MessageContext& ctx,
                                           std::string_view bundle_version);

  // Makes this report say what `ctx` says, as Take would, reusing this report's buffers where
  // they are large enough (a spent report handed back by the audit writer) and moving the
  // exchange's otherwise.
  void Fill(MessageContext& ctx, const std::shared_ptr<const std::string>& bundle_version);

  void AppendTo(std::string* out) const override;
  std::string Json() const;

 private:
  std::string invocation_id_;
  std::shared_ptr<const std::string> bundle_version_;  // set by Take
  std::string method_;
  std::string tool_;
  std::string server_;
  Principal principal_;
  std::string_view outcome_;  // a literal: served | blocked | errored
  bool rejected_ = false;
  int error_code_ = 0;
  std::string_view stopped_by_;  // a stage name (literal)
  std::vector<Decision> decisions_;
  RateOutcome rate_;
  std::vector<RedactionNote> redactions_;
  CostRecord cost_;
  int64_t latency_us_ = 0;
  bool dispatched_ = false;
};

using ReportSink = std::function<void(std::unique_ptr<AuditReport> report)>;
// A report the sink has finished with, to fill again instead of allocating one; null when it
// has none.
using SpentReports = std::function<std::unique_ptr<AuditReport>()>;

class ReportStage final : public Stage {
 public:
  ReportStage(const policy::Bundle& bundle, ReportSink sink, SpentReports spent = nullptr)
      : bundle_(bundle),
        sink_(std::move(sink)),
        spent_(std::move(spent)),
        version_(std::make_shared<const std::string>(bundle.version)) {}

  std::string_view name() const override { return "report"; }
  FactSet reads() const override { return Facts({Fact::kInvocation}); }
  uint8_t hooks() const override { return 0; }

  void OnComplete(MessageContext& ctx) override;

  // The report for `ctx`, as the sink renders what OnComplete sends.
  std::string Render(const MessageContext& ctx) const;

 private:
  const policy::Bundle& bundle_;
  ReportSink sink_;
  SpentReports spent_;
  std::shared_ptr<const std::string> version_;  // bundle_.version, shared by every report
};

}  // namespace mcpmw::middleware
