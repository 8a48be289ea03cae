#include "src/middleware/redaction/json_redactor.h"

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::redaction {
namespace {

using ::testing::HasSubstr;

constexpr char kSalt[] = "pepper";

JsonRedactor Make(std::vector<PathRule> rules, bool detectors = false) {
  DetectorSet set;
  if (detectors) {
    absl::StatusOr<DetectorSet> built = DetectorSet::Create(BuiltinDetectors());
    EXPECT_TRUE(built.ok()) << built.status();
    set = *std::move(built);
  }
  absl::StatusOr<JsonRedactor> r = JsonRedactor::Create(std::move(rules), std::move(set), kSalt);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// The rewritten document; "<unchanged>" for nullopt, "<error: …>" for a failure.
std::string RedactText(const JsonRedactor& r, std::string_view json,
                       std::vector<RedactionEvent>* events = nullptr) {
  absl::StatusOr<std::optional<std::string>> out = r.Redact(json, events);
  if (!out.ok()) {
    return "<error: " + std::string(out.status().message()) + ">";
  }
  return out->has_value() ? **out : "<unchanged>";
}

TEST(JsonRedactor, MasksMemberByPath) {
  JsonRedactor r = Make({{"pw", "$.user.password", PathRule::kMask}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"user": {"name": "ann", "password": "hunter2"}, "n": 1})", &events),
            R"({"user":{"name":"ann","password":"[REDACTED]"},"n":1})");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (RedactionEvent{"pw", "/user/password", "mask", "", 1}));
}

TEST(JsonRedactor, MasksAnyValueTypeWithTheConfiguredText) {
  JsonRedactor r = Make({{"card", "$.payment", PathRule::kMask, "***"}});
  EXPECT_EQ(RedactText(r, R"({"payment": {"pan": "4111", "cvv": 123}, "ok": true})"),
            R"({"payment":"***","ok":true})");
}

TEST(JsonRedactor, DropsMembersUnderEveryArrayElement) {
  JsonRedactor r = Make({{"secret", "$.items[*].secret", PathRule::kDrop}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(
      RedactText(r, R"({"items": [{"secret": "a", "k": 1}, {"k": 2}, {"k": 3, "secret": "c"}]})",
                 &events),
      R"({"items":[{"k":1},{"k":2},{"k":3}]})");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], (RedactionEvent{"secret", "/items/0/secret", "drop", "", 1}));
  EXPECT_EQ(events[1], (RedactionEvent{"secret", "/items/2/secret", "drop", "", 1}));
}

TEST(JsonRedactor, DropsArrayElementsByIndexWithOriginalPointers) {
  JsonRedactor r =
      Make({{"first", "$.tags[0]", PathRule::kDrop}, {"third", "$.tags[2]", PathRule::kDrop}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"tags": ["a", "b", "c", "d"]})", &events), R"({"tags":["b","d"]})");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].pointer, "/tags/0");
  EXPECT_EQ(events[1].pointer, "/tags/2");
}

TEST(JsonRedactor, HashesStringsAsSaltedSha256) {
  JsonRedactor r = Make({{"h", "$.email", PathRule::kHash}});
  EXPECT_EQ(
      RedactText(r, R"({"email": "alice@example.com"})"),
      R"({"email":"sha256:8b8d9adc4875c0dca816e3e17b7ac87b45e40945b731fa02e3b42bf101589e21"})");
}

TEST(JsonRedactor, HashesOtherValuesAsTheirCompactJson) {
  JsonRedactor r = Make({{"h", "$.obj", PathRule::kHash}, {"n", "$.num", PathRule::kHash}});
  EXPECT_EQ(RedactText(r, R"({"obj": {"a": 1, "b": [true, null]}, "num": 42})"),
            R"({"obj":"sha256:3f717ef787074548a5a099b9e378ee9f6618683729f3d452c31b1434e8ebc606",)"
            R"("num":"sha256:93ca73bec2907ec825519db1f7ee28cb033d71c83d14b76ef78b0c4e64566e6e"})");
}

TEST(JsonRedactor, DescendantPathMatchesAtAnyDepth) {
  JsonRedactor r = Make({{"mail", "$..email", PathRule::kMask}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"email": "a", "x": [{"email": "b"}, {"y": {"email": {"deep": 1}}}]})",
                       &events),
            R"({"email":"[REDACTED]","x":[{"email":"[REDACTED]"},{"y":{"email":"[REDACTED]"}}]})");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].pointer, "/x/1/y/email");
}

TEST(JsonRedactor, WildcardsAndQuotedMembers) {
  JsonRedactor r =
      Make({{"w", "$.a.*.b", PathRule::kMask}, {"q", "$['odd.key'][1]", PathRule::kMask}});
  EXPECT_EQ(
      RedactText(r, R"({"a": {"x": {"b": 1}, "y": {"b": 2, "c": 3}}, "odd.key": [0, 1]})"),
      R"({"a":{"x":{"b":"[REDACTED]"},"y":{"b":"[REDACTED]","c":3}},"odd.key":[0,"[REDACTED]"]})");
}

TEST(JsonRedactor, FirstMatchingRuleDecides) {
  JsonRedactor r =
      Make({{"drop-it", "$.token", PathRule::kDrop}, {"mask-it", "$..token", PathRule::kMask}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"token": "t1", "inner": {"token": "t2"}})", &events),
            R"({"inner":{"token":"[REDACTED]"}})");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], (RedactionEvent{"drop-it", "/token", "drop", "", 1}));
  EXPECT_EQ(events[1], (RedactionEvent{"mask-it", "/inner/token", "mask", "", 1}));
}

TEST(JsonRedactor, DetectorsRedactStringValuesInNestedArraysAndObjects) {
  JsonRedactor r = Make({}, /*detectors=*/true);
  std::vector<RedactionEvent> events;
  EXPECT_EQ(
      RedactText(r, R"({"rows": [["id", "ssn 123-45-6789"], {"note": "mail a@b.co or c@d.io"}]})",
                 &events),
      R"({"rows":[["id","ssn [SSN_REDACTED]"],{"note":"mail [EMAIL_REDACTED] or [EMAIL_REDACTED]"}]})");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], (RedactionEvent{"us_ssn", "/rows/0/1", "redact", "us_ssn", 1}));
  EXPECT_EQ(events[1], (RedactionEvent{"email", "/rows/1/note", "redact", "email", 2}));
}

TEST(JsonRedactor, DetectorsLeaveObjectKeysAlone) {
  JsonRedactor r = Make({}, /*detectors=*/true);
  EXPECT_EQ(RedactText(r, R"({"a@b.co": 1, "123-45-6789": true})"), "<unchanged>");
}

TEST(JsonRedactor, RedactsToolsCallResultContentStructuredContentAndResources) {
  JsonRedactor r = Make({{"internal", "$.structuredContent.internalNotes", PathRule::kDrop}},
                        /*detectors=*/true);
  std::vector<RedactionEvent> events;
  EXPECT_EQ(
      RedactText(
          r,
          R"({"content": [{"type": "text", "text": "Customer jane@corp.example paid with 4111 1111 1111 1111"},)"
          R"( {"type": "resource", "resource": {"uri": "file:///notes.txt", "mimeType": "text/plain",)"
          R"( "text": "SSN 123-45-6789"}}],)"
          R"( "structuredContent": {"customer": {"email": "jane@corp.example"}, "internalNotes": "vip"},)"
          R"( "isError": false})",
          &events),
      R"({"content":[{"type":"text","text":"Customer [EMAIL_REDACTED] paid with [CARD_REDACTED]"},)"
      R"({"type":"resource","resource":{"uri":"file:///notes.txt","mimeType":"text/plain",)"
      R"("text":"SSN [SSN_REDACTED]"}}],)"
      R"("structuredContent":{"customer":{"email":"[EMAIL_REDACTED]"}},"isError":false})");
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].pointer, "/content/0/text");
  EXPECT_EQ(events[1].pointer, "/content/0/text");
  EXPECT_EQ(events[2],
            (RedactionEvent{"us_ssn", "/content/1/resource/text", "redact", "us_ssn", 1}));
  EXPECT_EQ(events[3].pointer, "/structuredContent/customer/email");
  EXPECT_EQ(events[4],
            (RedactionEvent{"internal", "/structuredContent/internalNotes", "drop", "", 1}));
}

TEST(JsonRedactor, UnchangedDocumentReturnsNulloptAndNoEvents) {
  JsonRedactor r = Make({{"pw", "$.password", PathRule::kMask}}, /*detectors=*/true);
  std::vector<RedactionEvent> events;
  EXPECT_EQ(
      RedactText(r, R"({"query": "weather in Paris", "limit": 5, "tags": [1.5, null]})", &events),
      "<unchanged>");
  EXPECT_TRUE(events.empty());
}

TEST(JsonRedactor, EventsNeverContainTheSecret) {
  JsonRedactor r = Make({{"pw", "$.password", PathRule::kMask},
                         {"tok", "$.auth.token", PathRule::kHash},
                         {"ssn", "$.ssn", PathRule::kDrop}},
                        /*detectors=*/true);
  const std::vector<std::string> secrets = {"hunter2-Secret",      "tok-8f14e45fceea",
                                            "078-05-1120",         "carol@example.org",
                                            "5555-5555-5555-4444", "DE89 3704 0044 0532 0130 00"};
  std::string doc = R"({"password": "hunter2-Secret", "auth": {"token": "tok-8f14e45fceea"},)"
                    R"( "ssn": "078-05-1120", "notes": ["carol@example.org",)"
                    R"( "card 5555-5555-5555-4444 iban DE89 3704 0044 0532 0130 00"]})";
  std::vector<RedactionEvent> events;
  std::string out = RedactText(r, doc, &events);
  ASSERT_EQ(events.size(), 6u);
  for (const RedactionEvent& e : events) {
    for (const std::string& secret : secrets) {
      for (const std::string& field : {e.rule_id, e.pointer, e.action, e.detector}) {
        EXPECT_EQ(field.find(secret), std::string::npos) << secret << " in event field " << field;
      }
    }
  }
  for (const std::string& secret : secrets) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in output " << out;
  }
  EXPECT_EQ(events[3], (RedactionEvent{"email", "/notes/0", "redact", "email", 1}));
  EXPECT_EQ(events[4], (RedactionEvent{"iban", "/notes/1", "redact", "iban", 1}));
  EXPECT_EQ(events[5], (RedactionEvent{"card_number", "/notes/1", "redact", "card_number", 1}));
}

TEST(JsonRedactor, PointerEscapesTildeAndSlash) {
  JsonRedactor r = Make({{"k", "$['a/b~c']", PathRule::kMask}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"a/b~c": 1})", &events), R"({"a/b~c":"[REDACTED]"})");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].pointer, "/a~1b~0c");
}

TEST(JsonRedactor, RewritePreservesOrderEscapesAndScalars) {
  JsonRedactor r = Make({{"x", "$.x", PathRule::kMask}});
  EXPECT_EQ(RedactText(r, R"({"z": "q\"uo\\te\n\u0001é😀", "x": 0, "b": [false, null, -7,)"
                          R"( 18446744073709551615, 1.5, -0.25, 1.0, 1e2, -0.0], "a": {}})"),
            R"({"z":"q\"uo\\te\n\u0001é😀","x":"[REDACTED]","b":[false,null,-7,)"
            R"(18446744073709551615,1.5,-0.25,1.0,100.0,-0.0],"a":{}})");
}

TEST(JsonRedactor, InvalidJsonIsInvalidArgument) {
  JsonRedactor r = Make({{"x", "$.x", PathRule::kMask}});
  for (std::string_view bad : {R"({"x": )", R"({"x": 1} trailing)", "", "\xff"}) {
    absl::StatusOr<std::optional<std::string>> out = r.Redact(bad, nullptr);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(JsonRedactor, BadPathIsAnErrorNamingTheRule) {
  for (std::string_view path : {"a.b", "$", "$.", "$.a[", "$.a[x]", "$['a", "$..", "$.a b]"}) {
    absl::StatusOr<JsonRedactor> r =
        JsonRedactor::Create({{"rule-7", std::string(path), PathRule::kMask}}, DetectorSet(), "");
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(r.status().message(), HasSubstr("redaction rule \"rule-7\"")) << path;
  }
}

TEST(JsonRedactor, RuleIdDefaultsToThePath) {
  JsonRedactor r = Make({{"", "$.k", PathRule::kDrop}});
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"({"k": 1, "j": 2})", &events), R"({"j":2})");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rule_id, "$.k");
}

TEST(JsonRedactor, DetectorsScanRootString) {
  JsonRedactor r = Make({}, /*detectors=*/true);
  std::vector<RedactionEvent> events;
  EXPECT_EQ(RedactText(r, R"("reach me at bob@example.net")", &events),
            R"("reach me at [EMAIL_REDACTED]")");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].pointer, "");
}

TEST(JsonRedactor, LeavesUnchangedClearsCleanTextWithoutParsingIt) {
  JsonRedactor r = Make({{"pw", "$..password", PathRule::kMask}}, true);
  EXPECT_TRUE(r.LeavesUnchanged(R"({"note":"quarterly report, 42 pages","n":7})"));
  // Not JSON at all: the answer is only about what a redaction could change.
  EXPECT_TRUE(r.LeavesUnchanged(R"({"note": tru)"));
  EXPECT_FALSE(r.LeavesUnchanged(R"({"note":"mail ann@example.com"})"));
  EXPECT_FALSE(r.LeavesUnchanged(R"({"user":{"password":"x"}})"));
  // The name anywhere, even inside a value, means "parse and look".
  EXPECT_FALSE(r.LeavesUnchanged(R"({"note":"the password is long"})"));
  // An escape may spell a secret or a member name the bytes do not show.
  EXPECT_FALSE(r.LeavesUnchanged(R"({"note":"ann\u0040example.com"})"));
}

TEST(JsonRedactor, LeavesUnchangedNeverDecidesForRulesItCannotSeeInTheBytes) {
  EXPECT_FALSE(Make({{"all", "$.*", PathRule::kMask}}).LeavesUnchanged(R"({"a":1})"));
  EXPECT_FALSE(Make({{"first", "$[0]", PathRule::kDrop}}).LeavesUnchanged("[1,2]"));
  absl::StatusOr<DetectorSet> custom =
      DetectorSet::Create({{.kind = DetectorKind::kCustom, .id = "whole", .pattern = "^ab$"}});
  ASSERT_TRUE(custom.ok()) << custom.status();
  absl::StatusOr<JsonRedactor> anchored = JsonRedactor::Create({}, *std::move(custom), kSalt);
  ASSERT_TRUE(anchored.ok()) << anchored.status();
  // The raw text has no "ab" that starts and ends it, the string "ab" does.
  EXPECT_FALSE(anchored->LeavesUnchanged(R"(["ab"])"));
  EXPECT_EQ(RedactText(*anchored, R"(["ab"])"), R"(["[REDACTED]"])");
}

// Builds random documents from string values near and at every detector's shape, and checks the
// soundness LeavesUnchanged promises: whatever it clears, Redact leaves unchanged.
class RandomDocument {
 public:
  explicit RandomDocument(uint32_t seed) : rng_(seed) {}

  std::string Next() {
    std::string out;
    Value(0, &out);
    return out;
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::string Text() {
    static constexpr std::string_view kPieces[] = {"ann@example.com",
                                                   "ann@",
                                                   "@example",
                                                   ".com",
                                                   "4111 1111 1111 1111",
                                                   "4111111111111111",
                                                   "4111-1111",
                                                   "1111 1111",
                                                   "123-45-6789",
                                                   "123-45",
                                                   "-6789",
                                                   "GB82 WEST 1234 5698 7654 32",
                                                   "GB82WEST",
                                                   "AKIAIOSFODNN7EXAMPLE",
                                                   "AKIA",
                                                   "aws_secret_access_key=",
                                                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                                   "ghp_",
                                                   "0123456789abcdefghijABCDEFGHIJ012345",
                                                   "xoxb-",
                                                   "sk_live_",
                                                   "Bearer ",
                                                   "BEARER  ",
                                                   "abcdefgh12345678",
                                                   "eyJhbGciOiJIUzI1NiJ9",
                                                   ".eyJzdWIiOjF9.",
                                                   "-----BEGIN RSA PRIVATE KEY-----",
                                                   "-----END RSA PRIVATE KEY-----",
                                                   "password",
                                                   "pass",
                                                   " ",
                                                   ":",
                                                   "=",
                                                   "-",
                                                   ".",
                                                   ",",
                                                   "/",
                                                   "+",
                                                   "_",
                                                   "0",
                                                   "7",
                                                   "x",
                                                   "Q",
                                                   "é"};
    std::string t;
    for (size_t n = Pick(5); n > 0; --n) {
      t += kPieces[Pick(std::size(kPieces))];
    }
    return t;
  }

  void Value(int depth, std::string* out) {
    switch (depth >= 3 ? 3 + Pick(2) : Pick(5)) {
      case 0:
      case 1: {
        *out += '{';
        for (size_t n = Pick(4); n > 0; --n) {
          static constexpr std::string_view kKeys[] = {
              "password", "a", "note", "4111111111111111", "ann@example.com", "b"};
          ((*out += '"') += kKeys[Pick(std::size(kKeys))]) += "\":";
          Value(depth + 1, out);
          *out += n > 1 ? "," : "";
        }
        *out += '}';
        break;
      }
      case 2:
        *out += '[';
        for (size_t n = Pick(4); n > 0; --n) {
          Value(depth + 1, out);
          *out += n > 1 ? "," : "";
        }
        *out += ']';
        break;
      case 3:
        ((*out += '"') += Text()) += '"';
        break;
      default:
        static constexpr std::string_view kScalars[] = {
            "4111111111111111", "123", "true", "null", "-6789", "1.5e3"};
        *out += kScalars[Pick(std::size(kScalars))];
        break;
    }
  }

  std::mt19937 rng_;
};

TEST(JsonRedactor, LeavesUnchangedNeverClearsADocumentRedactWouldChange) {
  JsonRedactor r =
      Make({{"pw", "$..password", PathRule::kMask}, {"ab", "$.a.b", PathRule::kDrop}}, true);
  RandomDocument docs(20261124);
  size_t cleared = 0;
  size_t changed = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string doc = docs.Next();
    const std::string redacted = RedactText(r, doc);
    ASSERT_THAT(redacted, ::testing::Not(HasSubstr("<error"))) << doc;
    changed += redacted != "<unchanged>";
    if (r.LeavesUnchanged(doc)) {
      ++cleared;
      ASSERT_EQ(redacted, "<unchanged>") << doc;
    }
  }
  // Both answers must be common for the check above to mean anything.
  EXPECT_GT(cleared, 10000u);
  EXPECT_GT(changed, 10000u);
}

}  // namespace
}  // namespace mcpmw::redaction
