#include "src/eval/policy.h"

#include <algorithm>
#include <optional>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"
#include "src/policy/condition.h"

namespace mcpmw::eval {
namespace {

JsonValue Decision(const JsonValue& ctx, std::string_view status, JsonValue applicable,
                   JsonValue patches, const JsonValue* denied_reason) {
  JsonValue out = JsonValue::Object();
  // An absent deniedReasonCode hashes as "none"; a present one as JS String() of it.
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "policy", status,
                                   denied_reason != nullptr ? JsToString(denied_reason) : "none"}));
  out.Set("status", status);
  out.Set("applicableRules", std::move(applicable));
  out.Set("transformPatches", std::move(patches));
  if (denied_reason != nullptr) {
    out.Set("deniedReasonCode", *denied_reason);
  }
  return out;
}

bool Eligible(const JsonValue& rule) {
  const std::string_view stage = StrOf(rule, "stage");
  return stage == "policy" || stage == "request-redaction" || stage == "response-redaction" ||
         stage == "dispatch";
}

// The applicable rules in evaluation order; nullopt where the prototype throws.
std::optional<std::vector<const JsonValue*>> ApplicableRules(const JsonValue& ctx) {
  std::vector<const JsonValue*> rules;
  for (const JsonValue& rule : ItemsOf(ctx, "policyRules")) {
    if (rule.is_object() && Eligible(rule)) {
      rules.push_back(&rule);
    }
  }
  std::stable_sort(rules.begin(), rules.end(), [](const JsonValue* a, const JsonValue* b) {
    const double pa = NumOf(*a, "priority");
    const double pb = NumOf(*b, "priority");
    if (pa != pb) {
      return pa > pb;
    }
    return CompareCodeUnits(StrOf(*a, "ruleId"), StrOf(*b, "ruleId")) < 0;
  });

  const JsonValue* payload = ctx.Find("requestPayload");
  const std::vector<std::string> scopes = StringsOf(ctx, "scopes");
  policy::EvalContext eval;
  eval.tool_name = StrOf(ctx, "normalizedToolName");
  // The server id comes from the tool arguments, as in the seed (bug B2 is kept: the context
  // carries no other server id).
  eval.tool_server = payload != nullptr ? StrOf(*payload, "serverId") : std::string_view();
  eval.scopes = scopes;

  std::vector<const JsonValue*> applicable;
  for (const JsonValue* rule : rules) {
    const JsonValue* condition = rule->Find("conditionDsl");
    if (condition == nullptr || !condition->is_string()) {
      return std::nullopt;
    }
    absl::StatusOr<policy::Condition> compiled =
        policy::Condition::Compile(condition->as_string(), StrOf(*rule, "ruleId"),
                                   policy::ConditionLanguage::kLegacySubstring);
    if (compiled.ok() && compiled->Evaluate(eval)) {
      applicable.push_back(rule);
    }
  }
  return applicable;
}

}  // namespace

JsonValue EvaluatePolicy(const JsonValue& ctx, const JsonValue& auth) {
  if (!IsTrue(auth, "authenticated")) {
    const JsonValue reason = "auth-precondition-failed";
    return Decision(ctx, "deny", JsonValue::Array(), JsonValue::Array(), &reason);
  }
  std::optional<std::vector<const JsonValue*>> applicable = ApplicableRules(ctx);
  if (!applicable) {
    const JsonValue reason = "policy-evaluator-failed";
    return Decision(ctx, "deny", JsonValue::Array(), JsonValue::Array(), &reason);
  }

  JsonValue matches = JsonValue::Array();
  JsonValue patches = JsonValue::Array();
  const JsonValue* first_deny = nullptr;
  bool any_transform = false;
  bool any_observe = false;
  for (const JsonValue* rule : *applicable) {
    JsonValue match = JsonValue::Object();
    for (std::string_view key : {"ruleId", "stage", "status", "reasonCode", "priority"}) {
      CopyIfPresent(match, *rule, key);
    }
    matches.Append(std::move(match));
    const std::string_view status = StrOf(*rule, "status");
    if (status == "deny" && first_deny == nullptr) {
      first_deny = rule;
    } else if (status == "transform") {
      any_transform = true;
      JsonValue value = JsonValue::Object();
      if (const JsonValue* id = rule->Find("ruleId")) {
        value.Set("policyRuleId", *id);
      }
      JsonValue patch = JsonValue::Object();
      patch.Set("path", "$.arguments");
      patch.Set("op", "set");
      patch.Set("value", std::move(value));
      patches.Append(std::move(patch));
    } else if (status == "observe-only") {
      any_observe = true;
    }
  }
  if (first_deny != nullptr) {
    return Decision(ctx, "deny", std::move(matches), std::move(patches),
                    first_deny->Find("reasonCode"));
  }
  const std::string_view status =
      any_transform ? "transform" : (any_observe ? "observe-only" : "allow");
  return Decision(ctx, status, std::move(matches), std::move(patches), nullptr);
}

}  // namespace mcpmw::eval
