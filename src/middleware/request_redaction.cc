#include "src/middleware/request_redaction.h"

#include "absl/strings/str_cat.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {

bool RedactMember(MessageContext& ctx, const redaction::JsonRedactor& redactor,
                  std::initializer_list<std::string_view> path, Direction direction,
                  size_t* changes) {
  *changes = 0;
  std::string_view message = ctx.current();
  absl::StatusOr<std::optional<std::string_view>> member =
      FindMember(message, path, !ctx.rewritten.has_value());
  if (!member.ok()) {
    return false;
  }
  if (!member->has_value()) {
    return true;
  }
  std::vector<redaction::RedactionEvent> events;
  absl::StatusOr<std::optional<std::string>> redacted = redactor.Redact(**member, &events);
  if (!redacted.ok()) {
    return false;
  }
  if (!redacted->has_value()) {
    return true;
  }
  for (redaction::RedactionEvent& e : events) {
    ctx.redactions.push_back({.direction = direction,
                              .rule_id = std::move(e.rule_id),
                              .pointer = std::move(e.pointer),
                              .action = std::move(e.action)});
  }
  *changes = events.size();
  ctx.rewritten = Splice(message, **member, **redacted);
  return true;
}

Verdict RequestRedactionStage::OnRequest(MessageContext& ctx) {
  if (bundle_.request_redactor == nullptr || ctx.method != "tools/call") {
    return Verdict::Continue();
  }
  size_t changes = 0;
  if (!RedactMember(ctx, *bundle_.request_redactor, {"params", "arguments"},
                    Direction::kClientToServer, &changes)) {
    return Deny(ctx, name(), kCodeRedactionFailed,
                "The tool arguments are not valid JSON, so they cannot be checked for secrets; "
                "the call was not sent.",
                "redaction-unreadable");
  }
  ctx.decisions.push_back({.stage = name(),
                           .status = changes > 0 ? "transform" : "allow",
                           .reason_code = absl::StrCat("request-redaction:", changes)});
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
