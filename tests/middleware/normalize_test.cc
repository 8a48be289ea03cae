#include "src/middleware/normalize.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/jsonrpc/envelope.h"
#include "src/jsonrpc/errors.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::EnforcedDecision;
using test_support::Frame;
using ::testing::ElementsAre;

TEST(NormalizeStage, DeclaresItReadsTheEnvelopeAndWritesTheInvocation) {
  uint64_t sequence = 0;
  NormalizeStage stage("s", &sequence);
  EXPECT_EQ(stage.name(), "normalize");
  EXPECT_EQ(stage.reads(), Facts({Fact::kEnvelope}));
  EXPECT_EQ(stage.writes(), Facts({Fact::kInvocation}));
}

TEST(NormalizeStage, NumbersInvocationsFromTheSharedSequence) {
  uint64_t sequence = 41;
  NormalizeStage stage("sess", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  MessageContext first{.envelope = &frame.envelope(), .payload = frame.view()};
  MessageContext second{.envelope = &frame.envelope(), .payload = frame.view()};
  EXPECT_TRUE(stage.OnRequest(first).IsContinue());
  EXPECT_TRUE(stage.OnRequest(second).IsContinue());
  EXPECT_EQ(first.invocation_id, "sess-41");
  EXPECT_EQ(second.invocation_id, "sess-42");
  EXPECT_EQ(sequence, 43u);

  // A second stage over the same counter (a rebuilt chain) continues the numbering.
  NormalizeStage rebuilt("sess", &sequence);
  MessageContext third{.envelope = &frame.envelope(), .payload = frame.view()};
  rebuilt.OnRequest(third);
  EXPECT_EQ(third.invocation_id, "sess-43");
}

TEST(NormalizeStage, RecordsMethodAndToolNameOfAToolsCall) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(
      R"({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"read_file","arguments":{}}})");
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kContinue);
  EXPECT_EQ(ctx.method, "tools/call");
  EXPECT_EQ(ctx.tool_name, "read_file");
  EXPECT_TRUE(ctx.decisions.empty());
}

TEST(NormalizeStage, LeavesTheToolNameEmptyForOtherMethods) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}})");
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_EQ(ctx.method, "tools/list");
  EXPECT_EQ(ctx.tool_name, "");
}

TEST(NormalizeStage, RejectsAToolsCallWithoutAToolName) {
  uint64_t sequence = 7;
  NormalizeStage stage("s", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{}}})");
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, jsonrpc::kInvalidParams);
  EXPECT_EQ(v.message, "tools/call needs params.name, the name of the tool to call.");
  EXPECT_EQ(
      v.data_json,
      R"({"stage":"normalize","reasonCode":"invalid-tool-call","decisionId":"s-7:normalize"})");
  ASSERT_THAT(ctx.decisions,
              ElementsAre(EnforcedDecision("normalize", "deny", "invalid-tool-call")));
  EXPECT_EQ(ctx.DecisionId(ctx.decisions[0].stage), "s-7:normalize");
}

TEST(NormalizeStage, RejectsAToolsCallWhoseNameIsNotAString) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":42}})");
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, jsonrpc::kInvalidParams);
}

TEST(NormalizeStage, RejectsARequestThatNamesAMemberTwice) {
  uint64_t sequence = 2;
  NormalizeStage stage("s", &sequence);
  for (std::string_view json : {
           R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
           R"("params":{"name":"t","arguments":{"a":1},"arguments":{"b":2}}})",
           R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
           R"("params":{"name":"t","arguments":{"p":[{"x":1,"x":2}]}}})",
           R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{},"params":{}})",
       }) {
    Frame frame(json);
    MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
    Verdict v = stage.OnRequest(ctx);
    EXPECT_EQ(v.kind, Verdict::Kind::kReject) << json;
    EXPECT_EQ(v.code, jsonrpc::kInvalidParams);
    EXPECT_EQ(v.message, "The request names a member of an object twice; send each member once.");
    EXPECT_EQ(v.data_json,
              R"({"stage":"normalize","reasonCode":"duplicate-member","decisionId":")" +
                  ctx.invocation_id + R"(:normalize"})");
    ASSERT_EQ(ctx.decisions.size(), 1u);
    EXPECT_EQ(ctx.decisions[0].reason_code, "duplicate-member");
  }
}

TEST(NormalizeStage, RejectsARequestWhoseMembersTheEnvelopeSkipsAreNotValidJson) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  for (std::string_view json : {
           R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
           R"("params":{"name":"read_file","arguments":{"path":"/etc/shadow"}},"x":NaN})",
           R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
           R"("params":{"name":"read_file","arguments":{"path":"\q"}}})",
       }) {
    Frame frame(json);
    // The envelope reader routes it as a request: only the whole parse can tell.
    ASSERT_EQ(frame.envelope().kind, jsonrpc::MessageKind::kRequest) << json;
    MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
    Verdict v = stage.OnRequest(ctx);
    EXPECT_EQ(v.kind, Verdict::Kind::kReject) << json;
    EXPECT_EQ(v.code, jsonrpc::kParseError);
    EXPECT_THAT(v.message,
                ::testing::StartsWith("Parse error: the request is not valid JSON as a whole ("));
    EXPECT_FALSE(ctx.request_document.has_value());
    EXPECT_THAT(ctx.decisions, ElementsAre(EnforcedDecision("normalize", "deny", "invalid-json")));
  }
}

TEST(NormalizeStage, RejectsARequestHoldingANumberItCannotRead) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
              R"("params":{"name":"t","arguments":{"n":123456789012345678901234567890}}})");
  ASSERT_EQ(frame.envelope().kind, jsonrpc::MessageKind::kRequest);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, jsonrpc::kInvalidParams);
  EXPECT_THAT(v.message, ::testing::StartsWith("The request holds a number mcpmw cannot read"));
  EXPECT_THAT(ctx.decisions,
              ElementsAre(EnforcedDecision("normalize", "deny", "unreadable-number")));
}

TEST(NormalizeStage, AcceptsEqualNamesInDifferentObjects) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
      R"("params":{"name":"t","arguments":{"name":"n","a":{"name":"m"},"l":[{"a":1},{"a":2}]}}})");
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_TRUE(ctx.decisions.empty());
}

// Objects of up to 16 members are checked pairwise, larger ones by sorting: both must see a
// repeat wherever it sits, and let distinct names through.
TEST(NormalizeStage, FindsARepeatedNameInSmallAndLargeObjects) {
  for (int members : {2, 15, 16, 17, 40}) {
    for (int repeat_at : {-1, 0, members / 2, members - 1}) {
      std::string arguments = "{";
      for (int m = 0; m < members; ++m) {
        absl::StrAppend(&arguments, m == 0 ? "" : ",", "\"k", m, "\":", m);
      }
      if (repeat_at >= 0) {
        absl::StrAppend(&arguments, ",\"k", repeat_at, "\":0");
      }
      arguments += "}";
      uint64_t sequence = 1;
      NormalizeStage stage("s", &sequence);
      Frame frame(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t",)"
                  R"("arguments":{"deep":[)" +
                  arguments + "]}}}");
      MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
      Verdict v = stage.OnRequest(ctx);
      SCOPED_TRACE(arguments);
      EXPECT_EQ(v.IsContinue(), repeat_at < 0);
      if (repeat_at >= 0) {
        ASSERT_EQ(ctx.decisions.size(), 1u);
        EXPECT_EQ(ctx.decisions[0].reason_code, "duplicate-member");
      }
    }
  }
}

TEST(NormalizeStage, LetsANotificationWithoutToolNameThrough) {
  uint64_t sequence = 1;
  NormalizeStage stage("s", &sequence);
  Frame frame(R"({"jsonrpc":"2.0","method":"tools/call"})");
  ASSERT_EQ(frame.envelope().kind, jsonrpc::MessageKind::kNotification);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_EQ(ctx.invocation_id, "s-1");
  EXPECT_TRUE(ctx.decisions.empty());
}

}  // namespace
}  // namespace mcpmw::middleware
