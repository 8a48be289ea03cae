#include "src/middleware/response_redaction.h"

#include "absl/strings/str_cat.h"
#include "src/middleware/message_edit.h"
#include "src/middleware/request_redaction.h"

namespace mcpmw::middleware {

Verdict ResponseRedactionStage::OnResponse(MessageContext& ctx) {
  if (bundle_.response_redactor == nullptr ||
      ctx.envelope->kind != jsonrpc::MessageKind::kResponse ||
      (ctx.method != "tools/call" && ctx.method != "resources/read" &&
       ctx.method != "prompts/get")) {
    return Verdict::Continue();
  }
  size_t changes = 0;
  if (!RedactMember(ctx, *bundle_.response_redactor, {"result"}, Direction::kServerToClient,
                    &changes)) {
    return Deny(ctx, name(), kCodeRedactionFailed,
                "The server's answer is not valid JSON, so it cannot be checked for secrets; it "
                "was withheld.",
                "redaction-unreadable");
  }
  ctx.decisions.push_back({.stage = name(),
                           .status = changes > 0 ? "transform" : "allow",
                           .reason_code = absl::StrCat("response-redaction:", changes)});
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
