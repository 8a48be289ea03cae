#include "src/eval/pipeline.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/sha256.h"
#include "tests/eval/vectors.h"

namespace mcpmw::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

const JsonValue& At(const JsonValue& v, std::string_view key) {
  static const JsonValue kMissing;
  const JsonValue* found = v.Find(key);
  return found != nullptr ? *found : kMissing;
}

class E2eVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(E2eVectors, ReproducesTheReportWithStandardRateLimitShaFieldForField) {
  const JsonValue vector = testing::LoadVectorFile(GetParam());
  const PipelineResult result = RunPipeline(At(vector, "input"));
  const JsonValue& expected = At(vector, "seedOutputWithStandardRateLimitSha");
  EXPECT_TRUE(result.report == expected)
      << "expected " << StringifyJson(expected) << "\n  actual " << StringifyJson(result.report);
  // Same members in the same order, same number text: the --json output is the seed's bytes.
  EXPECT_EQ(StringifyJson(result.report), StringifyJson(expected));
}

TEST_P(E2eVectors, SummaryMatchesTheSeedTestsExpectation) {
  const JsonValue vector = testing::LoadVectorFile(GetParam());
  const Summary s = RunPipeline(At(vector, "input")).summary;
  const JsonValue& expected = At(vector, "expected");
  EXPECT_EQ(s.passed, At(expected, "passed").as_bool());
  EXPECT_EQ(s.error_count, At(expected, "errorCount").as_number());
  EXPECT_EQ(s.warning_count, At(expected, "warningCount").as_number());
  std::vector<std::string> categories;
  for (const JsonValue& c : At(expected, "categories").items()) {
    categories.push_back(c.as_string());
  }
  EXPECT_THAT(s.categories, ElementsAreArray(categories));
}

TEST_P(E2eVectors, EveryIntermediateArtifactMatchesTheSeeds) {
  const JsonValue vector = testing::LoadVectorFile(GetParam());
  const Artifacts a = RunPipeline(At(vector, "input")).artifacts;
  const JsonValue& seed = At(vector, "seedArtifacts");
  const std::pair<const char*, const JsonValue*> pairs[] = {
      {"normalizedContext", &a.normalized_context},
      {"authEvaluation", &a.auth},
      {"policyEvaluation", &a.policy},
      {"toolFilterDecision", &a.tool_filter},
      {"redactedRequest", &a.redacted_request},
      {"upstreamExecutionResult", &a.upstream},
      {"redactedResponse", &a.redacted_response},
      {"traceRecordSet", &a.trace},
      {"costMeteringRecord", &a.cost},
  };
  for (const auto& [name, actual] : pairs) {
    EXPECT_TRUE(*actual == At(seed, name)) << name << ": expected " << StringifyJson(At(seed, name))
                                           << "\n  actual " << StringifyJson(*actual);
  }
  // The seed's rate-limit id came from its broken hash (B6); everything else is the same, and
  // ours is real SHA-256 of invocationId + "rate-limit" + status + (reason or "none").
  JsonValue seed_rate_limit = At(seed, "rateLimitDecision");
  JsonValue rate_limit = a.rate_limit;
  EXPECT_NE(At(rate_limit, "decisionId"), At(seed_rate_limit, "decisionId"));
  const std::string reason = rate_limit.Find("deniedReasonCode") != nullptr
                                 ? At(rate_limit, "deniedReasonCode").as_string()
                                 : "none";
  EXPECT_EQ(At(rate_limit, "decisionId").as_string(),
            Sha256Hex({At(a.normalized_context, "invocationId").as_string(), "rate-limit",
                       At(rate_limit, "status").as_string(), reason}));
  rate_limit.Erase("decisionId");
  seed_rate_limit.Erase("decisionId");
  EXPECT_TRUE(rate_limit == seed_rate_limit) << StringifyJson(rate_limit);
}

TEST_P(E2eVectors, DiffersFromTheSeedsPrintedReportOnlyInTheTwoHashedIds) {
  const JsonValue vector = testing::LoadVectorFile(GetParam());
  JsonValue report = RunPipeline(At(vector, "input")).report;
  JsonValue seed = At(vector, "seedOutput");
  EXPECT_NE(At(report, "executionReportId"), At(seed, "executionReportId"));
  for (JsonValue* r : {&report, &seed}) {
    r->Erase("executionReportId");
    for (JsonValue& row : r->Find("middlewareDecisions")->items()) {
      if (At(row, "stage").as_string() == "rate-limit") {
        row.Erase("decisionId");
      }
    }
  }
  EXPECT_TRUE(report == seed) << StringifyJson(report);
}

INSTANTIATE_TEST_SUITE_P(Prototype, E2eVectors,
                         ::testing::Values("e2e-01-clean-input-passes.json",
                                           "e2e-02-input-with-errors-fails.json",
                                           "e2e-03-warnings-only-passes.json"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return "E2e0" + std::to_string(info.index + 1);
                         });

JsonValue CleanInput() {
  return At(testing::LoadVectorFile("e2e-01-clean-input-passes.json"), "input");
}

// The spec's fourth e2e case (kept out of vectors/, seed-spec §10.14 row 4), rebuilt from its
// description: a transform `*` rule, an exceeded user limit and a private catalog entry. The rate
// limiter precedes request redaction in the dispatcher's order, so the answer is 429, not 403.
TEST(EvalPipeline, RateLimitOutranksTheToolFilterInTheDispatchersOrder) {
  JsonValue input = CleanInput();
  input.Set("invocationIdHint", "inv-multi");
  input.Set("policyRules", *ParseJson(R"([{"ruleId": "transform-all", "stage": "policy",
      "status": "transform", "conditionDsl": "*", "reasonCode": "policy-transform",
      "priority": 10}])"));
  input.Set("rateLimitRules", *ParseJson(R"([{"ruleId": "user-limit", "dimension": "user",
      "windowSeconds": 60, "limit": 1, "keyTemplate": "{tenantId}:{userId}"}])"));
  input.Find("toolCatalog")->items()[0].Set("visibility", "private");
  input.Find("usageSnapshot")
      ->Set("historicalCallsInWindow", *ParseJson(R"({"tenant-acme:user-1": 5})"));

  const PipelineResult r = RunPipeline(input);
  EXPECT_EQ(At(r.report, "finalStatus").as_string(), "blocked");
  EXPECT_EQ(At(At(r.report, "response"), "httpStatusCode").as_number(), 429);
  EXPECT_EQ(At(r.artifacts.upstream, "blockedByStage").as_string(), "rate-limit");
  EXPECT_EQ(At(r.artifacts.rate_limit, "retryAfterSeconds").as_number(), 60);
  EXPECT_EQ(At(At(r.artifacts.tool_filter, "blockedTools").items()[0], "reasonCode").as_string(),
            "tool-private");
  EXPECT_FALSE(r.summary.passed);
  EXPECT_EQ(r.summary.error_count, 5);
  EXPECT_EQ(r.summary.warning_count, 3);
  EXPECT_THAT(r.summary.categories,
              ElementsAre("cost-meter", "dispatch", "policy", "rate-limit", "request-redaction",
                          "response-redaction", "tool-filter", "trace"));
}

TEST(EvalPipeline, EmptyObjectTakesTheNormalizerFallbackAndIsBlocked) {
  const PipelineResult r = RunPipeline(JsonValue::Object());
  EXPECT_EQ(At(r.report, "invocationId").as_string(), Sha256Hex("{}"));
  EXPECT_EQ(At(r.report, "finalStatus").as_string(), "blocked");
  EXPECT_EQ(At(At(r.report, "response"), "httpStatusCode").as_number(), 403);
  EXPECT_EQ(At(At(r.report, "cost"), "totalUsd").as_number(), 0);
  EXPECT_EQ(At(r.artifacts.auth, "reasonCode").as_string(), "auth-missing-principal");
}

TEST(EvalPipeline, MissingToolCatalogWipesIdentityAsInThePrototype) {
  JsonValue input = CleanInput();
  input.Erase("toolCatalog");
  const PipelineResult r = RunPipeline(input);
  EXPECT_EQ(At(r.artifacts.normalized_context, "invocationId").as_string(),
            Sha256Hex(CanonicalJson(input)));
  EXPECT_EQ(At(r.artifacts.auth, "reasonCode").as_string(), "auth-missing-principal");
}

TEST(EvalPipeline, SameInputGivesTheSameBytes) {
  const JsonValue input = CleanInput();
  EXPECT_EQ(StringifyJson(RunPipeline(input).report), StringifyJson(RunPipeline(input).report));
}

TEST(EvalPipeline, ApiKeyArgumentIsReportedAsSensitive) {
  JsonValue input = CleanInput();
  input.Find("envelope")->Find("toolCall")->Find("arguments")->Set("apiKey", "k");
  const PipelineResult r = RunPipeline(input);
  EXPECT_TRUE(At(At(r.report, "response"), "containsSensitiveData").as_bool());
  EXPECT_TRUE(r.summary.passed);
}

}  // namespace
}  // namespace mcpmw::eval
