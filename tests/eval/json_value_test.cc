#include "src/eval/json_value.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "src/eval/cost.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

TEST(NumberToString, FollowsEcmaScriptLayout) {
  EXPECT_EQ(NumberToString(1e21), "1e+21");
  EXPECT_EQ(NumberToString(1e-7), "1e-7");
  EXPECT_EQ(NumberToString(1.5e-7), "1.5e-7");
  EXPECT_EQ(NumberToString(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(NumberToString(-0.0), "0");
  EXPECT_EQ(NumberToString(0.038), "0.038");
  EXPECT_EQ(NumberToString(1e20), "100000000000000000000");
  EXPECT_EQ(NumberToString(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(NumberToString(0.000001), "0.000001");
  EXPECT_EQ(NumberToString(30 * 0.00004), "0.0012000000000000001");
  EXPECT_EQ(NumberToString(1730000000000), "1730000000000");
  EXPECT_EQ(NumberToString(-42.5), "-42.5");
  EXPECT_EQ(NumberToString(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(NumberToString(std::nan("")), "NaN");
}

TEST(ToFixed, RoundsTheExactValueHalfAwayFromZero) {
  EXPECT_EQ(ToFixed(0.038, 4), "0.0380");
  EXPECT_EQ(ToFixed(0, 4), "0.0000");
  EXPECT_EQ(ToFixed(-0.0, 4), "0.0000");
  EXPECT_EQ(ToFixed(-0.01, 4), "-0.0100");
  EXPECT_EQ(ToFixed(0.03125, 4), "0.0313");  // exact tie: toFixed takes the larger
  EXPECT_EQ(ToFixed(-0.03125, 4), "-0.0313");
  EXPECT_EQ(ToFixed(1.00005, 4), "1.0001");  // 1.00005 is really 1.0000500000000001…
  EXPECT_EQ(ToFixed(0.00015, 4), "0.0001");  // 0.00015 is really 0.00014999999999999998…
  EXPECT_EQ(ToFixed(2.5, 0), "3");
  EXPECT_EQ(ToFixed(1e21, 4), "1e+21");
}

TEST(RoundHalfEven4, MatchesThePrototypesVerifiedTotals) {
  EXPECT_EQ(RoundHalfEven4(0.00005), 0);
  EXPECT_EQ(RoundHalfEven4(0.00015000000000000001), 0.0002);
  EXPECT_EQ(RoundHalfEven4(0.00025), 0.0002);
  EXPECT_EQ(RoundHalfEven4(1.00005), 1);
  EXPECT_EQ(RoundHalfEven4(2.00015), 2.0002);
  EXPECT_EQ(NumberToString(RoundHalfEven4(-0.00005)), "0");
  EXPECT_EQ(RoundHalfEven4(0.01 + 120 * 0.0001 + 80 * 0.0002), 0.038);
  EXPECT_EQ(RoundHalfEven4(0.01 + 120 * 0.0001), 0.022);
}

TEST(JsTrim, StripsEcmaScriptWhitespaceIncludingNbspAndBom) {
  EXPECT_EQ(JsTrim("\xC2\xA0 admin\t\xEF\xBB\xBF"), "admin");
  EXPECT_EQ(JsTrim("\xE2\x80\x80x\xE3\x80\x80"), "x");  // U+2000, U+3000
  EXPECT_EQ(JsTrim(" \n\r\v\f "), "");
  EXPECT_EQ(JsTrim("a b"), "a b");
  EXPECT_EQ(JsTrim("\xC3\xA9"), "\xC3\xA9");  // é is not whitespace
}

TEST(JsToLower, LowersAsciiAndCommonScripts) {
  EXPECT_EQ(JsToLower("Search.Web"), "search.web");
  EXPECT_EQ(JsToLower("\xC3\x89T\xC3\x89"), "\xC3\xA9t\xC3\xA9");  // ÉTÉ
  EXPECT_EQ(JsToLower("\xCE\xA9\xD0\x96"), "\xCF\x89\xD0\xB6");    // ΩЖ
  EXPECT_EQ(JsToLower("\xC4\xB0"), "i\xCC\x87");                   // İ
}

TEST(CompareCodeUnits, OrdersLikeJavaScriptLessThan) {
  EXPECT_LT(CompareCodeUnits("A", "a"), 0);
  EXPECT_LT(CompareCodeUnits("a", "ab"), 0);
  EXPECT_EQ(CompareCodeUnits("same", "same"), 0);
  // U+FF21 (EF BC A1) sorts after U+1F600 (F0 9F 98 80) in UTF-16, before it in UTF-8.
  EXPECT_GT(CompareCodeUnits("\xEF\xBC\xA1", "\xF0\x9F\x98\x80"), 0);
  EXPECT_LT(CompareCodeUnits("\xE4\xB8\x80", "\xF0\x9F\x98\x80"), 0);  // U+4E00 < U+1F600
}

TEST(Utf16Prefix, CountsUtf16UnitsAndNeverSplitsAPair) {
  EXPECT_EQ(Utf16Prefix("abcdef", 3), "abc");
  EXPECT_EQ(Utf16Prefix("\xC3\xA9\xC3\xA9", 1), "\xC3\xA9");
  EXPECT_EQ(Utf16Prefix("a\xF0\x9F\x98\x80", 2), "a");
  EXPECT_EQ(Utf16Prefix("a\xF0\x9F\x98\x80", 3), "a\xF0\x9F\x98\x80");
}

TEST(CanonicalJson, SortsKeysAtEveryDepthAndEscapesLikeJsonStringify) {
  absl::StatusOr<JsonValue> v =
      ParseJson(R"({"b":[{"z":1,"a":null}],"a":"q\"\\\b\f\n\r\t\u0001é/","c":1e-7})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(CanonicalJson(*v),
            "{\"a\":\"q\\\"\\\\\\b\\f\\n\\r\\t\\u0001\xC3\xA9/\",\"b\":[{\"a\":null,\"z\":1}],"
            "\"c\":1e-7}");
  EXPECT_EQ(StringifyJson(*v).substr(0, 5), "{\"b\":");  // insertion order kept
}

TEST(ParseJson, RepeatedKeyKeepsFirstPositionAndLastValue) {
  absl::StatusOr<JsonValue> v = ParseJson(R"({"a":1,"b":2,"a":3})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(StringifyJson(*v), R"({"a":3,"b":2})");
}

TEST(ParseJson, RejectsTextThatIsNotJson) {
  absl::StatusOr<JsonValue> v = ParseJson("{\"a\":");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(v.status().message().empty());
}

TEST(JsonValue, EqualityIgnoresMemberOrderButNotValues) {
  EXPECT_EQ(*ParseJson(R"({"a":1,"b":[true,null]})"), *ParseJson(R"({"b":[true,null],"a":1.0})"));
  EXPECT_FALSE(*ParseJson(R"({"a":1})") == *ParseJson(R"({"a":"1"})"));
  EXPECT_FALSE(*ParseJson(R"({"a":1})") == *ParseJson(R"({"a":1,"b":1})"));
}

}  // namespace
}  // namespace mcpmw::eval
