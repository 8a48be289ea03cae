#include "src/middleware/normalize.h"

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {

Verdict NormalizeStage::OnRequest(MessageContext& ctx) {
  ctx.invocation_id = absl::StrCat(session_id_, "-", (*next_sequence_)++);
  ctx.method.assign(ctx.envelope->method);
  ctx.tool_name.assign(ctx.envelope->tool_name);
  if (ctx.envelope->kind == jsonrpc::MessageKind::kRequest && ctx.method == "tools/call" &&
      ctx.tool_name.empty()) {
    std::string id = ctx.DecisionId("normalize");
    ctx.decisions.push_back(
        {.stage = name(), .status = "deny", .reason_code = "invalid-tool-call", .decision_id = id});
    return Verdict::Reject(jsonrpc::kInvalidParams,
                           "tools/call needs params.name, the name of the tool to call.",
                           ErrorData("normalize", "invalid-tool-call", id));
  }
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
