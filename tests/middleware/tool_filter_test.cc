#include "src/middleware/tool_filter.h"

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
using test_support::Frame;
using test_support::Session;

constexpr std::string_view kCatalog = R"({"bundleVersion":"v","toolCatalog":[
  {"toolName":"secret_tool","visibility":"private"},
  {"toolName":"admin_tool","visibility":"restricted","scopeRequirements":["admin"]},
  {"toolName":"read_file","scopeRequirements":["read"]},
  {"toolName":"elsewhere","serverId":"other","visibility":"private"},
  {"toolName":"rm"}],
  "policyRules":[{"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";

constexpr std::string_view kListRequest = R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";

// A tools/list page: `tools` written with the whitespace servers use, and members after it.
std::string ListResponse(std::string_view tools) {
  return std::string(R"({"jsonrpc":"2.0","id":2,"result":{"tools": )") + std::string(tools) +
         R"(, "nextCursor": "cGFnZTI=", "_meta": {"x": [1, 2]}}})";
}

constexpr std::string_view kReadFile =
    R"({"name": "read_file", "description": "Reads a file", "inputSchema": {"type": "object"}})";

TEST(ToolFilterStage, CutsHiddenToolsOutOfAToolsListAndKeepsEveryOtherByte) {
  Session s(kCatalog);
  s.claimed.scopes = {"read"};
  const std::string response =
      ListResponse(std::string("[") + std::string(kReadFile) +
                   R"(, {"name": "secret_tool"}, {"name": "admin_tool", "x": 1}, {"name": "rm"},)"
                   R"( {"name": "elsewhere"}, {"name": "uncataloged"}])");
  auto ex = s.Call(kListRequest, response);
  ASSERT_TRUE(ex->response_verdict.IsContinue());
  // Kept: read_file (has "read"), elsewhere (its entry is for another server) and uncataloged
  // (visible by default); hidden: private, missing scope, denied by policy.
  EXPECT_EQ(ex->returned, ListResponse(std::string("[") + std::string(kReadFile) +
                                       R"(,{"name": "elsewhere"},{"name": "uncataloged"}])"));
  const Decision* d = FindDecision(ex->ctx, "tool_filter");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_EQ(d->reason_code, "tool-filter:hidden-3");
}

TEST(ToolFilterStage, DropsEntriesItCannotReadInsteadOfPassingTheListThrough) {
  Session s(kCatalog);
  auto ex = s.Call(kListRequest,
                   ListResponse(R"([{"name": "secret_tool"}, "junk", {"description": "no name"},)"
                                R"( {"name": 5}, {"name": "ok"}])"));
  EXPECT_EQ(ex->returned, ListResponse(R"([{"name": "ok"}])"));
  const Decision* d = FindDecision(ex->ctx, "tool_filter");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason_code, "tool-filter:hidden-4");
}

TEST(ToolFilterStage, NeverPassesAHiddenToolThroughABrokenList) {
  Session s(kCatalog);
  for (std::string_view tools : {R"([{"name": "secret_tool"}, {"name": }])",
                                 R"([{"name": "secret_tool"}, {"name": "a" "b"}])",
                                 R"([{"name": "secret_tool"} {"name": "ok"}])"}) {
    auto ex = s.Call(kListRequest, ListResponse(tools));
    EXPECT_EQ(ex->returned.find("secret_tool"), std::string::npos) << ex->returned;
  }
}

TEST(ToolFilterStage, HidesUncatalogedToolsWhenTheBundleSaysSo) {
  Session s(R"({"bundleVersion":"v","uncatalogedTools":"hidden",
                "toolCatalog":[{"toolName":"listed"}]})");
  auto ex = s.Call(kListRequest, ListResponse(R"([{"name": "unlisted"}, {"name": "listed"}])"));
  EXPECT_EQ(ex->returned, ListResponse(R"([{"name": "listed"}])"));
}

TEST(ToolFilterStage, ReturnsAnEmptyPageWithItsCursorWhenEverythingIsHidden) {
  Session s(kCatalog);
  auto ex = s.Call(kListRequest, ListResponse(R"([{"name": "secret_tool"}])"));
  EXPECT_EQ(ex->returned, ListResponse("[]"));
}

TEST(ToolFilterStage, LeavesAListWithNothingHiddenUntouched) {
  Session s(kCatalog);
  s.claimed.scopes = {"READ", "admin"};
  const std::string response =
      ListResponse(std::string("[") + std::string(kReadFile) + R"(, {"name": "admin_tool"}])");
  auto ex = s.Call(kListRequest, response);
  EXPECT_EQ(ex->returned, response);
  EXPECT_FALSE(ex->ctx.rewritten.has_value());
  const Decision* d = FindDecision(ex->ctx, "tool_filter");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "tool-filter:hidden-0");
}

TEST(ToolFilterStage, LeavesAnErrorAnswerToToolsListAlone) {
  Session s(kCatalog);
  const std::string error = R"({"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"boom"}})";
  auto ex = s.Call(kListRequest, error);
  EXPECT_EQ(ex->returned, error);
  EXPECT_EQ(FindDecision(ex->ctx, "tool_filter"), nullptr);
}

TEST(ToolFilterStage, RejectsACallOfAPrivateTool) {
  Session s(kCatalog);
  auto ex = s.Call(
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"secret_tool"}})", "");
  const Verdict& v = ex->request_verdict;
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32012);
  EXPECT_EQ(v.message, R"(Tool "secret_tool" is not available to you.)");
  EXPECT_EQ(
      v.data_json,
      R"({"stage":"tool_filter","reasonCode":"tool-private","decisionId":"s-1:tool_filter"})");
  EXPECT_EQ(ex->forwarded, "");
  const Decision* d = FindDecision(ex->ctx, "tool_filter");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "tool-private");
  EXPECT_EQ(ex->ctx.DecisionId(d->stage), "s-1:tool_filter");
}

TEST(ToolFilterStage, RejectsACallWithoutTheRequiredScope) {
  Session s(kCatalog);
  s.claimed.scopes = {"read"};
  auto ex = s.Call(
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"admin_tool"}})", "");
  EXPECT_EQ(ex->request_verdict.code, kCodeToolHidden);
  EXPECT_EQ(
      ex->request_verdict.data_json,
      R"({"stage":"tool_filter","reasonCode":"missing-scope","decisionId":"s-1:tool_filter"})");
}

TEST(ToolFilterStage, RejectsACallOfAnUncatalogedToolWhenHidden) {
  Session s(R"({"bundleVersion":"v","uncatalogedTools":"hidden"})");
  auto ex = s.Call(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}})", "");
  EXPECT_EQ(ex->request_verdict.code, kCodeToolHidden);
  EXPECT_EQ(
      ex->request_verdict.data_json,
      R"({"stage":"tool_filter","reasonCode":"tool-uncataloged","decisionId":"s-1:tool_filter"})");
}

TEST(ToolFilterStage, AllowsACallOfAVisibleTool) {
  Session s(kCatalog);
  s.claimed.scopes = {"read"};
  auto ex =
      s.Call(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file"}})",
             R"({"jsonrpc":"2.0","id":3,"result":{}})");
  EXPECT_TRUE(ex->request_verdict.IsContinue());
  const Decision* d = FindDecision(ex->ctx, "tool_filter");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "tool-filter:allowed");
}

TEST(ToolFilterStage, NamesAPolicyDeniedToolAsHiddenByPolicy) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(kCatalog);
  ASSERT_TRUE(bundle.ok());
  ToolFilterStage stage(**bundle);
  MessageContext ctx;
  ctx.server_id = "fs";
  ctx.principal.scopes = {"admin", "read"};
  EXPECT_EQ(stage.HiddenBecause(ctx, "rm"), "policy-deny");
  EXPECT_EQ(stage.HiddenBecause(ctx, "secret_tool"), "tool-private");
  EXPECT_EQ(stage.HiddenBecause(ctx, "admin_tool"), "");
  EXPECT_EQ(stage.HiddenBecause(ctx, "elsewhere"), "");
  ctx.server_id = "other";
  EXPECT_EQ(stage.HiddenBecause(ctx, "elsewhere"), "tool-private");

  // Called directly (the chain's policy stage would refuse it first with -32011).
  Frame frame(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rm"}})");
  ctx.envelope = &frame.envelope();
  ctx.payload = frame.view();
  ctx.invocation_id = "s-9";
  ctx.method = "tools/call";
  ctx.tool_name = "rm";
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.code, kCodeToolHidden);
  EXPECT_EQ(v.data_json,
            R"({"stage":"tool_filter","reasonCode":"policy-deny","decisionId":"s-9:tool_filter"})");
}

TEST(ToolFilterStage, DoesNotEnforceDenyRulesOfAPolicyStageInObserveMode) {
  constexpr std::string_view kObservedPolicy = R"({"bundleVersion":"v",
    "tenants":{"acme":{"stages":{"policy":{"mode":"observe"}}}},
    "policyRules":[{"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";
  const std::string call =
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rm"}})";
  Session observed(kObservedPolicy, "acme");
  observed.claimed.tenant = "acme";
  auto ex = observed.Call(call, R"({"jsonrpc":"2.0","id":3,"result":{}})");
  EXPECT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, call);
  auto list = observed.Call(kListRequest, ListResponse(R"([{"name": "rm"}])"));
  EXPECT_EQ(list->returned, ListResponse(R"([{"name": "rm"}])"));

  // The same bundle for a tenant whose policy stage enforces.
  Session enforced(kObservedPolicy, "initech");
  enforced.claimed.tenant = "initech";
  auto list2 = enforced.Call(kListRequest, ListResponse(R"([{"name": "rm"}])"));
  EXPECT_EQ(list2->returned, ListResponse("[]"));
}

TEST(ToolFilterStage, KeepsPrettyPrintedToolsExactly) {
  Session s(kCatalog);
  auto ex = s.Call(kListRequest, ListResponse("[\n    {\n      \"name\": \"a\"\n    },\n"
                                              "    {\"name\": \"secret_tool\"} ,\n"
                                              "    {\"name\": \"b\"}\n  ]"));
  // Each kept tool goes out as the server wrote it (the last one with the whitespace before `]`).
  EXPECT_EQ(ex->returned, ListResponse("[{\n      \"name\": \"a\"\n    },{\"name\": \"b\"}\n  ]"));
}

TEST(ToolFilterStage, AnArgumentConditionNeverHidesATool) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::ParseBundle(R"({"bundleVersion":"v","policyRules":[{"ruleId":"d","status":"deny",
        "conditionDsl":"tool.name == \"read_file\" && args.path startsWith \"/etc\""}]})");
  ASSERT_TRUE(bundle.ok());
  ToolFilterStage stage(**bundle);
  MessageContext ctx;
  EXPECT_EQ(stage.HiddenBecause(ctx, "read_file"), "");
}

}  // namespace
}  // namespace mcpmw::middleware
