// mcpmw middleware: the `request_redaction` stage.
//
// Runs the bundle's request-direction redaction rules (JSON-path rules and content detectors,
// src/middleware/redaction/) over the `params.arguments` of each tools/call, after any policy
// transform, and forwards the rewritten request: the server never sees what was redacted.
// Notes record rule, pointer and action, never the value. Arguments that are not valid JSON are
// refused with -32014 (reason redaction-unreadable) rather than forwarded unredacted.
#pragma once

#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class RequestRedactionStage final : public Stage {
 public:
  explicit RequestRedactionStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "request_redaction"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kPolicyDecision}); }
  FactSet writes() const override { return Facts({Fact::kRequestRewrite}); }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  const policy::Bundle& bundle_;
};

// Redacts the member at `path` of ctx.current() with `redactor`, recording notes for
// `direction`; the shared body of both redaction stages. Returns false when the member is not
// valid JSON (nothing is changed then).
bool RedactMember(MessageContext& ctx, const redaction::JsonRedactor& redactor,
                  std::initializer_list<std::string_view> path, Direction direction,
                  size_t* changes);

}  // namespace mcpmw::middleware
