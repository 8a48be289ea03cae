#include "src/middleware/policy.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {
namespace {

using policy::ArgPatch;
using policy::RuleStatus;

// `{"t1":{"t2":…value}}` for the tokens from `i` on (a set through members that do not exist).
void AppendNewPath(const ArgPatch& patch, size_t i, std::string* out) {
  if (i == patch.tokens.size()) {
    out->append(patch.value_json);
    return;
  }
  out->push_back('{');
  jsonrpc::AppendJsonString(patch.tokens[i], out);
  out->push_back(':');
  AppendNewPath(patch, i + 1, out);
  out->push_back('}');
}

std::optional<size_t> ArrayIndex(std::string_view token) {
  size_t index = 0;
  if (token.empty() || (token.size() > 1 && token[0] == '0')) {
    return std::nullopt;
  }
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
  if (ec != std::errc() || end != token.data() + token.size()) {
    return std::nullopt;
  }
  return index;
}

// Writes `e` with `patch` applied below tokens[i].
void Emit(simdjson::dom::element e, const ArgPatch& patch, size_t i, std::string* out) {
  if (i == patch.tokens.size()) {  // only reached by kSet
    out->append(patch.value_json);
    return;
  }
  const std::string& token = patch.tokens[i];
  bool last = i + 1 == patch.tokens.size();
  simdjson::dom::object obj;
  simdjson::dom::array arr;
  if (e.get_object().get(obj) == simdjson::SUCCESS) {
    out->push_back('{');
    bool first = true;
    bool found = false;
    for (auto [key, value] : obj) {
      bool match = key == token;
      found |= match;
      if (match && last && patch.op == ArgPatch::Op::kRemove) {
        continue;
      }
      if (!first) {
        out->push_back(',');
      }
      first = false;
      jsonrpc::AppendJsonString(key, out);
      out->push_back(':');
      if (match) {
        Emit(value, patch, i + 1, out);
      } else {
        out->append(simdjson::minify(value));
      }
    }
    if (!found && patch.op == ArgPatch::Op::kSet) {
      if (!first) {
        out->push_back(',');
      }
      jsonrpc::AppendJsonString(token, out);
      out->push_back(':');
      AppendNewPath(patch, i + 1, out);
    }
    out->push_back('}');
    return;
  }
  if (e.get_array().get(arr) == simdjson::SUCCESS) {
    std::optional<size_t> index = ArrayIndex(token);
    bool append = token == "-" && last && patch.op == ArgPatch::Op::kSet;
    out->push_back('[');
    size_t n = 0;
    bool first = true;
    for (simdjson::dom::element item : arr) {
      bool match = index && *index == n++;
      if (match && last && patch.op == ArgPatch::Op::kRemove) {
        continue;
      }
      if (!first) {
        out->push_back(',');
      }
      first = false;
      if (match) {
        Emit(item, patch, i + 1, out);
      } else {
        out->append(simdjson::minify(item));
      }
    }
    if (append) {
      if (!first) {
        out->push_back(',');
      }
      out->append(patch.value_json);
    }
    out->push_back(']');
    return;
  }
  // A scalar where the path goes on: a set replaces it, a remove has nothing to remove.
  if (patch.op == ArgPatch::Op::kSet) {
    AppendNewPath(patch, i, out);
  } else {
    out->append(simdjson::minify(e));
  }
}

}  // namespace

absl::StatusOr<std::string> ApplyPatches(std::string_view arguments,
                                         std::span<const ArgPatch> patches) {
  simdjson::dom::parser parser;
  std::string text(arguments);
  for (const ArgPatch& patch : patches) {
    simdjson::dom::element root;
    if (parser.parse(text).get(root) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("the tool arguments are not JSON");
    }
    std::string next;
    next.reserve(text.size() + patch.value_json.size() + 16);
    Emit(root, patch, 0, &next);
    text = std::move(next);
  }
  return text;
}

policy::EvalContext ConditionContext(const MessageContext& ctx, std::string_view method,
                                     std::string_view tool_name) {
  policy::EvalContext ec;
  ec.method = method;
  ec.tool_name = tool_name;
  ec.tool_server = ctx.server_id;
  ec.tenant = ctx.principal.tenant;
  ec.user = ctx.principal.user;
  ec.agent = ctx.principal.agent;
  ec.roles = ctx.principal.roles;
  ec.scopes = ctx.principal.scopes;
  return ec;
}

Verdict PolicyStage::OnRequest(MessageContext& ctx) {
  const std::vector<policy::PolicyRule>& rules = bundle_.policy_rules;
  if (rules.empty()) {
    return Verdict::Continue();
  }
  policy::EvalContext ec = ConditionContext(ctx, ctx.method, ctx.tool_name);
  // params.arguments by two key lookups (what the pointer "/params/arguments" means, without
  // parsing a pointer per message).
  simdjson::dom::object root;
  simdjson::dom::object params;
  if (ctx.MethodIs("tools/call") && ctx.request_document &&
      ctx.request_document->get_object().get(root) == simdjson::SUCCESS &&
      root.at_key("params").get_object().get(params) == simdjson::SUCCESS &&
      params.at_key("arguments").get(ec.args) == simdjson::SUCCESS) {
    ec.has_args = true;
  }

  const policy::PolicyRule* first_deny = nullptr;
  const policy::PolicyRule* first_transform = nullptr;
  const policy::PolicyRule* first_observe = nullptr;
  const policy::PolicyRule* first_allow = nullptr;
  std::vector<const policy::PolicyRule*> transforms;
  for (const policy::PolicyRule& rule : rules) {
    if (!rule.condition.Evaluate(ec)) {
      continue;
    }
    switch (rule.status) {
      case RuleStatus::kDeny:
        if (first_deny == nullptr) {
          first_deny = &rule;
        }
        break;
      case RuleStatus::kTransform:
        if (first_transform == nullptr) {
          first_transform = &rule;
        }
        transforms.push_back(&rule);
        break;
      case RuleStatus::kObserveOnly:
        if (first_observe == nullptr) {
          first_observe = &rule;
        }
        break;
      case RuleStatus::kAllow:
        if (first_allow == nullptr) {
          first_allow = &rule;
        }
        break;
    }
  }
  const policy::PolicyRule* decisive = first_deny        ? first_deny
                                       : first_transform ? first_transform
                                       : first_observe   ? first_observe
                                                         : first_allow;
  if (decisive == nullptr) {
    ctx.decisions.push_back(
        {.stage = name(), .status = "allow", .reason_code = "policy:no-rule", .routine = true});
    return Verdict::Continue();
  }
  ctx.policy.status = decisive->status;
  ctx.policy.rule_id = decisive->id;
  ctx.policy.reason_code = decisive->reason_code;
  if (decisive->status == RuleStatus::kDeny) {
    return Deny(ctx, name(), kCodePolicyDenied, decisive->message, decisive->reason_code,
                decisive->id);
  }
  ctx.decisions.push_back({.stage = name(),
                           .status = policy::RuleStatusName(decisive->status),
                           .reason_code = decisive->reason_code});
  if (decisive->status != RuleStatus::kTransform) {
    return Verdict::Continue();
  }
  absl::StatusOr<std::optional<std::string_view>> args =
      FindMember(ctx.current(), {"params", "arguments"}, !ctx.rewritten.has_value());
  std::string_view current_args = args.ok() && args->has_value() ? **args : "{}";
  std::string patched(current_args);
  for (const policy::PolicyRule* rule : transforms) {
    absl::StatusOr<std::string> next = ApplyPatches(patched, rule->patches);
    if (!next.ok()) {
      break;  // arguments that are not JSON: the server will answer for itself
    }
    patched = *std::move(next);
    ctx.policy.applied_transforms.push_back(rule->id);
  }
  if (args.ok() && args->has_value()) {
    ctx.rewritten = Splice(ctx.current(), **args, patched);
  } else if (absl::StatusOr<std::optional<std::string_view>> params =
                 FindMember(ctx.current(), {"params"}, !ctx.rewritten.has_value());
             params.ok() && params->has_value() && (*params)->size() >= 2) {
    // params without arguments: add them as the first member.
    std::string_view p = **params;
    std::string inner(p.substr(1, p.size() - 2));
    bool empty = inner.find_first_not_of(" \t\r\n") == std::string::npos;
    ctx.rewritten = Splice(ctx.current(), p,
                           absl::StrCat("{\"arguments\":", patched, empty ? "" : ",", inner, "}"));
  }
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
