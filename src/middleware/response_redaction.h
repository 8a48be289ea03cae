// mcpmw middleware: the `response_redaction` stage.
//
// Runs the bundle's response-direction redaction rules over the `result` of responses to
// tools/call, resources/read and prompts/get — so `content[].text`, `structuredContent`,
// resource `contents[].text` and prompt messages are all covered — and returns the rewritten
// response: the client never sees what was redacted. An answer whose bytes hold nothing any rule
// could match (JsonRedactor::LeavesUnchanged: no escapes, no detector hit, no member a path rule
// names) is forwarded without being parsed; any other whose result is not valid JSON cannot be
// checked and is replaced by an error for its request (-32014), never passed through.
#pragma once

#include "simdjson.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class ResponseRedactionStage final : public Stage {
 public:
  explicit ResponseRedactionStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "response_redaction"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kUpstreamResult}); }
  FactSet writes() const override { return Facts({Fact::kResponseRewrite}); }
  uint8_t hooks() const override { return kOnResponse; }

  Verdict OnResponse(MessageContext& ctx) override;

 private:
  // Runs the redactor over ctx's result; false when the result is not valid JSON.
  bool RedactResult(MessageContext& ctx, size_t* changes);

  const policy::Bundle& bundle_;
  // Parses each response once, whole; the result is read from that document.
  simdjson::dom::parser parser_;
};

}  // namespace mcpmw::middleware
