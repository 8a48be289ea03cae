// mcpmw middleware: the `report` stage, last in every chain.
//
// Builds one JSON report per governed exchange (a client request and its answer, or the error
// mcpmw gave in its place) and hands it to a sink — in the sidecar and the gateway, an audit
// producer (src/audit/audit_sink.h), which chains and signs it off the message path. The report
// (README "Audit record"):
//
//   {"v":1,"invocationId":…,"bundleVersion":…,"method":…,
//    "tool":…,"server":…,"principal":{"tenant":…,"user":…,"agent":…},
//    "outcome":"served"|"blocked"|"errored","error":{"code":N,"stage":…,"reasonCode":…}?,
//    "decisions":[{"stage":…,"status":…,"reasonCode":…,"decisionId":…,"enforced":bool}…],
//    "rateLimit":{"ruleId":…,"key":…,"retryAfterMs":N}?,
//    "redactions":[{"direction":"request"|"response","ruleId":…,"pointer":…,"action":…}…],
//    "cost":{"usd":x,"inputTokens":N,"outputTokens":N},"latencyUs":N,"dispatched":bool}
//
// It never holds an argument or result value: what was redacted is named by rule and pointer.
#pragma once

#include <functional>
#include <string>

#include "src/middleware/stage.h"

namespace mcpmw::middleware {

using ReportSink = std::function<void(std::string report_json)>;

class ReportStage final : public Stage {
 public:
  ReportStage(const policy::Bundle& bundle, ReportSink sink)
      : bundle_(bundle), sink_(std::move(sink)) {}

  std::string_view name() const override { return "report"; }
  FactSet reads() const override { return Facts({Fact::kInvocation}); }

  void OnComplete(MessageContext& ctx) override;

  // The report for `ctx`, as OnComplete sends it.
  std::string Render(const MessageContext& ctx) const;

 private:
  const policy::Bundle& bundle_;
  ReportSink sink_;
};

}  // namespace mcpmw::middleware
