// mcpmw middleware: the `request_redaction` stage.
//
// Runs the bundle's request-direction redaction rules (JSON-path rules and content detectors,
// src/middleware/redaction/) over the `params.arguments` of each tools/call, after any policy
// transform, and forwards the rewritten request: the server never sees what was redacted.
// Notes record rule, pointer and action, never the value. Arguments that are not valid JSON are
// refused with -32014 (reason redaction-unreadable) rather than forwarded unredacted.
#pragma once

#include "simdjson.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class RequestRedactionStage final : public Stage {
 public:
  explicit RequestRedactionStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "request_redaction"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kPolicyDecision}); }
  FactSet writes() const override { return Facts({Fact::kRequestRewrite}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  // Runs the redactor over ctx's tool arguments; false when they are not valid JSON.
  bool RedactArguments(MessageContext& ctx, size_t* changes);

  const policy::Bundle& bundle_;
};

// True when `text`, parsed once into a DOM, may stand in for FindMember on it: FindMember matches
// member names as written and the DOM matches them unescaped, which is the same thing exactly
// when the text holds no backslash (no escaped name anywhere).
bool DomMatchesRawNames(std::string_view text);

// Redacts the member at `path` of ctx.current() with `redactor`, recording notes for
// `direction`; the shared body of both redaction stages. Returns false when the member is not
// valid JSON (nothing is changed then). `document`, when not null, is ctx.current() already
// parsed whole (and DomMatchesRawNames(ctx.current()) holds): the member is then read from it
// instead of being located and parsed again, with the same outcome.
bool RedactMember(MessageContext& ctx, const redaction::JsonRedactor& redactor,
                  std::initializer_list<std::string_view> path, Direction direction,
                  size_t* changes, const simdjson::dom::element* document = nullptr);

}  // namespace mcpmw::middleware
