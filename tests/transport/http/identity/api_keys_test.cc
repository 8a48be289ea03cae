#include "src/transport/http/identity/api_keys.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/strings.h"

namespace mcpmw::http::identity {
namespace {

using ::testing::StartsWith;

absl::StatusOr<ApiKeyTable> Parse(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
  // The table copies what it keeps, so the parser may go.
  return ParseApiKeys(root, "/identity/apiKeys");
}

TEST(HashApiKey, IsTheLowercaseHexSha256OfTheKey) {
  EXPECT_EQ(HashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTable, FindsAKeyByItsPlaintextAndMapsItToItsPrincipal) {
  std::string json = absl::StrCat(
      R"([{"id":"ci-bot","sha256":")", HashApiKey("k-ci-0123456789"),
      R"(","tenant":"acme","user":"ci","agent":"ci-bot","scopes":["Tools:Call"," mcp "],)",
      R"("roles":["automation"]},{"id":"ops","sha256":")",
      absl::AsciiStrToUpper(HashApiKey("k-ops-0123456789")), R"("}])");
  absl::StatusOr<ApiKeyTable> table = Parse(json);
  ASSERT_TRUE(table.ok()) << table.status();

  const ApiKey* ci = table->Find("k-ci-0123456789");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->id, "ci-bot");
  EXPECT_EQ(ci->principal.tenant, "acme");
  EXPECT_EQ(ci->principal.user, "ci");
  EXPECT_EQ(ci->principal.agent, "ci-bot");
  EXPECT_EQ(ci->principal.scopes, (std::vector<std::string>{"mcp", "tools:call"}));
  EXPECT_EQ(ci->principal.roles, std::vector<std::string>{"automation"});

  // Upper-case hex in the config is the same digest.
  const ApiKey* ops = table->Find("k-ops-0123456789");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->id, "ops");
  EXPECT_EQ(ops->sha256, HashApiKey("k-ops-0123456789"));
  EXPECT_TRUE(ops->principal.tenant.empty());

  EXPECT_EQ(table->Find("k-ci-012345678"), nullptr);
  EXPECT_EQ(table->Find(""), nullptr);
  // The digest itself is not a key.
  EXPECT_EQ(table->Find(HashApiKey("k-ci-0123456789")), nullptr);
}

TEST(ParseApiKeys, RefusesAPlaintextKeyWhereTheDigestBelongs) {
  EXPECT_EQ(Parse(R"([{"id":"ci","sha256":"my-secret-key"}])").status(),
            absl::InvalidArgumentError(
                "/identity/apiKeys/0/sha256: expected 64 hex digits (the SHA-256 of the key, "
                "never the key itself), found 13 characters"));
  std::string not_hex(64, 'g');
  EXPECT_EQ(Parse(absl::StrCat(R"([{"id":"ci","sha256":")", not_hex, R"("}])")).status(),
            absl::InvalidArgumentError(
                "/identity/apiKeys/0/sha256: expected 64 hex digits (the SHA-256 of the key, "
                "never the key itself), found 64 characters"));
}

TEST(ParseApiKeys, RefusesRepeatedIdsRepeatedDigestsAndUnknownMembers) {
  std::string a = HashApiKey("a-key");
  std::string b = HashApiKey("b-key");
  EXPECT_EQ(
      Parse(absl::StrCat(R"([{"id":"x","sha256":")", a, R"("},{"id":"x","sha256":")", b, R"("}])"))
          .status(),
      absl::InvalidArgumentError(R"(/identity/apiKeys/1/id: "x" is the id of an earlier key)"));
  EXPECT_EQ(
      Parse(absl::StrCat(R"([{"id":"x","sha256":")", a, R"("},{"id":"y","sha256":")", a, R"("}])"))
          .status(),
      absl::InvalidArgumentError("/identity/apiKeys/1/sha256: the same digest as an earlier key"));
  absl::Status unknown =
      Parse(absl::StrCat(R"([{"id":"x","sha256":")", a, R"(","key":"plaintext"}])")).status();
  EXPECT_THAT(std::string(unknown.message()),
              StartsWith("/identity/apiKeys/0/key: unknown key; expected"));
  EXPECT_EQ(Parse(R"([{"sha256":"00"}])").status(),
            absl::InvalidArgumentError("/identity/apiKeys/0/id: required: a non-empty string"));
  EXPECT_EQ(Parse(R"({"id":"x"})").status(),
            absl::InvalidArgumentError("/identity/apiKeys: expected an array, found an object"));
}

}  // namespace
}  // namespace mcpmw::http::identity
