#include "src/eval/request_redactor.h"

#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/sha256.h"
#include "src/common/strings.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

JsonValue Result(const JsonValue& ctx, std::string_view status, std::string_view server,
                 JsonValue arguments, JsonValue events) {
  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "request-redaction", status,
                                   std::to_string(events.items().size())}));
  out.Set("status", status);
  out.Set("serverId", server);
  out.Set("toolName", StrOf(ctx, "normalizedToolName"));
  out.Set("arguments", std::move(arguments));
  out.Set("redactionEvents", std::move(events));
  return out;
}

// The arguments' serverId; else the smallest catalog serverId offering the tool; else "".
std::string ResolveServer(const JsonValue& ctx, const JsonValue& payload) {
  if (const JsonValue* id = payload.Find("serverId"); id != nullptr && id->is_string()) {
    return id->as_string();
  }
  const std::string_view tool = StrOf(ctx, "normalizedToolName");
  std::optional<std::string_view> best;
  for (const JsonValue& entry : ItemsOf(ctx, "toolCatalog")) {
    const JsonValue* id = entry.Find("serverId");
    if (StrOf(entry, "toolName") == tool && id != nullptr && id->is_string() &&
        (!best || CompareCodeUnits(id->as_string(), *best) < 0)) {
      best = id->as_string();
    }
  }
  return std::string(best.value_or(""));
}

// An array index as JS property names spell them: "0", or digits without a leading zero.
std::optional<size_t> ArrayIndex(const JsonValue& array, std::string_view segment) {
  if (segment.empty() || segment.size() > 15 || (segment.size() > 1 && segment[0] == '0') ||
      !std::all_of(segment.begin(), segment.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const size_t index = std::stoull(std::string(segment));
  return index < array.items().size() ? std::optional<size_t>(index) : std::nullopt;
}

// The own member `segment` of an object, or element of an array; nullptr when there is none.
JsonValue* Child(JsonValue& v, std::string_view segment) {
  if (v.is_object()) {
    return v.Find(segment);
  }
  if (v.is_array()) {
    if (std::optional<size_t> i = ArrayIndex(v, segment)) {
      return &v.items()[*i];
    }
  }
  return nullptr;
}

std::string Preview(const JsonValue* v) {
  if (v == nullptr) {
    return "undefined";
  }
  if (v->is_array()) {
    return absl::StrCat("[array:", v->items().size(), "]");
  }
  if (v->is_object()) {
    return "[object]";
  }
  return JsToString(v);
}

JsonValue Event(const JsonValue& rule, std::string original, std::string replacement) {
  JsonValue event = JsonValue::Object();
  CopyIfPresent(event, rule, "ruleId");
  event.Set("locationPath", ValueOf(rule, "matchPath"));
  CopyIfPresent(event, rule, "mode");
  event.Set("originalPreview", std::move(original));
  event.Set("replacementPreview", std::move(replacement));
  return event;
}

// Applies one rule to `args`; appends its event when it changed something.
void Apply(const JsonValue& rule, JsonValue& args, JsonValue& events) {
  const std::string& path = rule.Find("matchPath")->as_string();
  std::vector<std::string_view> segments;
  for (absl::string_view segment : absl::StrSplit(Sv(std::string_view(path)), '.')) {
    if (segment.empty()) {
      return;  // "", ".a", "a..b", "a." never match
    }
    segments.push_back(Sv(segment));
  }
  JsonValue* parent = &args;
  for (size_t i = 0; i + 1 < segments.size() && parent != nullptr; ++i) {
    parent = Child(*parent, segments[i]);
  }
  JsonValue* target = parent != nullptr ? Child(*parent, segments.back()) : nullptr;
  if (target == nullptr) {
    return;
  }
  const std::string_view mode = StrOf(rule, "mode");
  if (mode == "mask") {
    const JsonValue* replacement = rule.Find("replacement");
    std::string original = Preview(target);
    if (replacement != nullptr) {
      *target = *replacement;
    } else if (parent->is_object()) {
      parent->Erase(segments.back());  // JS assigns undefined, which JSON output drops
    } else {
      *target = JsonValue();  // undefined in an array is written as null
    }
    events.Append(Event(rule, std::move(original), Preview(replacement)));
  } else if (mode == "drop") {
    std::string original = Preview(target);
    if (parent->is_object()) {
      parent->Erase(segments.back());
    } else {
      parent->items().erase(parent->items().begin() + (target - parent->items().data()));
    }
    events.Append(Event(rule, std::move(original), "[dropped]"));
  } else if (target->is_string()) {
    // `hash`, and by the prototype's fall-through every other mode.
    std::string original = target->as_string();
    *target = Sha256Hex(original);
    events.Append(Event(rule, std::move(original), target->as_string()));
  }
}

}  // namespace

JsonValue RedactRequest(const JsonValue& ctx, const JsonValue& policy,
                        const JsonValue& tool_filter) {
  const JsonValue payload = ValueOf(ctx, "requestPayload");
  const std::string server = ResolveServer(ctx, payload);
  if (StrOf(policy, "status") == "deny" || !IsTrue(tool_filter, "selectedToolAllowed")) {
    return Result(ctx, "deny", server, payload, JsonValue::Array());
  }
  std::vector<const JsonValue*> rules;
  for (const JsonValue& rule : ItemsOf(ctx, "redactionRules")) {
    const JsonValue* path = rule.Find("matchPath");
    if (path == nullptr || !path->is_string()) {
      return Result(ctx, "deny", server, payload, JsonValue::Array());
    }
    rules.push_back(&rule);
  }
  std::stable_sort(rules.begin(), rules.end(), [](const JsonValue* a, const JsonValue* b) {
    if (int c = CompareCodeUnits(StrOf(*a, "ruleId"), StrOf(*b, "ruleId")); c != 0) {
      return c < 0;
    }
    return CompareCodeUnits(StrOf(*a, "matchPath"), StrOf(*b, "matchPath")) < 0;
  });

  JsonValue args = payload;
  JsonValue events = JsonValue::Array();
  for (const JsonValue* rule : rules) {
    Apply(*rule, args, events);
  }
  std::stable_sort(
      events.items().begin(), events.items().end(), [](const JsonValue& a, const JsonValue& b) {
        if (int c = CompareCodeUnits(StrOf(a, "locationPath"), StrOf(b, "locationPath")); c != 0) {
          return c < 0;
        }
        return CompareCodeUnits(StrOf(a, "ruleId"), StrOf(b, "ruleId")) < 0;
      });
  const std::string_view status = events.items().empty() ? "allow" : "transform";
  return Result(ctx, status, server, std::move(args), std::move(events));
}

}  // namespace mcpmw::eval
