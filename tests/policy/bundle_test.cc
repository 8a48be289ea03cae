#include "src/policy/bundle.h"

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/sha256.h"

namespace mcpmw::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Every section of the document, with the policy rules deliberately out of order.
constexpr std::string_view kFullBundle = R"({
  "bundleVersion": "2026-11-24.1",
  "mode": "observe",
  "conditionLanguage": "expression",
  "stages": {"policy": {"mode": "enforce"}, "trace": {"mode": "observe"}},
  "tenants": {
    "acme": {"mode": "enforce", "stages": {"rate_limit": {"mode": "observe"}}},
    "globex": {}
  },
  "identity": {"tenantId": "acme", "userId": "u1", "agentId": "a1",
               "roles": ["admin", "dev"], "scopes": ["Read ", "write"]},
  "requireIdentity": ["tenant", "user", "agent", "scopes"],
  "policyRules": [
    {"ruleId": "b-low", "status": "allow", "conditionDsl": "*"},
    {"ruleId": "z-high", "status": "deny", "conditionDsl": "tool.name == \"rm\"",
     "priority": 10, "reasonCode": "no-rm", "message": "Removing is not allowed."},
    {"ruleId": "a-high", "status": "transform", "conditionDsl": "method == \"tools/call\"",
     "priority": 10, "patches": [{"op": "set", "path": "/limit", "value": {"max": 5}},
                                 {"op": "remove", "path": "/a~1b/c~0d"}]},
    {"ruleId": "c-mid", "status": "observe-only", "conditionDsl": "", "priority": 2.5}
  ],
  "toolCatalog": [
    {"serverId": "fs", "toolName": "read_file", "visibility": "restricted",
     "scopeRequirements": ["read"], "description": "reads"},
    {"toolName": "secret", "visibility": "private"}
  ],
  "uncatalogedTools": "hidden",
  "rateLimitRules": [
    {"ruleId": "per-user", "dimension": "user", "algorithm": "fixed-window", "limit": 10,
     "windowSeconds": 1.5},
    {"ruleId": "per-tool", "dimension": "tool", "keyTemplate": "{tenant}/{tool}/{method}",
     "algorithm": "token-bucket", "burst": 4, "refillPerSecond": 0.5,
     "methods": ["tools/call", "resources/read"]}
  ],
  "redactionRules": [
    {"ruleId": "pw", "direction": "request", "matchPath": "$.password", "mode": "hash"},
    {"ruleId": "mail", "direction": "both", "detector": "email"},
    {"ruleId": "ticket", "direction": "response", "pattern": "TICKET-[0-9]+",
     "replacement": "[TICKET]"}
  ],
  "pricing": {"requestBaseFeeUsd": 0.001, "inputTokenPriceUsd": 0.00001,
              "outputTokenPriceUsd": 0.00003,
              "tools": {"search": {"outputTokenPriceUsd": 0.0001}}}
})";

std::shared_ptr<const Bundle> MustParse(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const Bundle>> bundle = ParseBundle(json);
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return bundle.ok() ? *bundle : nullptr;
}

// The error message of a document that must not parse (and must fail as InvalidArgument).
std::string ParseError(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const Bundle>> bundle = ParseBundle(json);
  EXPECT_FALSE(bundle.ok()) << json;
  if (bundle.ok()) {
    return "";
  }
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(bundle.status().message());
}

// A minimal document with `extra` spliced in as further top-level members.
std::string Doc(std::string_view extra) {
  return std::string(R"({"bundleVersion":"v1",)") + std::string(extra) + "}";
}

TEST(ParseBundle, ReadsEverySectionOfAFullBundle) {
  std::shared_ptr<const Bundle> b = MustParse(kFullBundle);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->version, "2026-11-24.1");
  EXPECT_EQ(b->sha256, Sha256Hex(kFullBundle));
  EXPECT_EQ(b->mode, Mode::kObserve);
  EXPECT_EQ(b->condition_language, ConditionLanguage::kExpression);
  ASSERT_EQ(b->stage_modes.size(), 2u);
  EXPECT_EQ(b->stage_modes.at("policy"), Mode::kEnforce);
  EXPECT_EQ(b->stage_modes.at("trace"), Mode::kObserve);
  ASSERT_EQ(b->tenants.size(), 2u);
  EXPECT_EQ(b->tenants.at("acme").mode, Mode::kEnforce);
  EXPECT_EQ(b->tenants.at("acme").stage_modes.at("rate_limit"), Mode::kObserve);
  EXPECT_FALSE(b->tenants.at("globex").mode.has_value());
  EXPECT_TRUE(b->tenants.at("globex").stage_modes.empty());

  EXPECT_EQ(b->identity.tenant, "acme");
  EXPECT_EQ(b->identity.user, "u1");
  EXPECT_EQ(b->identity.agent, "a1");
  EXPECT_THAT(b->identity.roles, ElementsAre("admin", "dev"));
  EXPECT_THAT(b->identity.scopes, ElementsAre("Read ", "write"));  // auth normalises them
  EXPECT_TRUE(b->require_tenant);
  EXPECT_TRUE(b->require_user);
  EXPECT_TRUE(b->require_agent);
  EXPECT_TRUE(b->require_scopes);

  ASSERT_EQ(b->tool_catalog.size(), 2u);
  EXPECT_EQ(b->tool_catalog[0].server_id, "fs");
  EXPECT_EQ(b->tool_catalog[0].tool_name, "read_file");
  EXPECT_EQ(b->tool_catalog[0].visibility, Visibility::kRestricted);
  EXPECT_THAT(b->tool_catalog[0].scope_requirements, ElementsAre("read"));
  EXPECT_EQ(b->tool_catalog[1].server_id, "");
  EXPECT_EQ(b->tool_catalog[1].visibility, Visibility::kPrivate);
  EXPECT_TRUE(b->hide_uncataloged_tools);

  ASSERT_EQ(b->rate_rules.size(), 2u);
  const RateRule& fixed = b->rate_rules[0];
  EXPECT_EQ(fixed.id, "per-user");
  EXPECT_EQ(fixed.dimension, RateDimension::kUser);
  EXPECT_EQ(fixed.algorithm, RateAlgorithm::kFixedWindow);
  EXPECT_EQ(fixed.limit, 10u);
  EXPECT_EQ(fixed.window_ms, 1500u);
  EXPECT_EQ(fixed.key_template, "");
  EXPECT_THAT(fixed.methods, ElementsAre("tools/call"));
  const RateRule& bucket = b->rate_rules[1];
  EXPECT_EQ(bucket.dimension, RateDimension::kTool);
  EXPECT_EQ(bucket.algorithm, RateAlgorithm::kTokenBucket);
  EXPECT_EQ(bucket.limit, 4u);
  EXPECT_DOUBLE_EQ(bucket.refill_per_second, 0.5);
  EXPECT_EQ(bucket.key_template, "{tenant}/{tool}/{method}");
  EXPECT_THAT(bucket.methods, ElementsAre("tools/call", "resources/read"));

  ASSERT_NE(b->request_redactor, nullptr);
  ASSERT_NE(b->response_redactor, nullptr);
  EXPECT_EQ(b->request_redactor->detectors().size(), 1u);   // mail
  EXPECT_EQ(b->response_redactor->detectors().size(), 2u);  // mail, ticket
  EXPECT_EQ(b->response_redactor->detectors().spec(1).replacement, "[TICKET]");

  EXPECT_DOUBLE_EQ(b->pricing.defaults.request_base_fee_usd, 0.001);
  EXPECT_DOUBLE_EQ(b->pricing.defaults.input_token_price_usd, 0.00001);
  EXPECT_DOUBLE_EQ(b->pricing.defaults.output_token_price_usd, 0.00003);
  ASSERT_EQ(b->pricing.tools.size(), 1u);
}

TEST(ParseBundle, SortsPolicyRulesByPriorityDescendingThenRuleId) {
  std::shared_ptr<const Bundle> b = MustParse(kFullBundle);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->policy_rules.size(), 4u);
  EXPECT_EQ(b->policy_rules[0].id, "a-high");
  EXPECT_EQ(b->policy_rules[1].id, "z-high");
  EXPECT_EQ(b->policy_rules[2].id, "c-mid");
  EXPECT_EQ(b->policy_rules[3].id, "b-low");

  const PolicyRule& transform = b->policy_rules[0];
  EXPECT_EQ(transform.status, RuleStatus::kTransform);
  EXPECT_EQ(transform.reason_code, "policy-transform");
  ASSERT_EQ(transform.patches.size(), 2u);
  EXPECT_EQ(transform.patches[0].op, ArgPatch::Op::kSet);
  EXPECT_EQ(transform.patches[0].pointer, "/limit");
  EXPECT_THAT(transform.patches[0].tokens, ElementsAre("limit"));
  EXPECT_EQ(transform.patches[0].value_json, R"({"max":5})");
  EXPECT_EQ(transform.patches[1].op, ArgPatch::Op::kRemove);
  EXPECT_THAT(transform.patches[1].tokens, ElementsAre("a/b", "c~d"));
  EXPECT_EQ(transform.patches[1].value_json, "");

  const PolicyRule& deny = b->policy_rules[1];
  EXPECT_EQ(deny.status, RuleStatus::kDeny);
  EXPECT_EQ(deny.reason_code, "no-rm");
  EXPECT_EQ(deny.message, "Removing is not allowed.");
  EXPECT_DOUBLE_EQ(deny.priority, 10);

  EXPECT_EQ(b->policy_rules[2].status, RuleStatus::kObserveOnly);
  EXPECT_DOUBLE_EQ(b->policy_rules[2].priority, 2.5);
  EXPECT_TRUE(b->policy_rules[2].condition.always_true());
  const PolicyRule& allow = b->policy_rules[3];
  EXPECT_EQ(allow.reason_code, "policy-allow");
  EXPECT_EQ(allow.message, R"(Denied by policy rule "b-low" (policy-allow).)");
}

TEST(ParseBundle, DefaultsEverythingInAMinimalBundle) {
  std::shared_ptr<const Bundle> b = MustParse(R"({"bundleVersion":"v0"})");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->mode, Mode::kEnforce);
  EXPECT_TRUE(b->policy_rules.empty());
  EXPECT_FALSE(b->hide_uncataloged_tools);
  EXPECT_FALSE(b->require_tenant || b->require_user || b->require_agent || b->require_scopes);
  EXPECT_EQ(b->request_redactor, nullptr);
  EXPECT_EQ(b->response_redactor, nullptr);
}

TEST(ParseBundle, RefusesAnUnknownTopLevelKey) {
  std::string error = ParseError(Doc(R"("polcyRules":[])"));
  EXPECT_THAT(error, StartsWith("/polcyRules: unknown key; expected one of: "));
  EXPECT_THAT(error, HasSubstr("policyRules"));
}

TEST(ParseBundle, RefusesAnUnknownKeyInsideARule) {
  std::string error = ParseError(Doc(
      R"("policyRules":[{"ruleId":"r0","status":"allow","conditionDsl":"*"},
                        {"ruleId":"r1","status":"deny","conditionDsl":"*","priorty":3}])"));
  EXPECT_THAT(error, StartsWith("/policyRules/1/priorty: unknown key; expected one of: "));
}

TEST(ParseBundle, RefusesADocumentWithoutBundleVersion) {
  EXPECT_EQ(ParseError(R"({"mode":"enforce"})"), "/bundleVersion: required: a non-empty string");
  EXPECT_EQ(ParseError(R"({"bundleVersion":""})"), "/bundleVersion: required: a non-empty string");
  EXPECT_EQ(ParseError(R"({"bundleVersion":7})"),
            "/bundleVersion: expected a string, found a number");
}

TEST(ParseBundle, RefusesSomethingThatIsNotJson) {
  EXPECT_THAT(ParseError("{"), StartsWith("/: not a JSON document ("));
  EXPECT_EQ(ParseError("[]"), "/: expected an object, found an array");
}

TEST(ParseBundle, RefusesAnUnknownRuleStatus) {
  EXPECT_EQ(
      ParseError(Doc(R"("policyRules":[{"ruleId":"r","status":"block","conditionDsl":"*"}])")),
      R"(/policyRules/0/status: "block" is not one of "allow", "deny", "transform", )"
      R"("observe-only")");
  EXPECT_EQ(ParseError(Doc(R"("policyRules":[{"ruleId":"r","conditionDsl":"*"}])")),
            R"(/policyRules/0/status: required: "allow", "deny", "transform" or "observe-only")");
}

TEST(ParseBundle, NamesTheRuleAndColumnOfAConditionSyntaxError) {
  std::string error = ParseError(Doc(
      R"json("policyRules":[{"ruleId":"deny-delete","status":"deny",
                             "conditionDsl":"tool.name == )"}])json"));
  EXPECT_THAT(error, StartsWith("/policyRules/0/conditionDsl: rule \"deny-delete\": column 14: "));
}

TEST(ParseBundle, RefusesARuleWithoutCondition) {
  EXPECT_THAT(ParseError(Doc(R"("policyRules":[{"ruleId":"r","status":"deny"}])")),
              StartsWith("/policyRules/0/conditionDsl: required: an expression"));
}

TEST(ParseBundle, RefusesDuplicateRuleIdsAcrossSections) {
  EXPECT_THAT(ParseError(Doc(R"("policyRules":[
                  {"ruleId":"dup","status":"allow","conditionDsl":"*"},
                  {"ruleId":"dup","status":"deny","conditionDsl":"*"}])")),
              StartsWith(R"(/policyRules/1/ruleId: rule id "dup" is used twice)"));
  EXPECT_THAT(
      ParseError(Doc(R"("policyRules":[{"ruleId":"dup","status":"allow","conditionDsl":"*"}],
                  "rateLimitRules":[{"ruleId":"dup","limit":1,"windowSeconds":1}])")),
      StartsWith(R"(/rateLimitRules/0/ruleId: rule id "dup" is used twice)"));
}

TEST(ParseBundle, RefusesADuplicateRedactionRuleId) {
  EXPECT_THAT(
      ParseError(Doc(R"("policyRules":[{"ruleId":"dup","status":"allow","conditionDsl":"*"}],
                  "redactionRules":[{"ruleId":"dup","matchPath":"$.a"}])")),
      StartsWith(R"(/redactionRules/0/ruleId: rule id "dup" is used twice)"));
  EXPECT_THAT(
      ParseError(Doc(R"("redactionRules":[{"ruleId":"r","direction":"request","matchPath":"$.a"},
                  {"ruleId":"r","direction":"response","detector":"email"}])")),
      StartsWith(R"(/redactionRules/1/ruleId: rule id "r" is used twice)"));
}

TEST(ParseBundle, RefusesATransformWithoutPatches) {
  EXPECT_THAT(
      ParseError(Doc(R"("policyRules":[{"ruleId":"t","status":"transform","conditionDsl":"*"}])")),
      StartsWith(R"(/policyRules/0/patches: a "transform" rule needs patches)"));
}

TEST(ParseBundle, RefusesPatchesOnARuleThatIsNotATransform) {
  EXPECT_EQ(ParseError(Doc(R"("policyRules":[{"ruleId":"d","status":"deny","conditionDsl":"*",
                                "patches":[]}])")),
            R"(/policyRules/0/patches: only a "transform" rule has patches)");
}

TEST(ParseBundle, RefusesAPatchWithABadPointer) {
  EXPECT_EQ(ParseError(Doc(R"("policyRules":[{"ruleId":"t","status":"transform","conditionDsl":"*",
                         "patches":[{"op":"set","path":"/ok","value":1},
                                    {"op":"set","path":"limit","value":1}]}])")),
            "/policyRules/0/patches/1/path: a JSON pointer starts with '/' (e.g. "
            "\"/path/0/name\")");
  EXPECT_EQ(ParseError(Doc(R"("policyRules":[{"ruleId":"t","status":"transform","conditionDsl":"*",
                         "patches":[{"op":"remove","path":"/a~2"}]}])")),
            "/policyRules/0/patches/0/path: '~' must be followed by 0 or 1 in a JSON pointer");
  EXPECT_EQ(ParseError(Doc(R"("policyRules":[{"ruleId":"t","status":"transform","conditionDsl":"*",
                         "patches":[{"op":"set","path":"/a"}]}])")),
            R"(/policyRules/0/patches/0/value: required for "set")");
}

TEST(ParseBundle, RefusesAFixedWindowWithoutWindowSeconds) {
  EXPECT_EQ(ParseError(Doc(R"("rateLimitRules":[{"ruleId":"r","limit":5}])")),
            "/rateLimitRules/0/windowSeconds: required: a window length in seconds, above 0");
}

TEST(ParseBundle, RefusesATokenBucketWithoutRefillPerSecond) {
  EXPECT_EQ(
      ParseError(Doc(R"("rateLimitRules":[{"ruleId":"r","algorithm":"token-bucket","burst":5}])")),
      "/rateLimitRules/0/refillPerSecond: required: tokens added per second, above 0");
}

TEST(ParseBundle, RefusesAnUnknownKeyTemplatePlaceholder) {
  EXPECT_EQ(ParseError(Doc(R"("rateLimitRules":[{"ruleId":"r","limit":5,"windowSeconds":1,
                                                  "keyTemplate":"{tenant}:{usr}"}])")),
            "/rateLimitRules/0/keyTemplate: unknown placeholder {usr}; use {tenant}, {user}, "
            "{agent}, {tool} or {method}");
}

TEST(ParseBundle, RefusesAnUnknownDetector) {
  EXPECT_THAT(ParseError(Doc(R"("redactionRules":[{"ruleId":"x","detector":"phone"}])")),
              StartsWith(R"(/redactionRules/0/detector: unknown detector "phone"; )"));
}

TEST(ParseBundle, RefusesARedactionRuleWithTwoKinds) {
  EXPECT_THAT(ParseError(Doc(R"("redactionRules":[{"ruleId":"ok","detector":"email"},
                   {"ruleId":"both","detector":"email","pattern":"x+"}])")),
              StartsWith(R"(/redactionRules/1: rule "both" needs exactly one of "matchPath")"));
}

TEST(ParseBundle, RefusesABadRe2PatternNamingTheRule) {
  std::string error = ParseError(Doc(R"json("redactionRules":[{"ruleId":"ok","detector":"email"},
                                              {"ruleId":"broken","pattern":"(unclosed"}])json"));
  EXPECT_THAT(error, StartsWith("/redactionRules/1/pattern: "));
  EXPECT_THAT(error, HasSubstr("\"broken\""));
}

TEST(ParseBundle, RefusesANegativePrice) {
  EXPECT_EQ(ParseError(Doc(R"("pricing":{"inputTokenPriceUsd":-0.1})")),
            "/pricing/inputTokenPriceUsd: a price cannot be negative");
  EXPECT_EQ(ParseError(Doc(R"("pricing":{"tools":{"a/b":{"requestBaseFeeUsd":-1}}})")),
            "/pricing/tools/a~1b/requestBaseFeeUsd: a price cannot be negative");
}

TEST(ParseBundle, RefusesAnUnknownRequireIdentityValue) {
  EXPECT_EQ(ParseError(Doc(R"("requireIdentity":["user","roles"])")),
            R"(/requireIdentity/1: "roles" is not one of "tenant", "user", "agent", "scopes")");
}

TEST(ParseBundle, RefusesAnUnknownStageInStageModes) {
  EXPECT_THAT(ParseError(Doc(R"("tenants":{"acme":{"stages":{"ratelimit":{"mode":"observe"}}}})")),
              StartsWith("/tenants/acme/stages/ratelimit: unknown stage; "));
}

// bundle > bundle stage > tenant > tenant stage, each level tested with the ones above it set.
TEST(BundleModeFor, PrefersTenantStageThenTenantThenBundleStageThenBundle) {
  std::shared_ptr<const Bundle> b = MustParse(R"({
    "bundleVersion": "v", "mode": "observe",
    "stages": {"policy": {"mode": "enforce"}, "auth": {"mode": "enforce"}},
    "tenants": {
      "acme": {"mode": "enforce", "stages": {"policy": {"mode": "observe"}}},
      "initech": {"stages": {"auth": {"mode": "observe"}}}
    }})");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->ModeFor("report", "nobody"), Mode::kObserve);   // bundle
  EXPECT_EQ(b->ModeFor("policy", "nobody"), Mode::kEnforce);   // bundle stage
  EXPECT_EQ(b->ModeFor("report", "acme"), Mode::kEnforce);     // tenant over bundle
  EXPECT_EQ(b->ModeFor("auth", "acme"), Mode::kEnforce);       // tenant over bundle stage
  EXPECT_EQ(b->ModeFor("policy", "acme"), Mode::kObserve);     // tenant stage over all
  EXPECT_EQ(b->ModeFor("auth", "initech"), Mode::kObserve);    // tenant stage, no tenant mode
  EXPECT_EQ(b->ModeFor("policy", "initech"), Mode::kEnforce);  // falls to the bundle stage
  EXPECT_EQ(b->ModeFor("trace", "initech"), Mode::kObserve);   // falls to the bundle
}

TEST(Pricing, UsesAToolsPricesOverTheDefaults) {
  std::shared_ptr<const Bundle> b = MustParse(kFullBundle);
  ASSERT_NE(b, nullptr);
  const Price& search = b->pricing.For("search");
  EXPECT_DOUBLE_EQ(search.request_base_fee_usd, 0.001);     // inherited
  EXPECT_DOUBLE_EQ(search.input_token_price_usd, 0.00001);  // inherited
  EXPECT_DOUBLE_EQ(search.output_token_price_usd, 0.0001);  // its own
  const Price& other = b->pricing.For("read_file");
  EXPECT_EQ(&other, &b->pricing.defaults);
  EXPECT_DOUBLE_EQ(other.output_token_price_usd, 0.00003);
}

TEST(ParseBundle, ReadsTenantQuotasAndFillsWhatATenantLeavesOutFromTheDefaults) {
  std::shared_ptr<const Bundle> b = MustParse(Doc(R"("tenants": {
    "acme": {"callsPerMinute": 600, "concurrentSessions": 20, "costBudgetUsdPerDay": 5.0},
    "globex": {"callsPerMinute": 1e3, "mode": "observe"},
    "trial": {"mode": "observe"},
    "*": {"callsPerMinute": 60, "costBudgetUsdPerDay": 0.5}})"));
  ASSERT_NE(b, nullptr);
  const TenantQuota* acme = b->QuotaFor("acme");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->calls_per_minute, 600u);
  EXPECT_EQ(acme->concurrent_sessions, 20u);
  EXPECT_EQ(acme->cost_budget_usd_per_day, 5.0);

  const TenantQuota* globex = b->QuotaFor("globex");
  ASSERT_NE(globex, nullptr);
  EXPECT_EQ(globex->calls_per_minute, 1000u);             // its own
  EXPECT_EQ(globex->cost_budget_usd_per_day, 0.5);        // from "*"
  EXPECT_FALSE(globex->concurrent_sessions.has_value());  // set nowhere: unlimited
  EXPECT_EQ(b->tenants.at("globex").mode, Mode::kObserve);

  // An entry that only sets a mode still gets the defaults; so does a tenant with no entry.
  const TenantQuota* trial = b->QuotaFor("trial");
  ASSERT_NE(trial, nullptr);
  EXPECT_EQ(trial->calls_per_minute, 60u);
  const TenantQuota* stranger = b->QuotaFor("initech");
  ASSERT_NE(stranger, nullptr);
  EXPECT_EQ(stranger, b->QuotaFor(""));
  EXPECT_EQ(stranger->calls_per_minute, 60u);
  EXPECT_EQ(stranger->cost_budget_usd_per_day, 0.5);
  EXPECT_FALSE(stranger->concurrent_sessions.has_value());
  EXPECT_TRUE(b->HasQuotas());
}

TEST(ParseBundle, LeavesATenantWithoutAnyQuotaUnlimited) {
  std::shared_ptr<const Bundle> b =
      MustParse(Doc(R"("tenants": {"acme": {"mode": "observe"}, "beta": {"callsPerMinute": 0}})"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->QuotaFor("acme"), nullptr);
  EXPECT_EQ(b->QuotaFor("nobody"), nullptr);  // no "*": nobody else is limited
  ASSERT_NE(b->QuotaFor("beta"), nullptr);
  EXPECT_EQ(b->QuotaFor("beta")->calls_per_minute, 0u);  // 0 is a limit: every call refused
  EXPECT_TRUE(b->HasQuotas());
  EXPECT_FALSE(MustParse(Doc(R"("tenants": {"acme": {"mode": "observe"}})"))->HasQuotas());
  EXPECT_FALSE(MustParse(Doc(R"("mode": "enforce")"))->HasQuotas());
}

TEST(ParseBundle, RefusesBadTenantQuotasNamingTheirPointer) {
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"acme":{"callsPerMinute":1.5}})")),
            "/tenants/acme/callsPerMinute: expected a whole number ≥ 0, found a fraction or a "
            "negative number");
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"acme":{"callsPerMinute":-3}})")),
            "/tenants/acme/callsPerMinute: expected a whole number ≥ 0, found a negative number");
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"a/b":{"concurrentSessions":"20"}})")),
            "/tenants/a~1b/concurrentSessions: expected a whole number ≥ 0, found a string");
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"acme":{"concurrentSessions":4294967296}})")),
            "/tenants/acme/concurrentSessions: too large: at most 4294967295");
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"*":{"costBudgetUsdPerDay":-1}})")),
            "/tenants/*/costBudgetUsdPerDay: a budget cannot be negative (0 refuses every call)");
  EXPECT_EQ(ParseError(Doc(R"("tenants":{"acme":{"costBudgetUsdPerDay":true}})")),
            "/tenants/acme/costBudgetUsdPerDay: expected a number, found a boolean");
  EXPECT_THAT(ParseError(Doc(R"("tenants":{"acme":{"callsPerMinut":5}})")),
              StartsWith("/tenants/acme/callsPerMinut: unknown key; expected one of: "));
  EXPECT_THAT(ParseError(Doc(R"("tenants":{"acme":{"callsPerMinut":5}})")),
              HasSubstr("callsPerMinute"));
}

TEST(ParseBundle, RefusesModesInTheDefaultTenantEntry) {
  // Modes do not fall back to "*": accepting one there would silently do nothing.
  EXPECT_THAT(ParseError(Doc(R"("tenants":{"*":{"mode":"observe"}})")),
              StartsWith("/tenants/*/mode: the \"*\" entry holds default quotas only"));
  EXPECT_THAT(ParseError(Doc(R"("tenants":{"*":{"stages":{"quota":{"mode":"observe"}}}})")),
              StartsWith("/tenants/*/stages: the \"*\" entry holds default quotas only"));
}

TEST(ParseBundle, AcceptsQuotaAsAStageForModes) {
  std::shared_ptr<const Bundle> b = MustParse(Doc(R"("stages":{"quota":{"mode":"observe"}})"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->ModeFor("quota", "acme"), Mode::kObserve);
  EXPECT_EQ(b->ModeFor("rate_limit", "acme"), Mode::kEnforce);
}

}  // namespace
}  // namespace mcpmw::policy
