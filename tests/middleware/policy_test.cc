#include "src/middleware/policy.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::FindDecision;
using test_support::Session;
using test_support::StageIndex;

using ::testing::ElementsAre;

std::string ToolCall(std::string_view tool, std::string_view arguments) {
  return std::string(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":")") +
         std::string(tool) + R"(","arguments":)" + std::string(arguments) + "}}";
}

constexpr std::string_view kOk = R"({"jsonrpc":"2.0","id":7,"result":{"content":[]}})";

constexpr std::string_view kDenyDelete = R"({"bundleVersion":"v1","policyRules":[
  {"ruleId":"allow-all","status":"allow","conditionDsl":"*","priority":100},
  {"ruleId":"deny-delete","status":"deny","conditionDsl":"tool.name == \"delete_file\"",
   "priority":1,"reasonCode":"no-delete","message":"Deleting files is not allowed."}]})";

TEST(PolicyStage, DeniesAMatchingCallWithPolicyDeniedAndTheRuleInData) {
  Session s(kDenyDelete);
  auto ex = s.Call(ToolCall("delete_file", R"({"path":"/tmp/x"})"), kOk);
  const Verdict& v = ex->request_verdict;
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32011);
  EXPECT_EQ(v.message, "Deleting files is not allowed.");
  EXPECT_EQ(v.data_json, R"({"stage":"policy","reasonCode":"no-delete",)"
                         R"("decisionId":"s-1:policy","ruleId":"deny-delete"})");
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_FALSE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.policy.status, policy::RuleStatus::kDeny);
  EXPECT_EQ(ex->ctx.policy.rule_id, "deny-delete");
  EXPECT_EQ(ex->ctx.policy.reason_code, "no-delete");
  const Decision* d = FindDecision(ex->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "no-delete");
  EXPECT_TRUE(d->enforced);
  const StageCounters& c = s.snapshot->chain.counters(StageIndex(s.snapshot->chain, "policy"));
  EXPECT_EQ(c.evaluated, 1u);
  EXPECT_EQ(c.rejected, 1u);
}

TEST(PolicyStage, DenyWinsOverAHigherPriorityAllow) {
  Session s(kDenyDelete);
  auto denied = s.Call(ToolCall("delete_file", "{}"), kOk);
  EXPECT_EQ(denied->request_verdict.code, kCodePolicyDenied);
  auto allowed = s.Call(ToolCall("read_file", "{}"), kOk);
  EXPECT_TRUE(allowed->request_verdict.IsContinue());
  EXPECT_EQ(allowed->ctx.policy.status, policy::RuleStatus::kAllow);
  EXPECT_EQ(allowed->ctx.policy.rule_id, "allow-all");
  const Decision* d = FindDecision(allowed->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "policy-allow");
}

TEST(PolicyStage, RecordsNoRuleWhenNoConditionMatches) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"d","status":"deny","conditionDsl":"tool.name == \"x\""}]})");
  auto ex = s.Call(ToolCall("y", "{}"), kOk);
  EXPECT_TRUE(ex->request_verdict.IsContinue());
  const Decision* d = FindDecision(ex->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "policy:no-rule");
}

TEST(PolicyStage, RecordsNothingForABundleWithoutRules) {
  Session s(R"({"bundleVersion":"v"})");
  auto ex = s.Call(ToolCall("y", "{}"), kOk);
  EXPECT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(FindDecision(ex->ctx, "policy"), nullptr);
}

TEST(PolicyStage, DeniesByArgumentCondition) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"no-etc","status":"deny","conditionDsl":"args.path startsWith \"/etc\"",
     "reasonCode":"system-path"}]})");
  auto etc = s.Call(ToolCall("read_file", R"({"path":"/etc/passwd"})"), kOk);
  EXPECT_EQ(etc->request_verdict.code, kCodePolicyDenied);
  EXPECT_EQ(etc->request_verdict.data_json,
            R"({"stage":"policy","reasonCode":"system-path","decisionId":"s-1:policy",)"
            R"("ruleId":"no-etc"})");
  auto tmp = s.Call(ToolCall("read_file", R"({"path":"/tmp/etc"})"), kOk);
  EXPECT_TRUE(tmp->request_verdict.IsContinue());
  auto none = s.Call(ToolCall("read_file", R"({})"), kOk);
  EXPECT_TRUE(none->request_verdict.IsContinue());
  EXPECT_EQ(s.sequence, 4u);
}

TEST(PolicyStage, CannotBeBypassedWithADuplicateArgument) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"no-etc","status":"deny","conditionDsl":"args.path startsWith \"/etc\""}]})");
  // The condition would read the first "path"; a server reading the last would open /etc.
  auto ex = s.Call(ToolCall("read_file", R"({"path":"/tmp/x","path":"/etc/passwd"})"), kOk);
  EXPECT_EQ(ex->request_verdict.kind, Verdict::Kind::kReject);
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_FALSE(ex->ctx.dispatched);
}

TEST(PolicyStage, AppliesTransformPatchesToTheArgumentsAndKeepsEveryOtherByte) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"shape","status":"transform","conditionDsl":"tool.name == \"write\"","patches":[
      {"op":"set","path":"/opts/limit","value":10},
      {"op":"set","path":"/new/deep/v","value":true},
      {"op":"remove","path":"/secret"},
      {"op":"set","path":"/tags/-","value":"b"}]}]})");
  const std::string prefix =
      R"({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "write", )"
      R"("arguments": )";
  const std::string args =
      R"({"path": "/tmp/a", "opts": {"x": 1}, "tags": ["a"], "secret": "s3cr3t"})";
  const std::string suffix = R"(, "_meta": {"progressToken": 9}} })";
  auto ex = s.Call(prefix + args + suffix, kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(
      ex->forwarded,
      prefix +
          R"({"path":"/tmp/a","opts":{"x":1,"limit":10},"tags":["a","b"],"new":{"deep":{"v":true}}})" +
          suffix);
  EXPECT_EQ(ex->ctx.policy.status, policy::RuleStatus::kTransform);
  EXPECT_EQ(ex->ctx.policy.rule_id, "shape");
  EXPECT_THAT(ex->ctx.policy.applied_transforms, ElementsAre("shape"));
  const Decision* d = FindDecision(ex->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_EQ(d->reason_code, "policy-transform");
  // dispatch counted what was actually sent.
  EXPECT_EQ(ex->ctx.request_bytes, ex->forwarded.size());
}

TEST(PolicyStage, AppliesThePatchesOfTwoTransformRulesInRuleOrder) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"second","status":"transform","conditionDsl":"*","priority":1,
     "patches":[{"op":"set","path":"/mode","value":"strict"},
                {"op":"set","path":"/by","value":["second"]}]},
    {"ruleId":"first","status":"transform","conditionDsl":"*","priority":5,
     "patches":[{"op":"set","path":"/mode","value":"safe"},
                {"op":"set","path":"/by","value":["first"]},
                {"op":"set","path":"/only_first","value":1}]}]})");
  auto ex = s.Call(ToolCall("t", R"({"mode":"fast"})"), kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, ToolCall("t", R"({"mode":"strict","by":["second"],"only_first":1})"));
  EXPECT_EQ(ex->ctx.policy.rule_id, "first");
  EXPECT_THAT(ex->ctx.policy.applied_transforms, ElementsAre("first", "second"));
}

TEST(PolicyStage, AddsArgumentsToACallThatHasNone) {
  Session s(R"({"bundleVersion":"v","policyRules":[
    {"ruleId":"cap","status":"transform","conditionDsl":"*",
     "patches":[{"op":"set","path":"/limit","value":10}]}]})");
  auto ex = s.Call(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t"}})", kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(
      ex->forwarded,
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"limit":10},"name":"t"}})");
}

TEST(PolicyStage, InObserveModeRecordsTheDenyUnenforcedAndForwardsUnchanged) {
  Session s(R"({"bundleVersion":"v","stages":{"policy":{"mode":"observe"}},"policyRules":[
    {"ruleId":"no-etc","status":"deny","conditionDsl":"args.path startsWith \"/etc\""}]})");
  const std::string request = ToolCall("read_file", R"({"path":"/etc/shadow"})");
  auto ex = s.Call(request, kOk);
  EXPECT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, request);
  EXPECT_TRUE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.policy.status, policy::RuleStatus::kDeny);  // computed all the same
  const Decision* d = FindDecision(ex->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "policy-deny");
  EXPECT_FALSE(d->enforced);
  const StageCounters& c = s.snapshot->chain.counters(StageIndex(s.snapshot->chain, "policy"));
  EXPECT_EQ(c.observed, 1u);
  EXPECT_EQ(c.rejected, 0u);
}

TEST(PolicyStage, InObserveModeDoesNotApplyTransforms) {
  Session s(R"({"bundleVersion":"v","stages":{"policy":{"mode":"observe"}},"policyRules":[
    {"ruleId":"cap","status":"transform","conditionDsl":"*",
     "patches":[{"op":"set","path":"/limit","value":10}]}]})");
  const std::string request = ToolCall("t", R"({"limit":1000})");
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  const Decision* d = FindDecision(ex->ctx, "policy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_FALSE(d->enforced);
}

policy::ArgPatch Set(std::vector<std::string> tokens, std::string value) {
  return {.op = policy::ArgPatch::Op::kSet,
          .tokens = std::move(tokens),
          .value_json = std::move(value)};
}
policy::ArgPatch Remove(std::vector<std::string> tokens) {
  return {.op = policy::ArgPatch::Op::kRemove, .tokens = std::move(tokens)};
}

TEST(ApplyPatches, SetsReplacesRemovesAndAppends) {
  std::vector<policy::ArgPatch> patches = {
      Set({"a", "b"}, "2"),         // replace a nested member
      Set({"list", "1"}, "\"Y\""),  // replace an array element by index
      Remove({"list", "0"}),        // remove an array element
      Set({"list", "-"}, "3"),      // append
      Remove({"gone"}),             // absent: no-op
      Set({"s", "deeper"}, "{}"),   // through a scalar: replaces it
  };
  absl::StatusOr<std::string> out =
      ApplyPatches(R"({"a":{"b":1,"c":[1, 2]},"list":["x","y"],"s":"str"})", patches);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"a":{"b":2,"c":[1,2]},"list":["Y",3],"s":{"deeper":{}}})");
}

TEST(ApplyPatches, ReplacesTheWholeArgumentsWithTheEmptyPointer) {
  absl::StatusOr<std::string> out = ApplyPatches(R"({"a":1})", {{Set({}, R"({"b":2})")}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"b":2})");
}

TEST(ApplyPatches, EscapesNewMemberNames) {
  absl::StatusOr<std::string> out = ApplyPatches("{}", {{Set({"a\"b", "c/d"}, "1")}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"a\"b":{"c/d":1}})");
}

TEST(ApplyPatches, RefusesArgumentsThatAreNotJson) {
  absl::StatusOr<std::string> out = ApplyPatches("{not json", {{Set({"a"}, "1")}});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(out.status().message()), "the tool arguments are not JSON");
}

}  // namespace
}  // namespace mcpmw::middleware
