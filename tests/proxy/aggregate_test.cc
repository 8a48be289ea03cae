#include "src/proxy/aggregate.h"

#include <string>

#include "gtest/gtest.h"

namespace mcpmw::proxy {
namespace {

bool AllToolNameChars(const std::string& name) {
  for (char c : name) {
    if (!IsToolNameChar(c)) {
      return false;
    }
  }
  return true;
}

TEST(NamespacedToolName, JoinsServerAndToolWithTwoUnderscoresWhenShortAndValid) {
  EXPECT_EQ(NamespacedToolName("echo", "say"), "echo__say");
  EXPECT_EQ(NamespacedToolName("fs", "admin.tools.list"), "fs__admin.tools.list");
  std::string tool(55, 't');  // 7 + 2 + 55: exactly 64 characters stay readable
  EXPECT_EQ(NamespacedToolName("srvsrvs", tool), "srvsrvs__" + tool);
  EXPECT_NE(NamespacedToolName("srvsrvs", tool + "t"), "srvsrvs__" + tool + "t");
}

// Expected values come from the rule in aggregate.h, computed outside mcpmw (Python hashlib, and
// `printf 'github\0search_…_v2' | sha256sum` → 1181643a5d2c…), so this pins the rule itself:
// a client that cached a name keeps reaching the tool after an upgrade.
TEST(NamespacedToolName, ShortensALongNameToAPrefixAndEightHexDigitsOfSha256) {
  std::string name = NamespacedToolName(
      "github", "search_repositories_with_advanced_filters_and_pagination_support_v2");
  EXPECT_EQ(name, "github__search_repositories_with_advanced_filters_and_p_1181643a");
  EXPECT_EQ(name.size(), kMaxAggregatedToolNameLength);
  EXPECT_TRUE(AllToolNameChars(name));
}

TEST(NamespacedToolName, KeepsTwoLongNamesWithACommonSixtyCharacterPrefixDistinct) {
  std::string prefix(60, 'x');
  std::string a = NamespacedToolName("srv", prefix + "_alpha");
  std::string b = NamespacedToolName("srv", prefix + "_beta");
  EXPECT_EQ(a, "srv__xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_83809951");
  EXPECT_EQ(b, "srv__xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_388c739b");
  EXPECT_NE(a, b);
  EXPECT_LE(a.size(), kMaxAggregatedToolNameLength);
  EXPECT_LE(b.size(), kMaxAggregatedToolNameLength);
}

TEST(NamespacedToolName, ReplacesInvalidCharactersAndAddsTheHashSoTheResultIsValidAndUnique) {
  EXPECT_EQ(NamespacedToolName("fs", "read file"), "fs__read_file_fe5680de");
  // The sanitised name never equals the name of a tool that really is called read_file.
  EXPECT_NE(NamespacedToolName("fs", "read file"), NamespacedToolName("fs", "read_file"));
  // é is two UTF-8 bytes, each replaced.
  EXPECT_EQ(NamespacedToolName("cafe", "caf\xC3\xA9"), "cafe__caf___4c91be7b");
  EXPECT_EQ(NamespacedToolName("s", ""), "s___28a3d6d5");
  std::string weird = NamespacedToolName("my server/with spaces", std::string(200, '\x01'));
  EXPECT_LE(weird.size(), kMaxAggregatedToolNameLength);
  EXPECT_TRUE(AllToolNameChars(weird));
}

TEST(NamespacedToolName, IsAlwaysValidAndAtMostSixtyFourCharactersForAnyLength) {
  for (size_t n = 0; n < 140; n += 7) {
    for (size_t m = 0; m < 140; m += 11) {
      std::string name = NamespacedToolName(std::string(n, 's'), std::string(m, 't'));
      EXPECT_GE(name.size(), 1u);
      EXPECT_LE(name.size(), kMaxAggregatedToolNameLength) << n << " " << m;
      EXPECT_TRUE(AllToolNameChars(name)) << name;
    }
  }
}

TEST(IsNamespaceSafeServerName, RefusesNamesThatWouldMakeServerBoundariesAmbiguous) {
  EXPECT_TRUE(IsNamespaceSafeServerName("echo"));
  EXPECT_TRUE(IsNamespaceSafeServerName("my_server.v2-eu"));
  EXPECT_FALSE(IsNamespaceSafeServerName(""));
  EXPECT_FALSE(IsNamespaceSafeServerName("a__b"));  // "a__b" + "c" == "a" + "b__c"
  EXPECT_FALSE(IsNamespaceSafeServerName("a_"));    // "a_" + "_x" == "a" + "__x"
  EXPECT_FALSE(IsNamespaceSafeServerName("has space"));
  EXPECT_FALSE(IsNamespaceSafeServerName(std::string(33, 'a')));
}

constexpr char kEchoPage[] =
    R"({"tools":[{ "name" : "say", "description":"Says \"name\": hi",)"
    R"( "inputSchema":{"type":"object","properties":{"name":{"type":"string"}}}},)"
    R"({"name":"shout","title":"Shout"}]})";
constexpr char kFsPage[] = R"({"tools":[{"name":"read_file","inputSchema":{}}],"_meta":{}})";

TEST(ToolDirectory, MergesServersRenamingOnlyTheNameValueAndKeepingEveryOtherByte) {
  ToolDirectory dir;
  ASSERT_TRUE(dir.Add("echo", kEchoPage).ok());
  ASSERT_TRUE(dir.Add("fs", kFsPage).ok());
  EXPECT_EQ(dir.MergedResult(),
            R"({"tools":[{ "name" : "echo__say", "description":"Says \"name\": hi",)"
            R"( "inputSchema":{"type":"object","properties":{"name":{"type":"string"}}}},)"
            R"({"name":"echo__shout","title":"Shout"},)"
            R"({"name":"fs__read_file","inputSchema":{}}]})");
  EXPECT_EQ(dir.size(), 3u);
  EXPECT_TRUE(dir.warnings().empty());
}

TEST(ToolDirectory, ResolvesEveryMergedNameBackToItsServerAndOriginalName) {
  ToolDirectory dir;
  ASSERT_TRUE(dir.Add("echo", kEchoPage).ok());
  ASSERT_TRUE(dir.Add("fs", kFsPage).ok());
  EXPECT_EQ(dir.Resolve("echo__say"), (ToolTarget{"echo", "say"}));
  EXPECT_EQ(dir.Resolve("echo__shout"), (ToolTarget{"echo", "shout"}));
  EXPECT_EQ(dir.Resolve("fs__read_file"), (ToolTarget{"fs", "read_file"}));
  EXPECT_EQ(dir.Resolve("say"), std::nullopt);
  EXPECT_EQ(dir.Resolve("fs__say"), std::nullopt);
}

TEST(ToolDirectory, ReadsEscapedNamesAndKeysAndResolvesToTheUnescapedOriginal) {
  ToolDirectory dir;
  // "caf\u00e9" is café; the key "na\u006de" is "name".
  ASSERT_TRUE(dir.Add("cafe", R"({"tools":[{"na\u006de":"caf\u00e9","x":1}]})").ok());
  std::string expected_name = NamespacedToolName("cafe", "caf\xC3\xA9");
  EXPECT_EQ(dir.MergedResult(), R"({"tools":[{"na\u006de":")" + expected_name + R"(","x":1}]})");
  EXPECT_EQ(dir.Resolve(expected_name), (ToolTarget{"cafe", "caf\xC3\xA9"}));
}

TEST(ToolDirectory, ShortensLongNamesAndResolvesThemBack) {
  ToolDirectory dir;
  std::string long_tool(100, 'q');
  ASSERT_TRUE(dir.Add("srv", R"({"tools":[{"name":")" + long_tool + R"("}]})").ok());
  std::string name = NamespacedToolName("srv", long_tool);
  EXPECT_EQ(name.size(), kMaxAggregatedToolNameLength);
  EXPECT_EQ(dir.Resolve(name), (ToolTarget{"srv", long_tool}));
}

TEST(ToolDirectory, DropsTheLaterOfTwoPairsThatMapToOneNameAndReportsIt) {
  ToolDirectory dir;
  // Unsafe server names: "a__b" + "c" and "a" + "b__c" both read "a__b__c".
  ASSERT_TRUE(dir.Add("a", R"({"tools":[{"name":"b__c","v":1}]})").ok());
  auto page = dir.Add("a__b", R"({"tools":[{"name":"c","v":2}]})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->tools_added, 0u);
  EXPECT_EQ(dir.MergedResult(), R"({"tools":[{"name":"a__b__c","v":1}]})");
  EXPECT_EQ(dir.Resolve("a__b__c"), (ToolTarget{"a", "b__c"}));
  ASSERT_EQ(dir.warnings().size(), 1u);
  EXPECT_EQ(dir.warnings()[0].server, "a__b");
  EXPECT_EQ(dir.warnings()[0].tool, "c");
  EXPECT_EQ(dir.warnings()[0].message,
            R"(its name "a__b__c" is already used by tool "b__c" of server "a")");
}

TEST(ToolDirectory, KeepsTheFirstOfATwiceListedToolAndReportsTheSecond) {
  ToolDirectory dir;
  ASSERT_TRUE(dir.Add("s", R"({"tools":[{"name":"t","v":1}],"nextCursor":"p2"})").ok());
  ASSERT_TRUE(dir.Add("s", R"({"tools":[{"name":"t","v":2}]})").ok());
  EXPECT_EQ(dir.MergedResult(), R"({"tools":[{"name":"s__t","v":1}]})");
  ASSERT_EQ(dir.warnings().size(), 1u);
  EXPECT_EQ(dir.warnings()[0].message, "listed more than once; the first definition is kept");
}

TEST(ToolDirectory, DropsToolsWithoutAUsableNameAndKeepsTheRest) {
  ToolDirectory dir;
  auto page = dir.Add("s", R"({"tools":[7,{"title":"x"},{"name":5},)"
                           R"({"name":"a","name":"b"},{"name":"ok"}]})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->tools_added, 1u);
  EXPECT_EQ(dir.MergedResult(), R"({"tools":[{"name":"s__ok"}]})");
  ASSERT_EQ(dir.warnings().size(), 4u);
  EXPECT_EQ(dir.warnings()[0].message, "tools[0] is not an object");
  EXPECT_EQ(dir.warnings()[1].message, "tools[1] has no string `name`");
  EXPECT_EQ(dir.warnings()[2].message, "tools[2] has no string `name`");
  EXPECT_EQ(dir.warnings()[3].message, "tools[3] has `name` more than once");
}

TEST(ToolDirectory, ReturnsTheNextCursorSoTheGatewayFetchesEveryPage) {
  ToolDirectory dir;
  auto first = dir.Add("s", R"({"tools":[{"name":"a"}],"nextCursor":"page-2"})");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->next_cursor, "page-2");
  auto second = dir.Add("s", R"({"tools":[{"name":"b"}]})");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->next_cursor, std::nullopt);
  // The merged list is complete: it never carries a cursor.
  EXPECT_EQ(dir.MergedResult(), R"({"tools":[{"name":"s__a"},{"name":"s__b"}]})");
}

TEST(ToolDirectory, AppendsExtraMembersToTheMergedResult) {
  ToolDirectory dir;
  ASSERT_TRUE(dir.Add("s", R"({"tools":[]})").ok());
  EXPECT_EQ(dir.MergedResult(R"("resultType":"complete","ttlMs":0,"cacheScope":"private")"),
            R"({"tools":[],"resultType":"complete","ttlMs":0,"cacheScope":"private"})");
}

TEST(ToolDirectory, RefusesAPageThatIsNotAToolsListResultAndAddsNothing) {
  ToolDirectory dir;
  auto not_json = dir.Add("s", R"({"tools":[{"name":"a"}],)");
  EXPECT_EQ(not_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(not_json.status().message(), "tools/list result of server \"s\": not valid JSON");
  EXPECT_EQ(dir.Add("s", R"([{"name":"a"}])").status().message(),
            "tools/list result of server \"s\": not a JSON object");
  EXPECT_EQ(dir.Add("s", R"({"tool":[]})").status().message(),
            "tools/list result of server \"s\": no `tools` array");
  EXPECT_EQ(dir.Add("s", R"({"tools":{}})").status().message(),
            "tools/list result of server \"s\": `tools` is not an array");
  EXPECT_EQ(dir.Add("s", R"({"tools":[{"name":"a"}],"tools":[]})").status().message(),
            "tools/list result of server \"s\": `tools` appears more than once");
  EXPECT_EQ(dir.size(), 0u);
  EXPECT_EQ(dir.Resolve("s__a"), std::nullopt);
}

TEST(RewriteToolCallName, ReplacesOnlyParamsNameAndKeepsEveryOtherByte) {
  std::string request = R"({"jsonrpc":"2.0","id":7,"name":"top","method":"tools/call",)"
                        R"( "params" : { "arguments":{"name":"keep","text":"\"name\":\"x\""},)"
                        R"( "name" :  "echo__say"  , "_meta":{"name":"m"} } })";
  auto out = RewriteToolCallName(request, "say");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"jsonrpc":"2.0","id":7,"name":"top","method":"tools/call",)"
                  R"( "params" : { "arguments":{"name":"keep","text":"\"name\":\"x\""},)"
                  R"( "name" :  "say"  , "_meta":{"name":"m"} } })");
}

TEST(RewriteToolCallName, ReplacesANameWrittenWithEscapesUnderAnEscapedKey) {
  auto out = RewriteToolCallName(
      R"({"id":"a","params":{"n\u0061me":"echo__s\u0061y\"","arguments":{}}})", "s\"ay");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"id":"a","params":{"n\u0061me":"s\"ay","arguments":{}}})");
}

TEST(RewriteToolCallName, RefusesRequestsWhoseNameIsAmbiguousOrMissing) {
  auto message = [](std::string_view request) {
    return std::string(RewriteToolCallName(request, "x").status().message());
  };
  EXPECT_EQ(message(R"({"params":{"name":"a","name":"b"}})"),
            "cannot rename the tool: `params.name` appears twice");
  EXPECT_EQ(message(R"({"params":{"name":"a"},"params":{"name":"b"}})"),
            "cannot rename the tool: `params` appears twice");
  EXPECT_EQ(message(R"({"params":{"arguments":{"name":"a"}}})"),
            "cannot rename the tool: `params.name` is missing or not a string");
  EXPECT_EQ(message(R"({"params":{"name":7}})"),
            "cannot rename the tool: `params.name` is missing or not a string");
  EXPECT_EQ(message(R"({"method":"tools/call"})"),
            "cannot rename the tool: the request has no `params`");
  EXPECT_EQ(message(R"({"params":[1]})"), "cannot rename the tool: `params` is not an object");
  EXPECT_EQ(message(R"([{"params":{"name":"a"}}])"),
            "cannot rename the tool: the request is not a JSON object");
  EXPECT_EQ(message(R"({"params":{"name":"a"}} {})"),
            "cannot rename the tool: bytes follow the request object");
  EXPECT_EQ(RewriteToolCallName(R"({"params":{"name":"a","name":"b"}})", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcpmw::proxy
