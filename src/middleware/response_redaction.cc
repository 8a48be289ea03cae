#include "src/middleware/response_redaction.h"

#include "absl/strings/str_cat.h"
#include "src/middleware/message_edit.h"
#include "src/middleware/request_redaction.h"

namespace mcpmw::middleware {

bool ResponseRedactionStage::RedactResult(MessageContext& ctx, size_t* changes) {
  // One parse of the whole (padded) response stands in for finding `result` and parsing it
  // again. A response that does not parse whole takes the other path, which reads no further
  // than `result` and so decides exactly as before.
  simdjson::dom::element parsed;
  const simdjson::dom::element* document = nullptr;
  if (!ctx.rewritten.has_value() && DomMatchesRawNames(ctx.payload) &&
      parser_.parse(ctx.payload.data(), ctx.payload.size(), false).get(parsed) ==
          simdjson::SUCCESS) {
    document = &parsed;
  }
  return RedactMember(ctx, *bundle_.response_redactor, {"result"}, Direction::kServerToClient,
                      changes, document);
}

Verdict ResponseRedactionStage::OnResponse(MessageContext& ctx) {
  if (bundle_.response_redactor == nullptr ||
      ctx.envelope->kind != jsonrpc::MessageKind::kResponse ||
      (!ctx.MethodIs("tools/call") && !ctx.MethodIs("resources/read") &&
       !ctx.MethodIs("prompts/get"))) {
    return Verdict::Continue();
  }
  // An answer with nothing any rule could match (decided on its bytes, without parsing it) is
  // forwarded as it is; anything else is parsed and walked.
  size_t changes = 0;
  if (!bundle_.response_redactor->LeavesUnchanged(ctx.current()) && !RedactResult(ctx, &changes)) {
    return Deny(ctx, name(), kCodeRedactionFailed,
                "The server's answer is not valid JSON, so it cannot be checked for secrets; it "
                "was withheld.",
                "redaction-unreadable");
  }
  ctx.decisions.push_back(
      {.stage = name(),
       .status = changes > 0 ? "transform" : "allow",
       .reason_code = changes == 0 ? ReasonCode("response-redaction:0")
                                   : ReasonCode(absl::StrCat("response-redaction:", changes)),
       .routine = changes == 0});
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
