#include "src/jsonrpc/errors.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/jsonrpc/envelope.h"

namespace mcpmw::jsonrpc {
namespace {

std::string JsonString(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

TEST(AppendJsonString, QuotesPlainText) {
  EXPECT_EQ(JsonString("Method not found"), R"("Method not found")");
  EXPECT_EQ(JsonString(""), R"("")");
}

TEST(AppendJsonString, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(JsonString(R"(say "hi" \ bye)"), R"("say \"hi\" \\ bye")");
}

TEST(AppendJsonString, UsesShortEscapesForNewlineReturnAndTab) {
  EXPECT_EQ(JsonString("a\nb\rc\td"), R"("a\nb\rc\td")");
}

TEST(AppendJsonStringLikeJs, WritesBackspaceAndFormFeedShortLikeJsonStringify) {
  std::string out;
  AppendJsonStringLikeJs(std::string_view("a\b\f\x01\"\\\n", 7), &out);
  EXPECT_EQ(out, R"("a\b\f\u0001\"\\\n")");
}

TEST(AppendJsonString, EscapesOtherControlCharactersAsUnicode) {
  EXPECT_EQ(JsonString(std::string_view("\0\x01\x08\x0c\x1f", 5)),
            R"("\u0000\u0001\u0008\u000c\u001f")");
}

TEST(AppendJsonString, KeepsDelAndUtf8BytesAsTheyAre) {
  EXPECT_EQ(JsonString("\x7f caf\xc3\xa9 \xe2\x98\x83"), "\"\x7f caf\xc3\xa9 \xe2\x98\x83\"");
}

TEST(AppendJsonString, ReplacesBytesThatAreNotUtf8SoTheDocumentStaysValid) {
  // A lone 0xFF, an overlong encoding of '/', a truncated 3-byte sequence at the end; the valid
  // "é" and the escapes around them are kept.
  EXPECT_EQ(JsonString(std::string_view("al\xffice \xc3\xa9 \xc0\xaf \"q\" \xe2\x82", 19)),
            "\"al\xef\xbf\xbdice \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \\\"q\\\" "
            "\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST(AppendJsonString, AppendsAfterExistingContent) {
  std::string out = "[";
  AppendJsonString("x", &out);
  EXPECT_EQ(out, R"(["x")");
}

TEST(ErrorResponse, WritesTheExactBytesWithoutData) {
  EXPECT_EQ(ErrorResponse("7", kMethodNotFound, "Method not found"),
            R"({"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}})");
}

TEST(ErrorResponse, WritesTheExactBytesWithData) {
  EXPECT_EQ(ErrorResponse(R"("c0ffee-17")", kMessageTooLarge, "Message too large",
                          R"({"limit":1048576})"),
            R"({"jsonrpc":"2.0","id":"c0ffee-17","error":{"code":-32003,)"
            R"("message":"Message too large","data":{"limit":1048576}}})");
}

TEST(ErrorResponse, WritesNullForAnEmptyId) {
  EXPECT_EQ(ErrorResponse("", kParseError, "Parse error"),
            R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})");
}

TEST(ErrorResponse, EscapesTheMessage) {
  EXPECT_EQ(ErrorResponse("1", kServerExited, "server \"fs\" exited\n\x01"),
            R"({"jsonrpc":"2.0","id":1,"error":{"code":-32000,)"
            R"("message":"server \"fs\" exited\n\u0001"}})");
}

TEST(CancelledNotification, WritesTheRequestIdTokenAsIsAndEscapesTheReason) {
  EXPECT_EQ(CancelledNotification(R"("a-1")", "timed \"out\""),
            R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a-1",)"
            R"("reason":"timed \"out\""}})");
  EXPECT_EQ(CancelledNotification("42", "gone"),
            R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,)"
            R"("reason":"gone"}})");
}

TEST(ErrorResponse, ReadsBackAsAnErrorResponseForTheSameId) {
  EnvelopeReader reader;
  for (std::string_view id : {"42", R"("a\"b")", "null"}) {
    simdjson::padded_string wire(
        ErrorResponse(id, kInvalidRequest, "bad\tthing", R"({"why":["x"]})"));
    Envelope e;
    reader.Read(wire, &e);
    EXPECT_EQ(e.kind, MessageKind::kErrorResponse) << std::string_view(wire);
    EXPECT_EQ(e.id, id);
  }
}

}  // namespace
}  // namespace mcpmw::jsonrpc
