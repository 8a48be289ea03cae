// mcpmw middleware: the `policy` stage.
//
// Evaluates the bundle's rules (compiled once per bundle, src/policy/condition.h) against each
// client request, in the bundle's order (priority descending, then rule id). The outcome follows
// the prototype's precedence (seed §6.3 step 6): any matching `deny` rule denies — the first one
// names the reason — else any `transform` rule transforms, else any `observe-only` rule records,
// else allow. A higher-priority `allow` never overrides a `deny`.
//
//   deny       the request is answered with -32011 and never reaches the server; data carries
//              stage, reasonCode, decisionId and ruleId.
//   transform  every matching transform rule's patches are applied, in rule order, to
//              `params.arguments` (set creates missing objects on the way; remove of an absent
//              member is a no-op); the rewritten request is what the server receives.
//   observe-only / allow   recorded, nothing changes.
//
// Conditions see method, tool.name, tool.server (the session's server id), the principal, env
// (the tenant's environment: the bundle's identity has none, so env is "") and args.<path>: the
// arguments of a tools/call, read from the document normalize parsed (ctx.request_document).
#pragma once

#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "simdjson.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class PolicyStage final : public Stage {
 public:
  explicit PolicyStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "policy"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kPrincipal}); }
  FactSet writes() const override { return Facts({Fact::kPolicyDecision, Fact::kRequestRewrite}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  const policy::Bundle& bundle_;
};

// What a condition sees of a request for `tool_name` via `method` by ctx's principal on ctx's
// server (no arguments; the caller adds them when it has them).
policy::EvalContext ConditionContext(const MessageContext& ctx, std::string_view method,
                                     std::string_view tool_name);

// `arguments` (a JSON value) with `patches` applied in order. InvalidArgument when `arguments`
// is not JSON.
absl::StatusOr<std::string> ApplyPatches(std::string_view arguments,
                                         std::span<const policy::ArgPatch> patches);

}  // namespace mcpmw::middleware
