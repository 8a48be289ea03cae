#include "src/middleware/tool_filter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/middleware/message_edit.h"
#include "src/middleware/policy.h"

namespace mcpmw::middleware {

std::string_view ToolFilterStage::HiddenBecause(const MessageContext& ctx,
                                                std::string_view tool) const {
  const policy::ToolEntry* entry = nullptr;
  for (const policy::ToolEntry& e : bundle_.tool_catalog) {
    if (e.tool_name == tool && (e.server_id.empty() || e.server_id == ctx.server_id)) {
      entry = &e;
      break;
    }
  }
  if (entry == nullptr) {
    if (bundle_.hide_uncataloged_tools) {
      return "tool-uncataloged";
    }
  } else {
    if (entry->visibility == policy::Visibility::kPrivate) {
      return "tool-private";
    }
    for (const std::string& required : entry->scope_requirements) {
      if (!std::binary_search(ctx.principal.scopes.begin(), ctx.principal.scopes.end(), required)) {
        return "missing-scope";
      }
    }
  }
  // A policy stage in observe mode blocks nothing, so its deny rules must not hide tools here.
  bool any_deny = std::any_of(bundle_.policy_rules.begin(), bundle_.policy_rules.end(),
                              [](const policy::PolicyRule& r) {
                                return r.status == policy::RuleStatus::kDeny;
                              }) &&
                  bundle_.ModeFor("policy", ctx.principal.tenant) == policy::Mode::kEnforce;
  if (any_deny) {
    policy::EvalContext ec = ConditionContext(ctx, "tools/call", tool);
    for (const policy::PolicyRule& rule : bundle_.policy_rules) {
      if (rule.status == policy::RuleStatus::kDeny && rule.condition.Evaluate(ec)) {
        return "policy-deny";
      }
    }
  }
  return {};
}

bool ToolFilterStage::IsLastCall(const MessageContext& ctx) const {
  return last_.valid && last_.tool == ctx.tool_name && last_.server == ctx.server_id &&
         last_.principal == ctx.principal;
}

Verdict ToolFilterStage::OnRequest(MessageContext& ctx) {
  if (!ctx.MethodIs("tools/call")) {
    return Verdict::Continue();
  }
  if (!IsLastCall(ctx)) {
    last_.reason = HiddenBecause(ctx, ctx.tool_name);
    last_.tool = ctx.tool_name;
    last_.server = ctx.server_id;
    last_.principal = ctx.principal;
    last_.valid = true;
  }
  std::string_view reason = last_.reason;
  if (reason.empty()) {
    ctx.decisions.push_back({.stage = name(),
                             .status = "allow",
                             .reason_code = "tool-filter:allowed",
                             .routine = true});
    return Verdict::Continue();
  }
  // The message does not confirm the tool exists: a hidden tool looks like an unknown one.
  return Deny(ctx, name(), kCodeToolHidden,
              absl::StrCat("Tool \"", ctx.tool_name, "\" is not available to you."), reason);
}

Verdict ToolFilterStage::OnResponse(MessageContext& ctx) {
  if (!ctx.MethodIs("tools/list") || ctx.envelope->kind != jsonrpc::MessageKind::kResponse) {
    return Verdict::Continue();
  }
  bool padded = !ctx.rewritten.has_value();
  std::string_view message = ctx.current();
  absl::StatusOr<std::optional<std::string_view>> tools =
      FindMember(message, {"result", "tools"}, padded);
  if (!tools.ok() || !tools->has_value()) {
    return Verdict::Continue();
  }
  // Walk the array once; keep each visible tool's original bytes.
  simdjson::ondemand::parser parser;
  simdjson::padded_string copy(**tools);
  simdjson::ondemand::document doc;
  simdjson::ondemand::array arr;
  if (parser.iterate(copy).get(doc) != simdjson::SUCCESS ||
      doc.get_array().get(arr) != simdjson::SUCCESS) {
    return Verdict::Continue();
  }
  std::string kept = "[";
  size_t hidden = 0;
  for (auto item : arr) {
    simdjson::ondemand::object tool;
    std::string_view raw;
    std::string_view tool_name;
    // An entry that is not an object with a string name is dropped, never passed through: giving
    // up on the whole list here would show the client every tool it should not see.
    bool readable =
        item.get_object().get(tool) == simdjson::SUCCESS &&
        tool.find_field_unordered("name").get_string().get(tool_name) == simdjson::SUCCESS;
    std::string name_copy(readable ? tool_name : std::string_view());
    if (readable) {
      tool.reset();
      readable = tool.raw_json().get(raw) == simdjson::SUCCESS;
    }
    if (!readable || !HiddenBecause(ctx, name_copy).empty()) {
      ++hidden;
      continue;
    }
    if (kept.size() > 1) {
      kept.push_back(',');
    }
    kept.append(raw);
  }
  kept.push_back(']');
  ctx.decisions.push_back({.stage = name(),
                           .status = hidden == 0 ? "allow" : "transform",
                           .reason_code = absl::StrCat("tool-filter:hidden-", hidden)});
  if (hidden > 0) {
    ctx.rewritten = Splice(message, **tools, kept);
  }
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
