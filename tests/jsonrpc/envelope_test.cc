#include "src/jsonrpc/envelope.h"

#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace mcpmw::jsonrpc {
namespace {

// A message read the way the proxy reads one: padded, with the envelope's views into it. Held by
// pointer because the views point into both members.
struct ReadMessage {
  simdjson::padded_string payload;
  Envelope envelope;
};

std::unique_ptr<ReadMessage> Read(std::string_view json) {
  static EnvelopeReader reader;  // one per thread, reused across reads as in the proxy
  auto m = std::make_unique<ReadMessage>();
  m->payload = simdjson::padded_string(json);
  reader.Read(m->payload, &m->envelope);
  return m;
}

bool PointsInto(std::string_view view, std::string_view area) {
  return view.data() >= area.data() && view.data() + view.size() <= area.data() + area.size();
}

constexpr std::string_view kNotJson = "the message is not valid JSON";

TEST(EnvelopeReader, ClassifiesARequest) {
  auto m = Read(
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
      R"("capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},)"
      R"("clientInfo":{"name":"claude-code","version":"1.0.61"}}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.id, "0");
  EXPECT_EQ(m->envelope.method, "initialize");
  EXPECT_EQ(m->envelope.tool_name, "");  // clientInfo.name is not params.name
  EXPECT_EQ(m->envelope.problem, "");
}

TEST(EnvelopeReader, ClassifiesANotification) {
  auto m = Read(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kNotification);
  EXPECT_FALSE(m->envelope.HasId());
  EXPECT_EQ(m->envelope.method, "notifications/initialized");
}

TEST(EnvelopeReader, ClassifiesAResponse) {
  auto m = Read(R"({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hi"}]}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kResponse);
  EXPECT_EQ(m->envelope.id, "2");
  EXPECT_EQ(m->envelope.method, "");
}

TEST(EnvelopeReader, ClassifiesAnErrorResponse) {
  auto m = Read(R"({"jsonrpc":"2.0","id":"x-1","error":{"code":-32601,"message":"nope"}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kErrorResponse);
  EXPECT_EQ(m->envelope.id, R"("x-1")");
}

TEST(EnvelopeReader, ClassifiesABatch) {
  auto m = Read(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"x"}])");
  EXPECT_EQ(m->envelope.kind, MessageKind::kBatch);
  EXPECT_EQ(m->envelope.problem, "");
}

TEST(EnvelopeReader, RejectsAnEmptyBatch) {
  auto m = Read(" [ ] ");
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
  EXPECT_EQ(m->envelope.problem, "an empty batch is not a JSON-RPC message");
}

// `null\t` and `0e1844674407370955161535` are regressions (found by fuzz/envelope_fuzzer):
// simdjson 3.0.1's root is_null() rejects a null followed by a blank, and its root get_double()
// rejects some well-formed numbers.
TEST(EnvelopeReader, RejectsAScalarAsNotAnObject) {
  for (std::string_view json : {"42", "-0.5E+3 ", "0e1844674407370955161535", "\"ping\"", "null",
                                "true", "null\t", " false \r\n"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, "a JSON-RPC message must be an object") << json;
  }
}

TEST(EnvelopeReader, RejectsANumberTooLongForSimdjsonAsNotAnObject) {
  auto m = Read("1." + std::string(1200, '5'));
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
}

// Regressions: get_string() does not check for trailing content (`"a" x`), and simdjson 3.0.1's
// root get_bool() and is_null() accept `falsex` and `nullx ` (found by fuzz/envelope_fuzzer).
TEST(EnvelopeReader, CallsAMalformedScalarAParseError) {
  for (std::string_view json : {"tru", "nul", "1 2", "\"a\" x", "\"open", "-", "", "01", "1.",
                                "-01", "1e", "falsex", "false\x04", "nullx ", "null x"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kParseError) << json;
    EXPECT_EQ(m->envelope.problem, kNotJson) << json;
  }
}

TEST(EnvelopeReader, KeepsAStringIdAsItsRawToken) {
  auto m = Read(R"({"jsonrpc":"2.0","id":"req \"7\"","method":"ping"})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.id, R"("req \"7\"")");
  EXPECT_TRUE(PointsInto(m->envelope.id, m->payload));
}

TEST(EnvelopeReader, KeepsAnIntegerIdAsItsRawToken) {
  auto m = Read(R"({"jsonrpc":"2.0","id": -17 ,"method":"ping"})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.id, "-17");
  m = Read(R"({"jsonrpc":"2.0","id":18446744073709551615,"result":{}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kResponse);
  EXPECT_EQ(m->envelope.id, "18446744073709551615");
}

TEST(EnvelopeReader, RejectsAFloatId) {
  for (std::string_view json : {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
                                R"({"jsonrpc":"2.0","id":1e3,"result":{}})"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, R"("id" must be a string or an integer)") << json;
    EXPECT_FALSE(m->envelope.HasId()) << json;
  }
}

TEST(EnvelopeReader, RejectsAnIdThatIsNeitherStringNorInteger) {
  for (std::string_view json : {R"({"jsonrpc":"2.0","id":true,"method":"ping"})",
                                R"({"jsonrpc":"2.0","id":{"n":1},"method":"ping"})",
                                R"({"jsonrpc":"2.0","id":[1],"result":{}})"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, R"("id" must be a string or an integer)") << json;
  }
}

TEST(EnvelopeReader, AcceptsANullIdOnAnErrorResponse) {
  auto m = Read(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kErrorResponse);
  EXPECT_EQ(m->envelope.id, "null");
}

TEST(EnvelopeReader, RejectsANullIdOnARequest) {
  auto m = Read(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
  EXPECT_EQ(m->envelope.problem, "a request id cannot be null");
}

TEST(EnvelopeReader, RejectsANullIdOnAResultResponse) {
  auto m = Read(R"({"jsonrpc":"2.0","id":null,"result":{}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
  EXPECT_EQ(m->envelope.problem, "a result response needs the id of its request");
}

// Regression: `nul` made is_null() fail, and converting the failed result to bool threw
// simdjson_error out of Read().
TEST(EnvelopeReader, CallsAnIdThatOnlyStartsLikeNullAParseError) {
  auto m = Read(R"({"jsonrpc":"2.0","id":nul,"result":{}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kParseError);
  EXPECT_EQ(m->envelope.problem, kNotJson);
}

TEST(EnvelopeReader, ReadsAPlainMethodInPlace) {
  auto m = Read(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(m->envelope.method, "tools/list");
  EXPECT_TRUE(PointsInto(m->envelope.method, m->payload));
}

TEST(EnvelopeReader, UnescapesAMethodWithEscapes) {
  auto m = Read(R"({"jsonrpc":"2.0","id":1,"method":"tools\/c\u0061ll"})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.method, "tools/call");
  EXPECT_EQ(m->envelope.method.data(), m->envelope.method_storage.data());
}

TEST(EnvelopeReader, RejectsAnEmptyOrNonStringMethod) {
  for (std::string_view json :
       {R"({"jsonrpc":"2.0","id":1,"method":""})", R"({"jsonrpc":"2.0","id":1,"method":7})"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, R"("method" must be a non-empty string)") << json;
  }
}

TEST(EnvelopeReader, ReadsToolNameAndProgressToken) {
  auto m = Read(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file",)"
      R"("arguments":{"path":"/tmp/a","name":"decoy","uri":"decoy"},"_meta":{"progressToken":2}}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.tool_name, "read_file");
  EXPECT_EQ(m->envelope.resource_uri, "");
  EXPECT_EQ(m->envelope.progress_token, "2");
}

TEST(EnvelopeReader, KeepsAStringProgressTokenAsItsRawToken) {
  auto m = Read(R"({"jsonrpc":"2.0","id":3,"method":"tools/call",)"
                R"("params":{"_meta":{"other":1,"progressToken":"tok-7f3a"},"name":"q"}})");
  EXPECT_EQ(m->envelope.progress_token, R"("tok-7f3a")");
  EXPECT_EQ(m->envelope.tool_name, "q");
}

TEST(EnvelopeReader, IgnoresAFloatProgressToken) {
  auto m =
      Read(R"({"jsonrpc":"2.0","id":3,"method":"x","params":{"_meta":{"progressToken":0.5}}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.progress_token, "");
}

TEST(EnvelopeReader, ReadsAResourceUri) {
  auto m = Read(
      R"({"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///a%20b"}})");
  EXPECT_EQ(m->envelope.resource_uri, "file:///a%20b");
  m = Read(
      R"({"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"file:///x\u002elog"}})");
  EXPECT_EQ(m->envelope.resource_uri, "file:///x.log");
  EXPECT_EQ(m->envelope.resource_uri.data(), m->envelope.resource_uri_storage.data());
}

TEST(EnvelopeReader, ReadsMembersInAnyOrder) {
  auto m = Read(R"({
    "params" : { "_meta" : { "progressToken" : "p-1" } , "name" : "search" } ,
    "method" : "tools/call" ,
    "id" : 14 ,
    "jsonrpc" : "2.0"
  })");
  EXPECT_EQ(m->envelope.kind, MessageKind::kRequest);
  EXPECT_EQ(m->envelope.id, "14");
  EXPECT_EQ(m->envelope.method, "tools/call");
  EXPECT_EQ(m->envelope.tool_name, "search");
  EXPECT_EQ(m->envelope.progress_token, R"("p-1")");
}

TEST(EnvelopeReader, CallsTrailingGarbageAParseError) {
  for (std::string_view json : {R"({"jsonrpc":"2.0","id":1,"method":"ping"} x)",
                                R"({"jsonrpc":"2.0","id":1,"method":"ping"}})",
                                R"({"jsonrpc":"2.0","id":1,"result":{}}{"jsonrpc":"2.0"})",
                                R"([{"jsonrpc":"2.0","id":1,"method":"ping"}] 1)"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kParseError) << json;
    EXPECT_EQ(m->envelope.problem, kNotJson) << json;
  }
}

TEST(EnvelopeReader, CallsATruncatedMessageAParseError) {
  const std::string_view whole =
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file"}})";
  for (size_t n : {1u, 10u, 30u, 57u, 72u}) {
    auto m = Read(whole.substr(0, n));
    EXPECT_EQ(m->envelope.kind, MessageKind::kParseError) << whole.substr(0, n);
  }
}

TEST(EnvelopeReader, RejectsAnotherJsonRpcVersion) {
  for (std::string_view json :
       {R"({"jsonrpc":"1.0","id":1,"method":"ping"})", R"({"jsonrpc":2.0,"id":1,"method":"ping"})",
        R"({"id":1,"method":"ping"})"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, R"("jsonrpc" must be "2.0")") << json;
    EXPECT_EQ(m->envelope.id, "1") << json;  // kept for the error reply
  }
}

TEST(EnvelopeReader, RejectsAMethodTogetherWithAResult) {
  auto m = Read(R"({"jsonrpc":"2.0","id":1,"method":"ping","result":{}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
  EXPECT_EQ(m->envelope.problem, R"(a message cannot carry both "method" and "result"/"error")");
}

TEST(EnvelopeReader, RejectsAResponseWithBothOrNeitherOutcome) {
  for (std::string_view json :
       {R"({"jsonrpc":"2.0","id":1,"result":{},"error":{}})", R"({"jsonrpc":"2.0","id":1})"}) {
    auto m = Read(json);
    EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid) << json;
    EXPECT_EQ(m->envelope.problem, R"(a response carries exactly one of "result" and "error")")
        << json;
  }
}

TEST(EnvelopeReader, RejectsAMessageWithNeitherMethodNorId) {
  auto m = Read(R"({"jsonrpc":"2.0","result":{}})");
  EXPECT_EQ(m->envelope.kind, MessageKind::kInvalid);
  EXPECT_EQ(m->envelope.problem,
            R"(a message needs "method" (request, notification) or "id" (response))");
}

TEST(EnvelopeReader, ClearsTheEnvelopeBetweenReads) {
  EnvelopeReader reader;
  simdjson::padded_string call(std::string_view(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","uri":"u",)"
      R"("_meta":{"progressToken":1}}})"));
  simdjson::padded_string ping(std::string_view(R"({"jsonrpc":"2.0","method":"ping"})"));
  Envelope e;
  reader.Read(call, &e);
  reader.Read(ping, &e);
  EXPECT_EQ(e.kind, MessageKind::kNotification);
  EXPECT_FALSE(e.HasId());
  EXPECT_EQ(e.method, "ping");
  EXPECT_EQ(e.tool_name, "");
  EXPECT_EQ(e.resource_uri, "");
  EXPECT_EQ(e.progress_token, "");
}

TEST(MessageKindName, NamesEachKind) {
  EXPECT_EQ(MessageKindName(MessageKind::kRequest), "request");
  EXPECT_EQ(MessageKindName(MessageKind::kNotification), "notification");
  EXPECT_EQ(MessageKindName(MessageKind::kResponse), "response");
  EXPECT_EQ(MessageKindName(MessageKind::kErrorResponse), "error-response");
  EXPECT_EQ(MessageKindName(MessageKind::kBatch), "batch");
  EXPECT_EQ(MessageKindName(MessageKind::kInvalid), "invalid");
  EXPECT_EQ(MessageKindName(MessageKind::kParseError), "parse-error");
}

}  // namespace
}  // namespace mcpmw::jsonrpc
