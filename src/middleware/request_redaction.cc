#include "src/middleware/request_redaction.h"

#include "absl/strings/str_cat.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {
namespace {

enum class Lookup : uint8_t { kNotAnObject, kAbsent, kFound };

// The member at `path` of `document`, found the way FindMember finds it in the document's text
// (the first member of each name; a step into something that is not an object finds nothing).
Lookup FindParsedMember(simdjson::dom::element document,
                        std::initializer_list<std::string_view> path,
                        simdjson::dom::element* member) {
  simdjson::dom::object obj;
  if (document.get_object().get(obj) != simdjson::SUCCESS) {
    return Lookup::kNotAnObject;
  }
  size_t depth = 0;
  for (std::string_view name : path) {
    ++depth;
    simdjson::dom::element value;
    if (obj.at_key(name).get(value) != simdjson::SUCCESS) {
      return Lookup::kAbsent;
    }
    if (depth == path.size()) {
      *member = value;
      return Lookup::kFound;
    }
    if (value.get_object().get(obj) != simdjson::SUCCESS) {
      return Lookup::kAbsent;
    }
  }
  return Lookup::kAbsent;
}

void RecordEvents(MessageContext& ctx, std::vector<redaction::RedactionEvent>& events,
                  Direction direction, size_t* changes) {
  for (redaction::RedactionEvent& e : events) {
    ctx.redactions.push_back({.direction = direction,
                              .rule_id = std::move(e.rule_id),
                              .pointer = std::move(e.pointer),
                              .action = std::move(e.action)});
  }
  *changes = events.size();
}

}  // namespace

bool DomMatchesRawNames(std::string_view text) { return text.find('\\') == std::string_view::npos; }

bool RedactMember(MessageContext& ctx, const redaction::JsonRedactor& redactor,
                  std::initializer_list<std::string_view> path, Direction direction,
                  size_t* changes, const simdjson::dom::element* document) {
  *changes = 0;
  std::string_view message = ctx.current();
  std::vector<redaction::RedactionEvent> events;
  if (document != nullptr) {
    // The message parsed once for every stage: no second pass to find the member, no second
    // parse of it; its bytes are located only when there is something to splice.
    simdjson::dom::element parsed;
    Lookup found = FindParsedMember(*document, path, &parsed);
    if (found != Lookup::kFound) {
      return found == Lookup::kAbsent;
    }
    std::optional<std::string> redacted = redactor.RedactParsed(parsed, &events, message.size());
    if (!redacted.has_value()) {
      return true;
    }
    absl::StatusOr<std::optional<std::string_view>> member =
        FindMember(message, path, !ctx.rewritten.has_value());
    if (!member.ok() || !member->has_value()) {
      return false;  // not reached: the text parsed whole and names the member as written
    }
    RecordEvents(ctx, events, direction, changes);
    ctx.rewritten = Splice(message, **member, *redacted);
    return true;
  }
  absl::StatusOr<std::optional<std::string_view>> member =
      FindMember(message, path, !ctx.rewritten.has_value());
  if (!member.ok()) {
    return false;
  }
  if (!member->has_value()) {
    return true;
  }
  absl::StatusOr<std::optional<std::string>> redacted = redactor.Redact(**member, &events);
  if (!redacted.ok()) {
    return false;
  }
  if (!redacted->has_value()) {
    return true;
  }
  RecordEvents(ctx, events, direction, changes);
  ctx.rewritten = Splice(message, **member, **redacted);
  return true;
}

bool RequestRedactionStage::RedactArguments(MessageContext& ctx, size_t* changes) {
  // normalize's parse describes the message as it arrived; a policy transform may have
  // rewritten it since.
  const simdjson::dom::element* document = ctx.request_document.has_value() &&
                                                   !ctx.rewritten.has_value() &&
                                                   DomMatchesRawNames(ctx.payload)
                                               ? &*ctx.request_document
                                               : nullptr;
  return RedactMember(ctx, *bundle_.request_redactor, {"params", "arguments"},
                      Direction::kClientToServer, changes, document);
}

Verdict RequestRedactionStage::OnRequest(MessageContext& ctx) {
  if (bundle_.request_redactor == nullptr || !ctx.MethodIs("tools/call")) {
    return Verdict::Continue();
  }
  // Arguments known to be valid JSON (normalize parsed the request whole) that hold nothing any
  // rule could match, decided on their bytes, are forwarded without a walk.
  size_t changes = 0;
  const bool unchanged =
      ctx.request_document.has_value() && bundle_.request_redactor->LeavesUnchanged(ctx.current());
  if (!unchanged && !RedactArguments(ctx, &changes)) {
    return Deny(ctx, name(), kCodeRedactionFailed,
                "The tool arguments are not valid JSON, so they cannot be checked for secrets; "
                "the call was not sent.",
                "redaction-unreadable");
  }
  ctx.decisions.push_back(
      {.stage = name(),
       .status = changes > 0 ? "transform" : "allow",
       .reason_code = changes == 0 ? ReasonCode("request-redaction:0")
                                   : ReasonCode(absl::StrCat("request-redaction:", changes)),
       .routine = changes == 0});
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
