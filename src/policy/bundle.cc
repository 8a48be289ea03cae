#include "src/policy/bundle.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/json_reader.h"
#include "src/common/sha256.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::policy {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

using json::AsArray;
using json::AsObject;
using json::Bad;
using json::EscapeToken;
using json::ObjectReader;

absl::StatusOr<Mode> ParseMode(ObjectReader& r, Mode fallback) {
  return r.Choice<Mode>("mode", {{"enforce", Mode::kEnforce}, {"observe", Mode::kObserve}},
                        fallback);
}

absl::Status ParseStageModes(element e, const std::string& pointer,
                             std::map<std::string, Mode, std::less<>>* out) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, pointer));
  for (auto [key, value] : obj) {
    std::string ptr = absl::StrCat(pointer, "/", EscapeToken(key));
    if (std::find(std::begin(kStageNames), std::end(kStageNames), key) == std::end(kStageNames)) {
      return Bad(ptr,
                 "unknown stage; the stages are normalize, auth, policy, tool_filter, "
                 "rate_limit, quota, request_redaction, dispatch, response_redaction, trace, "
                 "cost, report");
    }
    MCPMW_ASSIGN_OR_RETURN(object stage_obj, AsObject(value, ptr));
    ObjectReader r(stage_obj, ptr);
    MCPMW_ASSIGN_OR_RETURN(Mode mode, ParseMode(r, Mode::kEnforce));
    MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
    (*out)[std::string(key)] = mode;
  }
  return absl::OkStatus();
}

// The quota members of one `tenants` entry (README "Tenant quotas").
absl::Status ParseTenantQuota(ObjectReader& r, TenantQuota* quota) {
  MCPMW_ASSIGN_OR_RETURN(quota->calls_per_minute, r.Whole("callsPerMinute"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> sessions,
                         r.Whole("concurrentSessions", std::numeric_limits<uint32_t>::max()));
  if (sessions) {
    quota->concurrent_sessions = static_cast<uint32_t>(*sessions);
  }
  MCPMW_ASSIGN_OR_RETURN(quota->cost_budget_usd_per_day, r.Number("costBudgetUsdPerDay"));
  if (quota->cost_budget_usd_per_day && *quota->cost_budget_usd_per_day < 0) {
    return Bad(r.Ptr("costBudgetUsdPerDay"), "a budget cannot be negative (0 refuses every call)");
  }
  return absl::OkStatus();
}

// Splits an RFC 6901 pointer; InvalidArgument for a bad escape or a missing leading '/'.
absl::StatusOr<std::vector<std::string>> SplitPointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) {
    return tokens;
  }
  if (pointer[0] != '/') {
    return absl::InvalidArgumentError("a JSON pointer starts with '/' (e.g. \"/path/0/name\")");
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        token += pointer[i + 1] == '0' ? '~' : '/';
        ++i;
        continue;
      }
      return absl::InvalidArgumentError("'~' must be followed by 0 or 1 in a JSON pointer");
    }
    token += pointer[i];
  }
  return tokens;
}

absl::StatusOr<PolicyRule> ParseRule(element e, const std::string& ptr,
                                     ConditionLanguage language) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, ptr));
  ObjectReader r(obj, ptr);
  MCPMW_ASSIGN_OR_RETURN(std::string rule_id, r.RequiredString("ruleId"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> source, r.String("conditionDsl"));
  if (!source) {
    return Bad(r.Ptr("conditionDsl"),
               "required: an expression such as tool.name == \"delete_file\", or \"*\" for all");
  }
  absl::StatusOr<Condition> condition = Condition::Compile(*source, rule_id, language);
  if (!condition.ok()) {
    return Bad(r.Ptr("conditionDsl"), Sv(condition.status().message()));
  }
  PolicyRule rule{.id = std::move(rule_id), .condition = *std::move(condition)};
  MCPMW_ASSIGN_OR_RETURN(rule.status,
                         r.Choice<RuleStatus>("status",
                                              {{"allow", RuleStatus::kAllow},
                                               {"deny", RuleStatus::kDeny},
                                               {"transform", RuleStatus::kTransform},
                                               {"observe-only", RuleStatus::kObserveOnly}},
                                              std::nullopt));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> reason, r.String("reasonCode"));
  rule.reason_code = reason && !reason->empty()
                         ? *reason
                         : absl::StrCat("policy-", Sv(RuleStatusName(rule.status)));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> message, r.String("message"));
  rule.message =
      message ? *message
              : absl::StrCat("Denied by policy rule \"", rule.id, "\" (", rule.reason_code, ").");
  MCPMW_ASSIGN_OR_RETURN(std::optional<double> priority, r.Number("priority"));
  rule.priority = priority.value_or(0);
  // The prototype's field; accepted for compatibility, it has no effect (the rule applies to
  // every request its condition matches).
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> stage, r.String("stage"));
  (void)stage;

  if (std::optional<element> patches = r.Get("patches")) {
    std::string pptr = r.Ptr("patches");
    if (rule.status != RuleStatus::kTransform) {
      return Bad(pptr, "only a \"transform\" rule has patches");
    }
    MCPMW_ASSIGN_OR_RETURN(array arr, AsArray(*patches, pptr));
    size_t i = 0;
    for (element p : arr) {
      std::string ip = absl::StrCat(pptr, "/", i++);
      MCPMW_ASSIGN_OR_RETURN(object pobj, AsObject(p, ip));
      ObjectReader pr(pobj, ip);
      ArgPatch patch;
      MCPMW_ASSIGN_OR_RETURN(
          patch.op, pr.Choice<ArgPatch::Op>(
                        "op", {{"set", ArgPatch::Op::kSet}, {"remove", ArgPatch::Op::kRemove}},
                        std::nullopt));
      MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> path, pr.String("path"));
      if (!path) {
        return Bad(pr.Ptr("path"),
                   "required: a JSON pointer into the tool arguments, e.g. \"/limit\"");
      }
      absl::StatusOr<std::vector<std::string>> tokens = SplitPointer(*path);
      if (!tokens.ok()) {
        return Bad(pr.Ptr("path"), Sv(tokens.status().message()));
      }
      if (tokens->empty() && patch.op == ArgPatch::Op::kRemove) {
        return Bad(pr.Ptr("path"), "cannot remove the arguments object itself");
      }
      patch.pointer = *path;
      patch.tokens = *std::move(tokens);
      std::optional<element> value = pr.Get("value");
      if (patch.op == ArgPatch::Op::kSet) {
        if (!value) {
          return Bad(pr.Ptr("value"), "required for \"set\"");
        }
        if (patch.tokens.empty() && !value->is_object()) {
          return Bad(pr.Ptr("value"), "the arguments can only be replaced by an object");
        }
        patch.value_json = simdjson::minify(*value);
      } else if (value) {
        return Bad(pr.Ptr("value"), "\"remove\" takes no value");
      }
      MCPMW_RETURN_IF_ERROR(pr.RejectUnknown());
      rule.patches.push_back(std::move(patch));
    }
  } else if (rule.status == RuleStatus::kTransform) {
    // The prototype's transform marks the arguments with the rule id; a bundle says what to do.
    return Bad(r.Ptr("patches"),
               "a \"transform\" rule needs patches: [{\"op\":\"set\", "
               "\"path\":\"/…\", \"value\":…}]");
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return rule;
}

absl::StatusOr<ToolEntry> ParseTool(element e, const std::string& ptr) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, ptr));
  ObjectReader r(obj, ptr);
  ToolEntry tool;
  MCPMW_ASSIGN_OR_RETURN(tool.tool_name, r.RequiredString("toolName"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> server, r.String("serverId"));
  tool.server_id = server.value_or("");
  MCPMW_ASSIGN_OR_RETURN(tool.visibility,
                         r.Choice<Visibility>("visibility",
                                              {{"public", Visibility::kPublic},
                                               {"restricted", Visibility::kRestricted},
                                               {"private", Visibility::kPrivate}},
                                              Visibility::kPublic));
  MCPMW_ASSIGN_OR_RETURN(tool.scope_requirements, r.Strings("scopeRequirements"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> description, r.String("description"));
  (void)description;  // documentation for people; the server's own description is what is listed
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return tool;
}

absl::StatusOr<RateRule> ParseRateRule(element e, const std::string& ptr) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, ptr));
  ObjectReader r(obj, ptr);
  RateRule rule;
  MCPMW_ASSIGN_OR_RETURN(rule.id, r.RequiredString("ruleId"));
  MCPMW_ASSIGN_OR_RETURN(rule.dimension,
                         r.Choice<RateDimension>("dimension",
                                                 {{"user", RateDimension::kUser},
                                                  {"agent", RateDimension::kAgent},
                                                  {"tool", RateDimension::kTool},
                                                  {"tenant", RateDimension::kTenant}},
                                                 RateDimension::kUser));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> key_template, r.String("keyTemplate"));
  if (key_template) {
    // Every {placeholder} must be known, so a typo is not a constant key shared by everyone.
    std::string_view t = *key_template;
    for (size_t open = t.find('{'); open != std::string_view::npos; open = t.find('{', open + 1)) {
      size_t close = t.find('}', open);
      if (close == std::string_view::npos) {
        return Bad(r.Ptr("keyTemplate"), "unclosed '{'");
      }
      std::string_view name = t.substr(open + 1, close - open - 1);
      if (name != "tenant" && name != "user" && name != "agent" && name != "tool" &&
          name != "method") {
        return Bad(r.Ptr("keyTemplate"),
                   absl::StrCat("unknown placeholder {", Sv(name),
                                "}; use {tenant}, {user}, {agent}, {tool} or {method}"));
      }
    }
    rule.key_template = *key_template;
  }
  MCPMW_ASSIGN_OR_RETURN(rule.algorithm,
                         r.Choice<RateAlgorithm>("algorithm",
                                                 {{"fixed-window", RateAlgorithm::kFixedWindow},
                                                  {"token-bucket", RateAlgorithm::kTokenBucket}},
                                                 RateAlgorithm::kFixedWindow));
  MCPMW_ASSIGN_OR_RETURN(std::optional<double> limit, r.Number("limit"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<double> burst, r.Number("burst"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<double> window, r.Number("windowSeconds"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<double> refill, r.Number("refillPerSecond"));
  auto count = [&](std::string_view key, std::optional<double> v) -> absl::StatusOr<uint64_t> {
    if (!v || *v < 0 || *v != std::floor(*v) || *v > 1e15) {
      return Bad(r.Ptr(key), "required: a whole number of calls, 0 or more");
    }
    return static_cast<uint64_t>(*v);
  };
  if (rule.algorithm == RateAlgorithm::kFixedWindow) {
    MCPMW_ASSIGN_OR_RETURN(rule.limit, count("limit", limit));
    if (!window || *window <= 0 || *window > 86400.0 * 366) {
      return Bad(r.Ptr("windowSeconds"), "required: a window length in seconds, above 0");
    }
    rule.window_ms = static_cast<uint64_t>(std::llround(*window * 1000));
    if (rule.window_ms == 0) {
      return Bad(r.Ptr("windowSeconds"), "shorter than a millisecond");
    }
    if (burst || refill) {
      return Bad(r.Ptr(burst ? "burst" : "refillPerSecond"),
                 "only for \"algorithm\": \"token-bucket\"");
    }
  } else {
    MCPMW_ASSIGN_OR_RETURN(rule.limit, count("burst", burst ? burst : limit));
    if (!refill || *refill <= 0) {
      return Bad(r.Ptr("refillPerSecond"), "required: tokens added per second, above 0");
    }
    rule.refill_per_second = *refill;
    if (window) {
      return Bad(r.Ptr("windowSeconds"), "only for \"algorithm\": \"fixed-window\"");
    }
  }
  MCPMW_ASSIGN_OR_RETURN(rule.methods, r.Strings("methods"));
  if (rule.methods.empty()) {
    rule.methods = {"tools/call"};
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return rule;
}

struct RedactionLists {
  std::vector<redaction::PathRule> paths[2];  // [0] request, [1] response
  std::vector<redaction::DetectorSpec> detectors[2];
};

absl::Status ParseRedactionRule(element e, const std::string& ptr, RedactionLists* lists) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, ptr));
  ObjectReader r(obj, ptr);
  MCPMW_ASSIGN_OR_RETURN(std::string id, r.RequiredString("ruleId"));
  // Which of the two lists (request, response) the rule joins.
  using Directions = std::pair<bool, bool>;
  MCPMW_ASSIGN_OR_RETURN(Directions direction, r.Choice<Directions>("direction",
                                                                    {{"request", {true, false}},
                                                                     {"response", {false, true}},
                                                                     {"both", {true, true}}},
                                                                    Directions{true, true}));
  bool to[2] = {direction.first, direction.second};
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> path, r.String("matchPath"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> detector, r.String("detector"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> pattern, r.String("pattern"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> replacement, r.String("replacement"));
  int kinds = int(path.has_value()) + int(detector.has_value()) + int(pattern.has_value());
  if (kinds != 1) {
    return Bad(ptr, absl::StrCat("rule \"", id,
                                 "\" needs exactly one of \"matchPath\" (a JSON path rule), "
                                 "\"detector\" (a built-in detector) or \"pattern\" (RE2)"));
  }
  if (path) {
    redaction::PathRule rule;
    rule.id = id;
    rule.path = *path;
    using redaction::PathRule;
    MCPMW_ASSIGN_OR_RETURN(rule.action, r.Choice<PathRule::Action>("mode",
                                                                   {{"mask", PathRule::kMask},
                                                                    {"drop", PathRule::kDrop},
                                                                    {"hash", PathRule::kHash}},
                                                                   PathRule::kMask));
    if (replacement) {
      rule.mask = *replacement;
    }
    for (int d = 0; d < 2; ++d) {
      if (to[d]) {
        lists->paths[d].push_back(rule);
      }
    }
  } else {
    redaction::DetectorSpec spec;
    spec.id = id;
    spec.replacement = replacement.value_or("");
    if (pattern) {
      spec.kind = redaction::DetectorKind::kCustom;
      spec.pattern = *pattern;
      // Compiled here as well so the error points at this rule's pattern, not at the list.
      if (absl::StatusOr<redaction::DetectorSet> alone = redaction::DetectorSet::Create({spec});
          !alone.ok()) {
        return Bad(r.Ptr("pattern"), Sv(alone.status().message()));
      }
    } else {
      bool found = false;
      for (const redaction::DetectorSpec& builtin : redaction::BuiltinDetectors()) {
        if (redaction::DetectorKindName(builtin.kind) == *detector) {
          spec.kind = builtin.kind;
          found = true;
        }
      }
      if (!found) {
        return Bad(r.Ptr("detector"),
                   absl::StrCat("unknown detector \"", *detector,
                                "\"; the built-in detectors are email, card_number, us_ssn, "
                                "iban, cloud_key, bearer_token, private_key"));
      }
    }
    for (int d = 0; d < 2; ++d) {
      if (to[d]) {
        lists->detectors[d].push_back(spec);
      }
    }
  }
  return r.RejectUnknown();
}

// Reads the three prices of a pricing object (or of one of its `tools` entries) over `price`.
absl::Status ReadPrice(ObjectReader& r, Price* price) {
  for (auto [key, field] : {std::pair{"requestBaseFeeUsd", &Price::request_base_fee_usd},
                            std::pair{"inputTokenPriceUsd", &Price::input_token_price_usd},
                            std::pair{"outputTokenPriceUsd", &Price::output_token_price_usd}}) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<double> v, r.Number(key));
    if (v) {
      if (*v < 0) {
        return Bad(r.Ptr(key), "a price cannot be negative");
      }
      price->*field = *v;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Bundle>> Parse(element root) {
  MCPMW_ASSIGN_OR_RETURN(object top, AsObject(root, ""));
  ObjectReader r(top, "");
  auto bundle = std::make_shared<Bundle>();
  MCPMW_ASSIGN_OR_RETURN(bundle->version, r.RequiredString("bundleVersion"));
  MCPMW_ASSIGN_OR_RETURN(bundle->mode, ParseMode(r, Mode::kEnforce));
  MCPMW_ASSIGN_OR_RETURN(
      bundle->condition_language,
      r.Choice<ConditionLanguage>("conditionLanguage",
                                  {{"expression", ConditionLanguage::kExpression},
                                   {"legacy-substring", ConditionLanguage::kLegacySubstring}},
                                  ConditionLanguage::kExpression));
  if (std::optional<element> stages = r.Get("stages")) {
    MCPMW_RETURN_IF_ERROR(ParseStageModes(*stages, r.Ptr("stages"), &bundle->stage_modes));
  }
  if (std::optional<element> tenants = r.Get("tenants")) {
    std::string tptr = r.Ptr("tenants");
    MCPMW_ASSIGN_OR_RETURN(object tobj, AsObject(*tenants, tptr));
    for (auto [name, value] : tobj) {
      std::string ptr = absl::StrCat(tptr, "/", EscapeToken(name));
      MCPMW_ASSIGN_OR_RETURN(object one, AsObject(value, ptr));
      ObjectReader tr(one, ptr);
      Bundle::TenantSettings settings;
      // Modes do not fall back to "*" (Bundle::ModeFor): refused there rather than ignored.
      if (name == kDefaultTenant && (tr.Get("mode") || tr.Get("stages"))) {
        return Bad(tr.Ptr(tr.Get("mode") ? "mode" : "stages"),
                   "the \"*\" entry holds default quotas only; set the bundle's own "
                   "\"mode\" or \"stages\" for every tenant");
      }
      if (tr.Get("mode")) {
        MCPMW_ASSIGN_OR_RETURN(settings.mode, ParseMode(tr, Mode::kEnforce));
      }
      if (std::optional<element> st = tr.Get("stages")) {
        MCPMW_RETURN_IF_ERROR(ParseStageModes(*st, tr.Ptr("stages"), &settings.stage_modes));
      }
      MCPMW_RETURN_IF_ERROR(ParseTenantQuota(tr, &settings.quota));
      MCPMW_RETURN_IF_ERROR(tr.RejectUnknown());
      bundle->tenants[std::string(name)] = std::move(settings);
    }
    // "*" may come anywhere in the object, so its defaults are filled in once all are read.
    if (auto d = bundle->tenants.find(kDefaultTenant); d != bundle->tenants.end()) {
      const TenantQuota defaults = d->second.quota;
      for (auto& [name, settings] : bundle->tenants) {
        TenantQuota& q = settings.quota;
        q.calls_per_minute = q.calls_per_minute ? q.calls_per_minute : defaults.calls_per_minute;
        q.concurrent_sessions =
            q.concurrent_sessions ? q.concurrent_sessions : defaults.concurrent_sessions;
        q.cost_budget_usd_per_day = q.cost_budget_usd_per_day ? q.cost_budget_usd_per_day
                                                              : defaults.cost_budget_usd_per_day;
      }
    }
  }
  if (std::optional<element> identity = r.Get("identity")) {
    std::string iptr = r.Ptr("identity");
    MCPMW_ASSIGN_OR_RETURN(object iobj, AsObject(*identity, iptr));
    ObjectReader ir(iobj, iptr);
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> tenant, ir.String("tenantId"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> user, ir.String("userId"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> agent, ir.String("agentId"));
    bundle->identity.tenant = tenant.value_or("");
    bundle->identity.user = user.value_or("");
    bundle->identity.agent = agent.value_or("");
    MCPMW_ASSIGN_OR_RETURN(bundle->identity.roles, ir.Strings("roles"));
    MCPMW_ASSIGN_OR_RETURN(bundle->identity.scopes, ir.Strings("scopes"));
    MCPMW_RETURN_IF_ERROR(ir.RejectUnknown());
  }

  MCPMW_ASSIGN_OR_RETURN(std::vector<std::string> required, r.Strings("requireIdentity"));
  for (size_t i = 0; i < required.size(); ++i) {
    const std::string& what = required[i];
    bool* flag = what == "tenant"   ? &bundle->require_tenant
                 : what == "user"   ? &bundle->require_user
                 : what == "agent"  ? &bundle->require_agent
                 : what == "scopes" ? &bundle->require_scopes
                                    : nullptr;
    if (flag == nullptr) {
      return Bad(absl::StrCat(r.Ptr("requireIdentity"), "/", i),
                 absl::StrCat("\"", what,
                              "\" is not one of \"tenant\", \"user\", \"agent\", "
                              "\"scopes\""));
    }
    *flag = true;
  }

  std::set<std::string> ids;
  auto unique_id = [&](const std::string& id, const std::string& ptr) -> absl::Status {
    if (!ids.insert(id).second) {
      return Bad(absl::StrCat(ptr, "/ruleId"),
                 absl::StrCat("rule id \"", id,
                              "\" is used twice; rule ids name decisions in "
                              "errors and the audit log, so they must be unique"));
    }
    return absl::OkStatus();
  };
  if (std::optional<element> rules = r.Get("policyRules")) {
    MCPMW_ASSIGN_OR_RETURN(array arr, AsArray(*rules, r.Ptr("policyRules")));
    size_t i = 0;
    for (element e : arr) {
      std::string ptr = absl::StrCat(r.Ptr("policyRules"), "/", i++);
      MCPMW_ASSIGN_OR_RETURN(PolicyRule rule, ParseRule(e, ptr, bundle->condition_language));
      MCPMW_RETURN_IF_ERROR(unique_id(rule.id, ptr));
      bundle->policy_rules.push_back(std::move(rule));
    }
    std::stable_sort(bundle->policy_rules.begin(), bundle->policy_rules.end(),
                     [](const PolicyRule& a, const PolicyRule& b) {
                       if (a.priority != b.priority) {
                         return a.priority > b.priority;
                       }
                       return a.id < b.id;
                     });
  }
  if (std::optional<element> catalog = r.Get("toolCatalog")) {
    MCPMW_ASSIGN_OR_RETURN(array arr, AsArray(*catalog, r.Ptr("toolCatalog")));
    size_t i = 0;
    for (element e : arr) {
      MCPMW_ASSIGN_OR_RETURN(ToolEntry tool,
                             ParseTool(e, absl::StrCat(r.Ptr("toolCatalog"), "/", i++)));
      bundle->tool_catalog.push_back(std::move(tool));
    }
  }
  MCPMW_ASSIGN_OR_RETURN(
      bundle->hide_uncataloged_tools,
      r.Choice<bool>("uncatalogedTools", {{"visible", false}, {"hidden", true}}, false));
  if (std::optional<element> rules = r.Get("rateLimitRules")) {
    MCPMW_ASSIGN_OR_RETURN(array arr, AsArray(*rules, r.Ptr("rateLimitRules")));
    size_t i = 0;
    for (element e : arr) {
      std::string ptr = absl::StrCat(r.Ptr("rateLimitRules"), "/", i++);
      MCPMW_ASSIGN_OR_RETURN(RateRule rule, ParseRateRule(e, ptr));
      MCPMW_RETURN_IF_ERROR(unique_id(rule.id, ptr));
      bundle->rate_rules.push_back(std::move(rule));
    }
  }
  if (std::optional<element> rules = r.Get("redactionRules")) {
    MCPMW_ASSIGN_OR_RETURN(array arr, AsArray(*rules, r.Ptr("redactionRules")));
    RedactionLists lists;
    size_t i = 0;
    for (element e : arr) {
      std::string ptr = absl::StrCat(r.Ptr("redactionRules"), "/", i++);
      MCPMW_RETURN_IF_ERROR(ParseRedactionRule(e, ptr, &lists));
      // Redaction notes name their rule in the audit log too. (The rule parsed: it has a ruleId.)
      if (std::string_view id; e.at_key("ruleId").get_string().get(id) == simdjson::SUCCESS) {
        MCPMW_RETURN_IF_ERROR(unique_id(std::string(id), ptr));
      }
    }
    for (int d = 0; d < 2; ++d) {
      if (lists.paths[d].empty() && lists.detectors[d].empty()) {
        continue;
      }
      absl::StatusOr<redaction::DetectorSet> set =
          redaction::DetectorSet::Create(lists.detectors[d]);
      if (!set.ok()) {
        return Bad(r.Ptr("redactionRules"), Sv(set.status().message()));
      }
      // The salt ties hashes to this bundle's version, so they cannot be joined across
      // deployments with a precomputed table.
      absl::StatusOr<redaction::JsonRedactor> redactor = redaction::JsonRedactor::Create(
          lists.paths[d], *std::move(set), absl::StrCat("mcpmw:", bundle->version, ":"));
      if (!redactor.ok()) {
        return Bad(r.Ptr("redactionRules"), Sv(redactor.status().message()));
      }
      auto shared = std::make_shared<const redaction::JsonRedactor>(*std::move(redactor));
      (d == 0 ? bundle->request_redactor : bundle->response_redactor) = std::move(shared);
    }
  }
  if (std::optional<element> pricing = r.Get("pricing")) {
    std::string pptr = r.Ptr("pricing");
    MCPMW_ASSIGN_OR_RETURN(object pobj, AsObject(*pricing, pptr));
    ObjectReader pr(pobj, pptr);
    MCPMW_RETURN_IF_ERROR(ReadPrice(pr, &bundle->pricing.defaults));
    if (std::optional<element> tools = pr.Get("tools")) {
      std::string tptr = pr.Ptr("tools");
      MCPMW_ASSIGN_OR_RETURN(object tobj, AsObject(*tools, tptr));
      for (auto [name, value] : tobj) {
        std::string ptr = absl::StrCat(tptr, "/", EscapeToken(name));
        MCPMW_ASSIGN_OR_RETURN(object one, AsObject(value, ptr));
        ObjectReader tr(one, ptr);
        Price price = bundle->pricing.defaults;
        MCPMW_RETURN_IF_ERROR(ReadPrice(tr, &price));
        MCPMW_RETURN_IF_ERROR(tr.RejectUnknown());
        bundle->pricing.tools[std::string(name)] = price;
      }
    }
    MCPMW_RETURN_IF_ERROR(pr.RejectUnknown());
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return bundle;
}

}  // namespace

std::string_view ModeName(Mode mode) { return mode == Mode::kObserve ? "observe" : "enforce"; }

std::string_view RuleStatusName(RuleStatus status) {
  switch (status) {
    case RuleStatus::kAllow:
      return "allow";
    case RuleStatus::kDeny:
      return "deny";
    case RuleStatus::kTransform:
      return "transform";
    case RuleStatus::kObserveOnly:
      return "observe-only";
  }
  return "allow";
}

std::string_view RateDimensionName(RateDimension dimension) {
  switch (dimension) {
    case RateDimension::kUser:
      return "user";
    case RateDimension::kAgent:
      return "agent";
    case RateDimension::kTool:
      return "tool";
    case RateDimension::kTenant:
      return "tenant";
  }
  return "user";
}

std::string_view RateAlgorithmName(RateAlgorithm algorithm) {
  return algorithm == RateAlgorithm::kTokenBucket ? "token-bucket" : "fixed-window";
}

const Price& Pricing::For(std::string_view tool_name) const {
  auto it = tools.find(tool_name);
  return it == tools.end() ? defaults : it->second;
}

Mode Bundle::ModeFor(std::string_view stage, std::string_view tenant) const {
  if (auto t = tenants.find(tenant); t != tenants.end()) {
    if (auto s = t->second.stage_modes.find(stage); s != t->second.stage_modes.end()) {
      return s->second;
    }
    if (t->second.mode) {
      return *t->second.mode;
    }
  }
  if (auto s = stage_modes.find(stage); s != stage_modes.end()) {
    return s->second;
  }
  return mode;
}

const TenantQuota* Bundle::QuotaFor(std::string_view tenant) const {
  auto t = tenants.find(tenant);
  if (t == tenants.end()) {
    t = tenants.find(kDefaultTenant);
  }
  return t != tenants.end() && t->second.quota.limits_anything() ? &t->second.quota : nullptr;
}

bool Bundle::HasQuotas() const {
  return std::any_of(tenants.begin(), tenants.end(),
                     [](const auto& t) { return t.second.quota.limits_anything(); });
}

absl::StatusOr<std::shared_ptr<const Bundle>> ParseBundle(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("/: not a JSON document (", simdjson::error_message(err), ")"));
  }
  MCPMW_ASSIGN_OR_RETURN(std::shared_ptr<Bundle> bundle, Parse(root));
  bundle->sha256 = Sha256Hex(json);
  return std::shared_ptr<const Bundle>(std::move(bundle));
}

absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open the policy bundle"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::shared_ptr<const Bundle>> bundle = ParseBundle(text.str());
  if (!bundle.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", bundle.status().message()));
  }
  return bundle;
}

}  // namespace mcpmw::policy
