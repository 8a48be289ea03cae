#include "src/eval/response_redactor.h"

#include <algorithm>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"

namespace mcpmw::eval {
namespace {

bool HasSensitiveKey(const JsonValue& v) {
  if (v.is_array()) {
    return std::any_of(v.items().begin(), v.items().end(), HasSensitiveKey);
  }
  return std::any_of(v.members().begin(), v.members().end(), [](const JsonMember& m) {
    return m.key == "ssn" || m.key == "creditCard" || m.key == "apiKey" || HasSensitiveKey(m.value);
  });
}

JsonValue Payload(const JsonValue& upstream) {
  const JsonValue* response = upstream.Find("upstreamResponse");
  if (response == nullptr) {
    return JsonValue::Object();
  }
  if (const JsonValue* result = response->Find("result")) {
    if (result->is_object()) {
      return *result;
    }
    JsonValue wrapped = JsonValue::Object();
    wrapped.Set("raw", *result);
    return wrapped;
  }
  if (const JsonValue* error = response->Find("error"); error != nullptr && error->is_object()) {
    return *error;
  }
  return JsonValue::Object();
}

JsonValue Event(std::string_view rule_id, std::string_view path, std::string_view mode,
                const JsonValue& original, std::string_view replacement) {
  JsonValue event = JsonValue::Object();
  event.Set("ruleId", rule_id);
  event.Set("locationPath", path);
  event.Set("mode", mode);
  event.Set("originalPreview",
            original.is_string() ? original.as_string() : StringifyJson(original));
  event.Set("replacementPreview", replacement);
  return event;
}

}  // namespace

JsonValue RedactResponse(const JsonValue& policy, const JsonValue& upstream) {
  JsonValue payload = Payload(upstream);
  // Built in path order ($.internalNotes < $.secret), which is the prototype's sorted order.
  JsonValue events = JsonValue::Array();
  if (StrOf(policy, "status") == "transform") {
    if (const JsonValue* notes = payload.Find("internalNotes")) {
      events.Append(Event("response-redactor.remove-internalNotes", "$.internalNotes", "drop",
                          *notes, "[removed]"));
      payload.Erase("internalNotes");
    }
    if (JsonValue* secret = payload.Find("secret")) {
      events.Append(
          Event("response-redactor.mask-secret", "$.secret", "mask", *secret, "[redacted]"));
      *secret = "[redacted]";
    }
  }
  const JsonValue* upstream_status = upstream.Find("status");
  const std::string status = !events.items().empty() ? "transform"
                             : upstream_status != nullptr && upstream_status->is_string()
                                 ? upstream_status->as_string()
                                 : "deny";
  const bool sensitive = HasSensitiveKey(payload);
  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(upstream, "decisionId"), "response-redaction", status,
                                   std::to_string(events.items().size())}));
  out.Set("status", status);
  out.Set("responsePayload", std::move(payload));
  out.Set("redactionEvents", std::move(events));
  out.Set("containsSensitiveData", sensitive);
  return out;
}

}  // namespace mcpmw::eval
