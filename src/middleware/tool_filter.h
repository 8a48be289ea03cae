// mcpmw middleware: the `tool_filter` stage — which tools a caller may even see.
//
// A tool is visible to a principal when
//   - its catalog entry (matched by tool name, and by server id when the entry names one) is not
//     `private` and every one of its `scopeRequirements` is among the principal's scopes (the
//     prototype's rules, seed §6.4; `restricted` behaves like `public`), or it has no entry and
//     the bundle says `"uncatalogedTools": "visible"` (the default); and
//   - no `deny` policy rule matches a call of it (evaluated without arguments, so a rule about
//     arguments never hides a tool, it only denies the calls it matches; skipped when the policy
//     stage runs in observe mode for the caller's tenant, which blocks nothing).
// Responses to tools/list are filtered: hidden tools are cut out of `result.tools` (the rest of
// the message, `nextCursor` included, goes out byte for byte, so paging keeps working; a page
// may come back shorter, or empty with a cursor). A tools/call of a hidden tool is refused with
// -32012 (reason tool-private, missing-scope, tool-uncataloged or policy-deny) before it is sent.
#pragma once

#include <string>
#include <vector>

#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class ToolFilterStage final : public Stage {
 public:
  explicit ToolFilterStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "tool_filter"; }
  FactSet reads() const override {
    return Facts({Fact::kInvocation, Fact::kPrincipal, Fact::kPolicyDecision});
  }
  FactSet writes() const override { return Facts({Fact::kToolVisibility, Fact::kResponseRewrite}); }
  uint8_t hooks() const override { return kOnRequest | kOnResponse; }

  Verdict OnRequest(MessageContext& ctx) override;
  Verdict OnResponse(MessageContext& ctx) override;

  // Empty when `tool` is visible to ctx's principal, else the reason code.
  std::string_view HiddenBecause(const MessageContext& ctx, std::string_view tool) const;

 private:
  // The last tools/call decided, and what it decided: the answer depends only on these (the
  // bundle is fixed for the stage's life), and a session calls with one principal throughout.
  struct LastCall {
    bool valid = false;
    std::string tool;
    std::string server;
    Principal principal;
    std::string_view reason;  // a literal
  };
  bool IsLastCall(const MessageContext& ctx) const;

  const policy::Bundle& bundle_;
  LastCall last_;
};

}  // namespace mcpmw::middleware
