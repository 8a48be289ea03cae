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

namespace mcpmw::middleware {
namespace {

// A JSON-RPC message held the way a session holds a frame: simdjson's padding after the bytes,
// and the envelope read from them by the session's EnvelopeReader.
class Frame {
 public:
  explicit Frame(std::string_view json) : bytes_(json) {
    jsonrpc::EnvelopeReader reader;
    reader.Read(view(), &envelope_);
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  std::string_view view() const { return {bytes_.data(), bytes_.size()}; }
  const jsonrpc::Envelope& envelope() const { return envelope_; }

 private:
  simdjson::padded_string bytes_;
  jsonrpc::Envelope envelope_;
};

// One exchange and what the chain made of it.
struct Exchange {
  MessageContext ctx;
  Verdict request_verdict;
  std::string forwarded;  // what the server receives; empty when the chain stopped the request
  Verdict response_verdict;
  std::string returned;  // what the client receives when the response went through
};

// The real chain (BuildChain) over one bundle, driven the way src/proxy/governance.cc drives it.
class Session {
 public:
  explicit Session(std::string_view bundle_json, std::string tenant = "") {
    deps_.session_id = "s";
    deps_.sequence = &sequence;
    deps_.clock = &clock;
    deps_.rate_state = &rate_state;
    deps_.metrics = &metrics;
    deps_.report = [this](std::string report) { reports.push_back(std::move(report)); };
    deps_.tenant = std::move(tenant);
    Load(bundle_json);
  }

  // Parses `bundle_json` and rebuilds the chain over it with the same state.
  void Load(std::string_view bundle_json) {
    absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(bundle_json);
    if (!bundle.ok()) {
      ADD_FAILURE() << bundle.status();
      bundle = policy::ParseBundle(R"({"bundleVersion":"unparsable"})");
    }
    absl::StatusOr<std::shared_ptr<ChainSnapshot>> built = BuildChain(*bundle, deps_);
    if (!built.ok()) {
      ADD_FAILURE() << built.status();
      return;
    }
    snapshot = *std::move(built);
  }

  std::unique_ptr<Exchange> Begin(std::string_view request) {
    auto ex = std::make_unique<Exchange>();
    Frame frame(request);
    MessageContext& ctx = ex->ctx;
    ctx.direction = Direction::kClientToServer;
    ctx.envelope = &frame.envelope();
    ctx.payload = frame.view();
    ctx.bundle = snapshot->bundle.get();
    ctx.claimed = &claimed;
    ctx.server_id = server_id;
    ctx.started = clock.Now();
    ex->request_verdict = snapshot->chain.OnRequest(ctx);
    if (ex->request_verdict.IsContinue()) {
      ex->forwarded = std::string(ctx.current());
    } else {
      snapshot->chain.OnComplete(ctx);
    }
    ctx.envelope = nullptr;
    ctx.payload = {};
    return ex;
  }

  void Respond(Exchange& ex, std::string_view response) {
    Frame frame(response);
    MessageContext& ctx = ex.ctx;
    ctx.direction = Direction::kServerToClient;
    ctx.envelope = &frame.envelope();
    ctx.payload = frame.view();
    ctx.rewritten.reset();
    ex.response_verdict = snapshot->chain.OnResponse(ctx);
    if (ex.response_verdict.IsContinue()) {
      ex.returned = std::string(ctx.current());
    }
    snapshot->chain.OnComplete(ctx);
    ctx.envelope = nullptr;
    ctx.payload = {};
  }

  // A request and, when the chain lets it through, the server's `response` after `latency`.
  std::unique_ptr<Exchange> Call(std::string_view request, std::string_view response,
                                 Duration latency = std::chrono::milliseconds(3)) {
    std::unique_ptr<Exchange> ex = Begin(request);
    if (ex->request_verdict.IsContinue()) {
      clock.Advance(latency);
      Respond(*ex, response);
    }
    return ex;
  }

  ManualClock clock;
  uint64_t sequence = 1;
  RateLimitState rate_state;
  telemetry::Metrics metrics;
  std::vector<std::string> reports;
  Principal claimed;
  std::string server_id = "fs";
  std::shared_ptr<ChainSnapshot> snapshot;

 private:
  ChainDeps deps_;
};

const Decision* FindDecision(const MessageContext& ctx, std::string_view stage) {
  for (const Decision& d : ctx.decisions) {
    if (d.stage == stage) {
      return &d;
    }
  }
  return nullptr;
}

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
  EXPECT_EQ(d->decision_id, "s-1:tool_filter");
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
