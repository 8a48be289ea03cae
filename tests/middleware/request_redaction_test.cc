#include "src/middleware/request_redaction.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::FindDecision;
using test_support::Session;

using ::testing::HasSubstr;
using ::testing::Not;

std::string ToolCall(std::string_view arguments) {
  return std::string(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send",)") +
         R"("arguments":)" + std::string(arguments) + R"(,"_meta":{"progressToken":"p"}}})";
}

constexpr std::string_view kOk = R"({"jsonrpc":"2.0","id":5,"result":{"content":[]}})";

constexpr std::string_view kBundle = R"({"bundleVersion":"v","redactionRules":[
  {"ruleId":"mail","direction":"request","detector":"email"},
  {"ruleId":"card","direction":"both","detector":"card_number"},
  {"ruleId":"pw","direction":"request","matchPath":"$.password"},
  {"ruleId":"ticket","direction":"response","pattern":"TICKET-[0-9]+"}]})";

TEST(RequestRedactionStage, RedactsAnEmailAndACardInToolArgumentsBeforeForwarding) {
  Session s(kBundle);
  auto ex = s.Call(ToolCall(R"({"to": "alice@example.com", "note": "card 4111 1111 1111 1111 ok",)"
                            R"( "password": "hunter2", "n": 1, "ref": "TICKET-42"})"),
                   kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, ToolCall(R"({"to":"[EMAIL_REDACTED]","note":"card [CARD_REDACTED] ok",)"
                                    R"("password":"[REDACTED]","n":1,"ref":"TICKET-42"})"));
  EXPECT_EQ(ex->ctx.request_bytes, ex->forwarded.size());

  const std::vector<RedactionNote>& notes = ex->ctx.redactions;
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].direction, Direction::kClientToServer);
  EXPECT_EQ(notes[0].rule_id, "mail");
  EXPECT_EQ(notes[0].pointer, "/to");
  EXPECT_EQ(notes[0].action, "redact");
  EXPECT_EQ(notes[1].rule_id, "card");
  EXPECT_EQ(notes[1].pointer, "/note");
  EXPECT_EQ(notes[1].action, "redact");
  EXPECT_EQ(notes[2].rule_id, "pw");
  EXPECT_EQ(notes[2].pointer, "/password");
  EXPECT_EQ(notes[2].action, "mask");
  for (const RedactionNote& n : notes) {
    for (const std::string& field : {n.rule_id, n.pointer, n.action}) {
      EXPECT_THAT(field, Not(HasSubstr("alice")));
      EXPECT_THAT(field, Not(HasSubstr("4111")));
      EXPECT_THAT(field, Not(HasSubstr("hunter2")));
    }
  }
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_EQ(d->reason_code, "request-redaction:3");
}

TEST(RequestRedactionStage, ForwardsCleanArgumentsByteForByte) {
  Session s(kBundle);
  const std::string request = ToolCall(R"({ "q" : "nothing to see" })");
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  EXPECT_TRUE(ex->ctx.redactions.empty());
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "request-redaction:0");
}

TEST(RequestRedactionStage, RedactsWhatAPolicyTransformAdded) {
  Session s(R"({"bundleVersion":"v","policyRules":[{"ruleId":"cc","status":"transform",
      "conditionDsl":"*","patches":[{"op":"set","path":"/cc","value":"bob@example.org"}]}],
      "redactionRules":[{"ruleId":"mail","direction":"request","detector":"email"}]})");
  auto ex = s.Call(ToolCall(R"({"to":"x"})"), kOk);
  EXPECT_EQ(ex->forwarded, ToolCall(R"({"to":"x","cc":"[EMAIL_REDACTED]"})"));
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].pointer, "/cc");
}

TEST(RequestRedactionStage, CannotBeBypassedWithASecondArgumentsMember) {
  Session s(kBundle);
  auto ex = s.Call(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send",)"
                   R"("arguments":{"a":"x"},"arguments":{"to":"alice@example.com"}}})",
                   kOk);
  EXPECT_EQ(ex->request_verdict.code, jsonrpc::kInvalidParams);
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_EQ(ex->ctx.blocked_by, "normalize");
}

TEST(RequestRedactionStage, LeavesMethodsOtherThanToolsCallAlone) {
  Session s(kBundle);
  const std::string request =
      R"({"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"p",)"
      R"("arguments":{"to":"alice@example.com"}}})";
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  EXPECT_EQ(FindDecision(ex->ctx, "request_redaction"), nullptr);
}

// normalize refuses a request that is not valid JSON before this stage sees it; in observe mode
// it only notes that, and this stage's own refusal is what keeps the call from the server.
constexpr std::string_view kBundleNormalizeObserved = R"({"bundleVersion":"v",
  "stages":{"normalize":{"mode":"observe"}},"redactionRules":[
  {"ruleId":"mail","direction":"request","detector":"email"}]})";

TEST(RequestRedactionStage, RefusesArgumentsThatAreNotValidJson) {
  Session s(kBundleNormalizeObserved);
  auto ex = s.Call(ToolCall(R"({"to": "alice@example.com", "n": tru})"), kOk);
  const Verdict& v = ex->request_verdict;
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32014);
  EXPECT_EQ(v.message,
            "The tool arguments are not valid JSON, so they cannot be checked for secrets; the "
            "call was not sent.");
  EXPECT_EQ(v.data_json, R"({"stage":"request_redaction","reasonCode":"redaction-unreadable",)"
                         R"("decisionId":"s-1:request_redaction"})");
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_FALSE(ex->ctx.dispatched);
  EXPECT_TRUE(ex->ctx.redactions.empty());
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "redaction-unreadable");
}

TEST(RequestRedactionStage, RefusesArgumentsWithANumberItCannotHold) {
  Session s(kBundleNormalizeObserved);
  auto ex = s.Call(ToolCall(R"({"n": 123456789012345678901234567890})"), kOk);
  EXPECT_EQ(ex->request_verdict.code, kCodeRedactionFailed);
}

TEST(RequestRedactionStage, InObserveModeRecordsNotesButForwardsTheOriginal) {
  Session s(R"({"bundleVersion":"v","stages":{"request_redaction":{"mode":"observe"}},
      "redactionRules":[{"ruleId":"mail","direction":"request","detector":"email"}]})");
  const std::string request = ToolCall(R"({"to":"alice@example.com"})");
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].rule_id, "mail");
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_FALSE(d->enforced);
}

// What RedactMember makes of `payload` (a whole message) for `path`: its answer, the rewritten
// text and the notes, with or without the message's own DOM standing in for finding the member.
struct MemberOutcome {
  bool ok = false;
  size_t changes = 0;
  std::optional<std::string> rewritten;
  std::vector<std::string> notes;  // "rule pointer action"
  bool operator==(const MemberOutcome&) const = default;
};

MemberOutcome RedactMessage(const redaction::JsonRedactor& redactor, std::string_view payload,
                            std::initializer_list<std::string_view> path, bool shared_parse) {
  simdjson::padded_string padded(payload);
  MessageContext ctx;
  ctx.payload = std::string_view(padded.data(), padded.size());
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  const simdjson::dom::element* parsed = nullptr;
  if (shared_parse && parser.parse(padded).get(document) == simdjson::SUCCESS) {
    parsed = &document;
  }
  MemberOutcome out;
  out.ok = RedactMember(ctx, redactor, path, Direction::kClientToServer, &out.changes, parsed);
  out.rewritten = ctx.rewritten;
  for (const RedactionNote& n : ctx.redactions) {
    out.notes.push_back(n.rule_id + " " + n.pointer + " " + n.action);
  }
  return out;
}

TEST(RedactMember, GivesTheSameOutcomeFromTheSharedParseAsFromItsOwn) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(kBundle);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const redaction::JsonRedactor& redactor = *(*bundle)->request_redactor;
  const std::string_view messages[] = {
      R"({"params":{"arguments":{"to":"alice@example.com","password":"x","deep":[{"password":1}]}}})",
      R"({"params":{"arguments":{"q":"nothing to see"}}})",
      R"({"params":{"name":"t"}})",
      R"({"params":["arguments"]})",
      R"({"params":{"arguments":"card 4111 1111 1111 1111"}})",
      R"({"params":{"arguments":{"password":"first"},"arguments":{"password":"second"}}})",
      R"({"params":{"arguments":[1,2.50,{"to":"bob@example.org"},true,null]}})",
      R"(["params"])",
      R"("just a string")",
  };
  for (std::string_view message : messages) {
    SCOPED_TRACE(message);
    ASSERT_TRUE(DomMatchesRawNames(message));
    MemberOutcome alone = RedactMessage(redactor, message, {"params", "arguments"}, false);
    MemberOutcome shared = RedactMessage(redactor, message, {"params", "arguments"}, true);
    EXPECT_EQ(shared, alone);
  }
  // A mask, a redacted e-mail and a card: the shared parse does find and splice them.
  MemberOutcome first = RedactMessage(redactor, messages[0], {"params", "arguments"}, true);
  EXPECT_TRUE(first.ok);
  EXPECT_EQ(first.changes, 2u);
  EXPECT_EQ(first.rewritten,
            R"({"params":{"arguments":{"to":"[EMAIL_REDACTED]","password":"[REDACTED]",)"
            R"("deep":[{"password":1}]}}})");
  MemberOutcome not_an_object = RedactMessage(redactor, messages[7], {"params", "arguments"}, true);
  EXPECT_FALSE(not_an_object.ok);
}

TEST(RedactMember, TakesNoSharedParseOfATextWithEscapes) {
  // FindMember matches names as written; a DOM matches them unescaped. With a backslash in the
  // text the two could disagree, so the stage locates the member the old way.
  EXPECT_FALSE(DomMatchesRawNames(R"({"params":{"\u0061rguments":{}}})"));
  EXPECT_FALSE(DomMatchesRawNames(R"({"params":{"arguments":{"t":"line\nbreak"}}})"));
  EXPECT_TRUE(DomMatchesRawNames(R"({"params":{"arguments":{"t":"plain"}}})"));
}

TEST(RequestRedactionStage, ReadsAnEscapedArgumentsNameAsWrittenLikeBefore) {
  Session s(kBundle);
  // The member is "arguments" only once unescaped: located as written, there are no arguments,
  // and the request is forwarded as it came (as before the stages shared one parse).
  const std::string request =
      R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send",)"
      R"("\u0061rguments":{"to":"alice@example.com"}}})";
  auto ex = s.Call(request, kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, request);
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason_code, "request-redaction:0");
}

}  // namespace
}  // namespace mcpmw::middleware
