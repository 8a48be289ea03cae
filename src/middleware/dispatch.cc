#include "src/middleware/dispatch.h"

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::middleware {

Verdict DispatchStage::OnRequest(MessageContext& ctx) {
  ctx.dispatched = true;
  ctx.request_bytes = ctx.current().size();
  ctx.decisions.push_back(
      {.stage = name(), .status = "allow", .reason_code = "dispatch:dispatched", .routine = true});
  return Verdict::Continue();
}

Verdict DispatchStage::OnResponse(MessageContext& ctx) {
  ctx.upstream_error = ctx.envelope->kind == jsonrpc::MessageKind::kErrorResponse;
  ctx.response_bytes = ctx.payload.size();
  ctx.finished = clock_.Now();
  return Verdict::Continue();
}

void DispatchStage::OnComplete(MessageContext& ctx) {
  if (ctx.finished == TimePoint{}) {
    ctx.finished = clock_.Now();
  }
  if (ctx.dispatched) {
    return;
  }
  ctx.blocked_by = ctx.stopped_by;
  ctx.decisions.push_back(
      {.stage = name(),
       .status = "deny",
       .reason_code = ctx.blocked_by.empty()
                          ? std::string("dispatch:not-dispatched")
                          : absl::StrCat("dispatch:blocked-by-", Sv(ctx.blocked_by))});
}

}  // namespace mcpmw::middleware
