// mcpmw policy: the bundle, one versioned JSON document that configures the whole chain.
//
// Place: ARCHITECTURE.md §5. A bundle is parsed and compiled once, off the message path, into an
// immutable Bundle; the session's chain is built from it (src/middleware/chain_factory.h) and the
// stages read it through a const pointer for as long as that snapshot is current. Reload builds a
// new Bundle beside the running one (src/policy/bundle_store.h); a bundle that fails here never
// replaces the running one.
//
// The document (README "Policy bundles" has the full reference and an example):
//
//   {
//     "bundleVersion": "2026-11-24.1",               required, non-empty
//     "mode": "enforce" | "observe",                  default enforce
//     "conditionLanguage": "expression" | "legacy-substring",   default expression
//     "stages":  { "<stage>": { "mode": … } },        per-stage mode
//     "tenants": { "<tenant>" | "*": { "mode": …, "stages": { "<stage>": { "mode": … } },
//                                       "callsPerMinute", "concurrentSessions",
//                                       "costBudgetUsdPerDay" } },
//     "identity": { "tenantId", "userId", "agentId", "roles": [], "scopes": [] },
//     "requireIdentity": [ "tenant", "user", "agent", "scopes" ],   any subset; default none
//     "policyRules":    [ { "ruleId", "status": "allow|deny|transform|observe-only",
//                           "conditionDsl", "reasonCode", "priority", "message",
//                           "patches": [ { "op": "set|remove", "path": "/json/pointer",
//                                          "value": any } ] } ],
//     "toolCatalog":    [ { "serverId", "toolName", "visibility": "public|restricted|private",
//                           "scopeRequirements": [] } ],
//     "uncatalogedTools": "visible" | "hidden",       default visible
//     "rateLimitRules": [ { "ruleId", "dimension": "user|agent|tool|tenant",
//                           "keyTemplate", "algorithm": "fixed-window|token-bucket",
//                           "limit", "windowSeconds", "burst", "refillPerSecond",
//                           "methods": ["tools/call"] } ],
//     "redactionRules": [ { "ruleId", "direction": "request|response|both",
//                           one of: "matchPath" + "mode": "mask|drop|hash" + "replacement"
//                                 | "detector": "email|card_number|us_ssn|iban|cloud_key|
//                                                bearer_token|private_key" [+ "replacement"]
//                                 | "pattern": RE2 [+ "replacement"] } ],
//     "pricing": { "requestBaseFeeUsd", "inputTokenPriceUsd", "outputTokenPriceUsd",
//                  "tools": { "<toolName>": { same three, each optional } } }
//   }
//
// Every error names the offending place as an RFC 6901 pointer into the document, then what is
// wrong and what would be right:  /policyRules/2/conditionDsl: rule "deny-delete": column 17: …
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/middleware/redaction/json_redactor.h"
#include "src/policy/condition.h"

namespace mcpmw::policy {

// enforce: verdicts take effect. observe: every decision is computed, recorded and counted, but
// nothing is blocked or rewritten.
enum class Mode : uint8_t { kEnforce, kObserve };
std::string_view ModeName(Mode mode);

// The twelve stage names, in chain order, as bundles and reports spell them.
inline constexpr std::string_view kStageNames[] = {
    "normalize",
    "auth",
    "policy",
    "tool_filter",
    "rate_limit",
    "quota",
    "request_redaction",
    "dispatch",
    "response_redaction",
    "trace",
    "cost",
    "report",
};

enum class RuleStatus : uint8_t { kAllow, kDeny, kTransform, kObserveOnly };
std::string_view RuleStatusName(RuleStatus status);  // "allow", "deny", …

// One edit a transform rule makes to the tool arguments. `pointer` is RFC 6901 relative to
// `params.arguments` ("" is the arguments object itself, only valid for kSet with an object).
struct ArgPatch {
  enum class Op : uint8_t { kSet, kRemove };
  Op op = Op::kSet;
  std::string pointer;
  std::vector<std::string> tokens;  // `pointer` split and unescaped
  std::string value_json;           // kSet: the compact JSON value
};

struct PolicyRule {
  std::string id;
  RuleStatus status = RuleStatus::kAllow;
  std::string reason_code;  // defaults to "policy-deny" / "policy-transform" / …
  std::string message;      // what a denied caller reads; a default names the rule
  double priority = 0;
  Condition condition;
  std::vector<ArgPatch> patches;  // kTransform only
};

enum class Visibility : uint8_t { kPublic, kRestricted, kPrivate };

struct ToolEntry {
  std::string server_id;  // empty: any server
  std::string tool_name;
  Visibility visibility = Visibility::kPublic;
  std::vector<std::string> scope_requirements;
};

enum class RateDimension : uint8_t { kUser, kAgent, kTool, kTenant };
enum class RateAlgorithm : uint8_t { kFixedWindow, kTokenBucket };
std::string_view RateDimensionName(RateDimension dimension);
std::string_view RateAlgorithmName(RateAlgorithm algorithm);

struct RateRule {
  std::string id;
  RateDimension dimension = RateDimension::kUser;
  // `{tenant}:{user}`-style; placeholders: tenant, user, agent, tool, method. Empty: the
  // dimension's default, "{tenant}:{user}" / "{tenant}:{agent}" / "{tenant}:{tool}" /
  // "{tenant}".
  std::string key_template;
  RateAlgorithm algorithm = RateAlgorithm::kFixedWindow;
  uint64_t limit = 0;                // fixed window: calls per window; token bucket: burst capacity
  uint64_t window_ms = 60'000;       // fixed window length
  double refill_per_second = 0;      // token bucket
  std::vector<std::string> methods;  // which requests count; default {"tools/call"}
};

struct Price {
  double request_base_fee_usd = 0;
  double input_token_price_usd = 0;
  double output_token_price_usd = 0;
};

struct Pricing {
  Price defaults;
  std::map<std::string, Price, std::less<>> tools;  // per tool name, over the defaults
  const Price& For(std::string_view tool_name) const;
};

struct Identity {
  std::string tenant;
  std::string user;
  std::string agent;
  std::vector<std::string> roles;
  std::vector<std::string> scopes;
};

// A tenant's quotas (`tenants.<t>`, README "Tenant quotas"); each absent one is unlimited.
// Enforced by src/middleware/quota.h: calls and spend per message, sessions when one opens.
struct TenantQuota {
  std::optional<uint64_t> calls_per_minute;       // tools/call requests in any minute
  std::optional<uint32_t> concurrent_sessions;    // sessions open at once
  std::optional<double> cost_budget_usd_per_day;  // the cost stage's USD per UTC day
  bool limits_anything() const {
    return calls_per_minute || concurrent_sessions || cost_budget_usd_per_day;
  }
};

// The name of the `tenants` entry whose quotas are the defaults of every tenant.
inline constexpr std::string_view kDefaultTenant = "*";

struct Bundle {
  std::string version;
  std::string sha256;  // of the document's bytes
  Mode mode = Mode::kEnforce;
  ConditionLanguage condition_language = ConditionLanguage::kExpression;
  std::map<std::string, Mode, std::less<>> stage_modes;
  struct TenantSettings {
    std::optional<Mode> mode;
    std::map<std::string, Mode, std::less<>> stage_modes;
    // Resolved at load: each quota the entry leaves out is the "*" entry's (if any).
    TenantQuota quota;
  };
  std::map<std::string, TenantSettings, std::less<>> tenants;
  Identity identity;  // defaults for what the transport does not say
  bool require_tenant = false;
  bool require_user = false;
  bool require_agent = false;
  bool require_scopes = false;

  // Sorted: priority descending, then ruleId ascending (code units).
  std::vector<PolicyRule> policy_rules;
  std::vector<ToolEntry> tool_catalog;
  bool hide_uncataloged_tools = false;
  std::vector<RateRule> rate_rules;
  // Null when the bundle has no rule for that direction.
  std::shared_ptr<const redaction::JsonRedactor> request_redactor;
  std::shared_ptr<const redaction::JsonRedactor> response_redactor;
  Pricing pricing;

  // The mode of `stage` for `tenant`, most specific first: the tenant's stage setting, the
  // tenant's mode, the bundle's stage setting, the bundle's mode.
  Mode ModeFor(std::string_view stage, std::string_view tenant) const;
  // The quotas of `tenant`: its own entry's (each missing field from "*"), else the "*"
  // entry's; null when nothing limits the tenant. Points into this bundle.
  const TenantQuota* QuotaFor(std::string_view tenant) const;
  // Whether any tenant entry ("*" included) sets a quota.
  bool HasQuotas() const;
};

// Parses and compiles one bundle document. InvalidArgument, starting with the JSON pointer of
// the offending value, for anything wrong: unknown keys included (a typo must not silently
// disable a rule).
absl::StatusOr<std::shared_ptr<const Bundle>> ParseBundle(std::string_view json);

// Reads `path` and parses it. The error says which file.
absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundleFile(const std::string& path);

}  // namespace mcpmw::policy
