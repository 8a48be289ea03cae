#include "src/transport/http/mcp_headers.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::http {
namespace {

// The header list of one POST, as the HTTP layer holds it.
class Post {
 public:
  Post& Header(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  McpRequestHeaders Headers() const {
    McpRequestHeaders h;
    for (const auto& [name, value] : headers_) {
      h.Observe(name, value);
    }
    return h;
  }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
};

std::string Request(std::string_view method, std::string_view params_members,
                    std::string_view version = "2026-07-28") {
  std::string params = R"({"_meta":{"io.modelcontextprotocol/protocolVersion":")";
  params.append(version);
  params.append(R"(","io.modelcontextprotocol/clientCapabilities":{}})");
  if (!params_members.empty()) {
    params.append(",");
    params.append(params_members);
  }
  params.append("}");
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":")") + std::string(method) +
         R"(","params":)" + params + "}";
}

Post Modern(std::string_view method) {
  Post p;
  p.Header("mcp-protocol-version", "2026-07-28").Header("mcp-method", std::string(method));
  return p;
}

std::optional<StatelessCheck> Check(const Post& post, std::string_view body) {
  return CheckStatelessHeaders(post.Headers(), body);
}

TEST(CheckStatelessHeaders, AcceptsAToolsCallWhoseHeadersMatchTheBody) {
  Post post = Modern("tools/call");
  post.Header("mcp-name", "get_weather");
  EXPECT_EQ(Check(post, Request("tools/call", R"("name":"get_weather","arguments":{})")),
            std::nullopt);
}

TEST(CheckStatelessHeaders, AcceptsResourcesReadComparingMcpNameWithTheUri) {
  Post post = Modern("resources/read");
  post.Header("Mcp-Name", "file:///projects/myapp/config.json");
  EXPECT_EQ(Check(post, Request("resources/read", R"("uri":"file:///projects/myapp/config.json")")),
            std::nullopt);
  Post by_name = Modern("resources/read");
  by_name.Header("Mcp-Name", "config");
  auto problem =
      Check(by_name, Request("resources/read", R"("name":"config","uri":"file:///c.json")"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(problem->message,
            "Header mismatch: Mcp-Name header value 'config' does not match body value "
            "'file:///c.json'");
}

TEST(CheckStatelessHeaders, AcceptsMethodsWithoutANameSourceWithoutMcpName) {
  EXPECT_EQ(Check(Modern("tools/list"), Request("tools/list", "")), std::nullopt);
  EXPECT_EQ(Check(Modern("server/discover"), Request("server/discover", "")), std::nullopt);
}

TEST(CheckStatelessHeaders, DecodesABase64McpNameBeforeComparing) {
  Post post = Modern("prompts/get");
  post.Header("mcp-name", "=?base64?SGVsbG8sIOS4lueVjA==?=");  // "Hello, 世界"
  EXPECT_EQ(Check(post, Request("prompts/get", R"("name":"Hello, \u4e16\u754c")")), std::nullopt);
  Post other = Modern("prompts/get");
  other.Header("mcp-name", "=?base64?SGVsbG8sIOS4lueVjA==?=");
  auto problem = Check(other, Request("prompts/get", R"("name":"Hello")"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->http_status, 400);
  EXPECT_EQ(problem->jsonrpc_code, -32020);
  EXPECT_EQ(problem->message,
            R"(Header mismatch: Mcp-Name header value 'Hello, ??????' does not match body value )"
            "'Hello'");
}

TEST(CheckStatelessHeaders, RejectsAMissingProtocolVersionHeaderWithHeaderMismatch) {
  Post post;
  post.Header("mcp-method", "tools/list");
  auto problem = Check(post, Request("tools/list", ""));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->http_status, 400);
  EXPECT_EQ(problem->jsonrpc_code, -32020);
  EXPECT_EQ(problem->message, "Header mismatch: the MCP-Protocol-Version header is missing");
  EXPECT_EQ(problem->data_json, "");
}

TEST(CheckStatelessHeaders, RejectsAProtocolVersionHeaderThatDiffersFromMeta) {
  auto problem = Check(Modern("tools/list"), Request("tools/list", "", "2026-08-01"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(problem->message,
            "Header mismatch: MCP-Protocol-Version header value '2026-07-28' does not match body "
            "value '2026-08-01'");
  auto no_meta = Check(Modern("tools/list"), R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  ASSERT_TRUE(no_meta.has_value());
  EXPECT_EQ(no_meta->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(no_meta->message,
            "Header mismatch: MCP-Protocol-Version header value '2026-07-28' does not match the "
            "body, which has no params._meta[\"io.modelcontextprotocol/protocolVersion\"] string");
}

TEST(CheckStatelessHeaders, RejectsAnUnsupportedVersionWithTheSupportedListInMessageAndData) {
  Post post;
  post.Header("MCP-Protocol-Version", "2027-01-01").Header("Mcp-Method", "tools/list");
  auto problem = Check(post, Request("tools/list", "", "2027-01-01"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->http_status, 400);
  EXPECT_EQ(problem->jsonrpc_code, -32022);
  EXPECT_EQ(problem->message,
            "Unsupported protocol version '2027-01-01'; supported: 2026-07-28, 2025-11-25, "
            "2025-06-18");
  EXPECT_EQ(problem->data_json,
            R"({"supported":["2026-07-28","2025-11-25","2025-06-18"],"requested":"2027-01-01"})");
}

TEST(CheckStatelessHeaders, TreatsALegacyVersionOnAStatelessRequestAsUnsupported) {
  Post post;
  post.Header("MCP-Protocol-Version", "2025-11-25").Header("Mcp-Method", "tools/list");
  auto problem = Check(post, Request("tools/list", "", "2025-11-25"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kUnsupportedProtocolVersion);
  VersionSupport custom{{"2026-07-28", "2025-11-25"}, {"2026-07-28", "2025-11-25"}};
  EXPECT_EQ(CheckStatelessHeaders(post.Headers(), Request("tools/list", "", "2025-11-25"), custom),
            std::nullopt);
}

TEST(CheckStatelessHeaders, RejectsAMissingOrDifferentMcpMethodCaseSensitively) {
  Post missing;
  missing.Header("mcp-protocol-version", "2026-07-28");
  auto absent = Check(missing, Request("tools/list", ""));
  ASSERT_TRUE(absent.has_value());
  EXPECT_EQ(absent->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(absent->message, "Header mismatch: the Mcp-Method header is missing");
  auto differs = Check(Modern("Tools/List"), Request("tools/list", ""));
  ASSERT_TRUE(differs.has_value());
  EXPECT_EQ(differs->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(differs->message,
            "Header mismatch: Mcp-Method header value 'Tools/List' does not match body value "
            "'tools/list'");
}

TEST(CheckStatelessHeaders, RequiresMcpNameForToolsCallResourcesReadAndPromptsGet) {
  for (std::string_view method : {"tools/call", "prompts/get", "resources/read"}) {
    auto problem = Check(Modern(method), Request(method, R"("name":"a","uri":"a")"));
    ASSERT_TRUE(problem.has_value()) << method;
    EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
    EXPECT_EQ(problem->message, "Header mismatch: the Mcp-Name header is missing (required for " +
                                    std::string(method) + ")");
  }
}

TEST(CheckStatelessHeaders, RejectsAnMcpNameThatDiffersFromTheBody) {
  Post post = Modern("tools/call");
  post.Header("mcp-name", "safe_tool");
  auto problem = Check(post, Request("tools/call", R"("name":"delete_everything")"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(problem->message,
            "Header mismatch: Mcp-Name header value 'safe_tool' does not match body value "
            "'delete_everything'");
  auto no_name = Check(post, Request("tools/call", R"("name":7)"));
  ASSERT_TRUE(no_name.has_value());
  EXPECT_EQ(no_name->message,
            "Header mismatch: Mcp-Name header value 'safe_tool' does not match the body, which "
            "has no params.name string");
}

TEST(CheckStatelessHeaders, RejectsMalformedBase64AndRawNonAsciiInMcpName) {
  for (std::string bad :
       {"=?base64?SGVsbG8?=", "=?base64?SGVsbG9=?=", "=?base64?SGV*bG8=?=", "=?base64?="}) {
    Post post = Modern("tools/call");
    post.Header("mcp-name", bad);
    auto problem = Check(post, Request("tools/call", R"("name":"Hello")"));
    ASSERT_TRUE(problem.has_value()) << bad;
    EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
    EXPECT_EQ(problem->message, "Header mismatch: the Mcp-Name header value '" + bad +
                                    "' is not valid =?base64?...?= encoding");
  }
  Post raw = Modern("tools/call");
  raw.Header("mcp-name", "caf\xC3\xA9");
  auto problem = Check(raw, Request("tools/call", R"("name":"caf\u00e9")"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(problem->message,
            "Header mismatch: the Mcp-Name header holds characters other than visible ASCII, "
            "space and tab");
}

TEST(CheckStatelessHeaders, RejectsARepeatedMcpHeader) {
  Post post = Modern("tools/call");
  post.Header("mcp-name", "a").Header("MCP-NAME", "b");
  auto problem = Check(post, Request("tools/call", R"("name":"a")"));
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  EXPECT_EQ(problem->message, "Header mismatch: the Mcp-Name header is sent more than once");
}

TEST(CheckStatelessHeaders, RejectsBodiesThatAreNotOneUnambiguousRequest) {
  struct Case {
    std::string body;
    int code;
    std::string message;
  };
  std::vector<Case> cases = {
      {R"({"jsonrpc":"2.0","id":1,"method":)", jsonrpc::kParseError,
       "Parse error: the body is not valid JSON"},
      {R"({"jsonrpc":"2.0","id":1,"method":"tools/list"} {})", jsonrpc::kParseError,
       "Parse error: the body is not valid JSON"},
      {R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"}])", jsonrpc::kInvalidRequest,
       "Invalid Request: batches (JSON arrays) are not part of this protocol version"},
      {R"({"jsonrpc":"2.0","id":1,"result":{}})", jsonrpc::kInvalidRequest,
       "Invalid Request: clients must not send JSON-RPC responses in protocol version "
       "2026-07-28"},
      {R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}})",
       jsonrpc::kInvalidRequest, "Invalid Request: member `params.name` appears more than once"},
      {R"({"jsonrpc":"2.0","id":1,"method":"a","method":"b"})", jsonrpc::kInvalidRequest,
       "Invalid Request: member `method` appears more than once"},
      {R"({"jsonrpc":"1.0","id":1,"method":"tools/list"})", jsonrpc::kInvalidRequest,
       "Invalid Request: `jsonrpc` must be \"2.0\""},
      {R"({"jsonrpc":"2.0","id":null,"method":"tools/list"})", jsonrpc::kInvalidRequest,
       "Invalid Request: `id` must be a string or an integer"},
  };
  for (const Case& c : cases) {
    auto problem = Check(Modern("tools/list"), c.body);
    ASSERT_TRUE(problem.has_value()) << c.body;
    EXPECT_EQ(problem->http_status, 400) << c.body;
    EXPECT_EQ(problem->jsonrpc_code, c.code) << c.body;
    EXPECT_EQ(problem->message, c.message) << c.body;
  }
}

TEST(CheckStatelessHeaders, AcceptsANotificationWithoutHeadersButNotOneThatContradictsThem) {
  std::string note = R"({"jsonrpc":"2.0","method":"notifications/cancelled",)"
                     R"("params":{"requestId":1}})";
  EXPECT_EQ(Check(Post(), note), std::nullopt);
  EXPECT_EQ(Check(Modern("notifications/cancelled"), note), std::nullopt);
  auto problem = Check(Modern("notifications/progress"), note);
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->jsonrpc_code, jsonrpc::kHeaderMismatch);
  Post old;
  old.Header("mcp-protocol-version", "2024-11-05");
  auto unsupported = Check(old, note);
  ASSERT_TRUE(unsupported.has_value());
  EXPECT_EQ(unsupported->jsonrpc_code, jsonrpc::kUnsupportedProtocolVersion);
}

TEST(ReadStatelessBody, ReadsUnescapedFieldsAndTheRawId) {
  StatelessBody body =
      ReadStatelessBody(R"({"id":"r\u0031","jsonrpc":"2.0","method":"tools\/call","params":)"
                        R"({"arguments":{"name":"inner"},"n\u0061me":"a\"b","uri":"u",)"
                        R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})");
  EXPECT_EQ(body.kind, StatelessBody::Kind::kRequest);
  EXPECT_EQ(body.id, R"("r\u0031")");
  EXPECT_EQ(body.method, "tools/call");
  EXPECT_EQ(body.name, "a\"b");
  EXPECT_EQ(body.uri, "u");
  EXPECT_EQ(body.protocol_version, "2026-07-28");
  EXPECT_EQ(ReadStatelessBody(R"({"jsonrpc":"2.0","method":"x"})").kind,
            StatelessBody::Kind::kNotification);
  EXPECT_EQ(ReadStatelessBody(R"({"jsonrpc":"2.0","id":3,"error":{}})").kind,
            StatelessBody::Kind::kResponse);
}

TEST(IsStatelessRequest, TellsTheEraFromTheVersionHeaderTheMetaOrServerDiscover) {
  std::string legacy_list = R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})";
  std::string initialize =
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})";
  Post none;
  Post legacy;
  legacy.Header("mcp-protocol-version", "2025-11-25").Header("mcp-session-id", "abc");
  Post modern;
  modern.Header("mcp-protocol-version", "2026-07-28");
  Post future;
  future.Header("mcp-protocol-version", "2030-01-01");
  Post garbage;
  garbage.Header("mcp-protocol-version", "2026-7-28");

  EXPECT_FALSE(IsStatelessRequest(none.Headers(), initialize));
  EXPECT_FALSE(IsStatelessRequest(legacy.Headers(), legacy_list));
  EXPECT_FALSE(IsStatelessRequest(garbage.Headers(), legacy_list));
  EXPECT_TRUE(IsStatelessRequest(modern.Headers(), legacy_list));
  EXPECT_TRUE(IsStatelessRequest(future.Headers(), legacy_list));
  EXPECT_TRUE(IsStatelessRequest(none.Headers(), Request("tools/list", "", "1900-01-01")));
  EXPECT_TRUE(IsStatelessRequest(
      none.Headers(), R"({"jsonrpc":"2.0","id":"d","method":"server/discover","params":{}})"));
}

TEST(IsStatelessEraVersion, AcceptsDatesFromTwentyTwentySixJulyTwentyEighth) {
  EXPECT_TRUE(IsStatelessEraVersion("2026-07-28"));
  EXPECT_TRUE(IsStatelessEraVersion("2026-12-01"));
  EXPECT_FALSE(IsStatelessEraVersion("2026-07-27"));
  EXPECT_FALSE(IsStatelessEraVersion("2025-11-25"));
  EXPECT_FALSE(IsStatelessEraVersion("2026-07-28 "));
  EXPECT_FALSE(IsStatelessEraVersion("2026/07/28"));
  EXPECT_FALSE(IsStatelessEraVersion("draft"));
}

// The value-encoding table of the specification (streamable-http.mdx, "Value Encoding").
TEST(EncodeMcpHeaderValue, EncodesExactlyTheValuesTheSpecificationTableEncodes) {
  EXPECT_EQ(EncodeMcpHeaderValue("us-west1"), "us-west1");
  EXPECT_EQ(EncodeMcpHeaderValue("Hello, \xE4\xB8\x96\xE7\x95\x8C"),
            "=?base64?SGVsbG8sIOS4lueVjA==?=");
  EXPECT_EQ(EncodeMcpHeaderValue(" padded "), "=?base64?IHBhZGRlZCA=?=");
  EXPECT_EQ(EncodeMcpHeaderValue("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
  EXPECT_EQ(EncodeMcpHeaderValue("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
}

TEST(DecodeMcpHeaderValue, DecodesTheSentinelFormAndPassesPlainValuesThrough) {
  EXPECT_EQ(DecodeMcpHeaderValue("get_weather").value(), "get_weather");
  EXPECT_EQ(DecodeMcpHeaderValue("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").value(),
            "=?base64?literal?=");
  EXPECT_EQ(DecodeMcpHeaderValue(R"(=?base64??=)").value(), "");
  // Markers are case-sensitive: an upper-case prefix is a plain value.
  EXPECT_EQ(DecodeMcpHeaderValue("=?BASE64?SGk=?=").value(), "=?BASE64?SGk=?=");
  EXPECT_EQ(DecodeMcpHeaderValue("=?base64?SGk?=").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string& v :
       {std::string("x y\t"), std::string("\x01\xFF", 2), std::string(" a")}) {
    EXPECT_EQ(DecodeMcpHeaderValue(EncodeMcpHeaderValue(v)).value(), v);
  }
}

TEST(DiscoverResultFromInitialize, CarriesCapabilitiesServerInfoAndInstructionsOver) {
  auto result = DiscoverResultFromInitialize(
      R"({"protocolVersion":"2025-11-25","capabilities":{ "tools" : {"listChanged":true} },)"
      R"("serverInfo":{"name":"echo","version":"1.0"},"instructions":"Say \"hi\"\n",)"
      R"("_meta":{"x":1}})");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result,
            R"({"resultType":"complete","supportedVersions":["2026-07-28"],)"
            R"("capabilities":{ "tools" : {"listChanged":true} },)"
            R"("serverInfo":{"name":"echo","version":"1.0"},"instructions":"Say \"hi\"\n",)"
            R"("ttlMs":0,"cacheScope":"private",)"
            R"("_meta":{"io.modelcontextprotocol/serverInfo":{"name":"echo","version":"1.0"}}})");
}

TEST(DiscoverResultFromInitialize, UsesTheGivenVersionsAndCacheHintsAndDefaultsCapabilities) {
  DiscoverOptions options;
  options.supported_versions = {"2026-07-28", "2026-12-01"};
  options.ttl_ms = 60000;
  options.cache_scope = CacheScope::kPublic;
  auto result = DiscoverResultFromInitialize(R"({"protocolVersion":"2025-06-18"})", options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, R"({"resultType":"complete","supportedVersions":["2026-07-28","2026-12-01"],)"
                     R"("capabilities":{},"ttlMs":60000,"cacheScope":"public"})");
}

TEST(DiscoverResultFromInitialize, RefusesAnInitializeResultOfTheWrongShape) {
  EXPECT_EQ(DiscoverResultFromInitialize(R"({"capabilities":[]})").status().message(),
            "cannot build server/discover from the initialize result: `capabilities` is not an "
            "object");
  EXPECT_EQ(DiscoverResultFromInitialize(R"({"instructions":3})").status().message(),
            "cannot build server/discover from the initialize result: `instructions` is not a "
            "string");
  EXPECT_EQ(DiscoverResultFromInitialize(R"({"capabilities":{"a":tru}})").status().message(),
            "cannot build server/discover from the initialize result: not valid JSON");
  EXPECT_EQ(DiscoverResultFromInitialize("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcpmw::http
