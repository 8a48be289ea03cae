#include "src/middleware/redaction/detectors.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::redaction {
namespace {

using ::testing::HasSubstr;

// Secrets-shaped fixtures are assembled from pieces so repository secret scanners do not flag
// the test source.
const std::string github_token = std::string("ghp") + "_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z00";
const std::string slack_token = std::string("xo") + "xb-1234567890-0987654321-AbCdEfGhIjKl";
const std::string stripe_key = std::string("sk") + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc";
const std::string gcp_key = std::string("AI") + "zaSyD-1234567890abcdefghijklmnopqrstu";
const std::string aws_key_id = std::string("AK") + "IAIOSFODNN7EXAMPLE";
const std::string aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

DetectorSet Builtins() {
  absl::StatusOr<DetectorSet> set = DetectorSet::Create(BuiltinDetectors());
  EXPECT_TRUE(set.ok()) << set.status();
  return *std::move(set);
}

// Redact with the built-in set; returns the input itself when nothing matched.
std::string RedactAll(const std::string& text) {
  static const DetectorSet set = Builtins();
  std::string out = text;
  set.Redact(text, &out, nullptr);
  return out;
}

bool Changes(const std::string& text) {
  static const DetectorSet set = Builtins();
  std::string out;
  return set.Redact(text, &out, nullptr);
}

TEST(Detectors, RedactsEmailInProse) {
  EXPECT_EQ(RedactAll("Please contact alice.smith+ops@example.com about the outage."),
            "Please contact [EMAIL_REDACTED] about the outage.");
}

TEST(Detectors, EmailLeavesSentenceFinalDotAndLeadingDotsOutside) {
  EXPECT_EQ(RedactAll("Write to ..bob@mail.example.co.uk."), "Write to ..[EMAIL_REDACTED].");
}

TEST(Detectors, KeepsAtSignsThatAreNotAddresses) {
  EXPECT_FALSE(Changes("ping @handle, user@localhost, a@b.c, x@host.c0m and 1@-bad.com"));
}

TEST(Detectors, RedactsCardNumbersWithAndWithoutSeparators) {
  EXPECT_EQ(RedactAll("visa 4111 1111 1111 1111, mc 5555-5555-5555-4444, amex 378282246310005."),
            "visa [CARD_REDACTED], mc [CARD_REDACTED], amex [CARD_REDACTED].");
}

TEST(Detectors, KeepsCardNumberFailingLuhn) {
  EXPECT_FALSE(Changes("card 4111 1111 1111 1112 declined"));
}

TEST(Detectors, KeepsTimestampsAndDigitsGluedToLetters) {
  // 13 digits starting with 1 (a millisecond timestamp), a Luhn-valid number inside a word.
  EXPECT_FALSE(Changes("ts=1700000000000 id=x4111111111111111 ref=4111111111111111abc"));
}

TEST(Detectors, TakesLongestLuhnValidGroupPrefixOfALongerRun) {
  EXPECT_EQ(RedactAll("card 4111 1111 1111 1111 2024 exp"), "card [CARD_REDACTED] 2024 exp");
}

TEST(Detectors, CardMayStartAtAnyGroupOfARun) {
  EXPECT_EQ(RedactAll("qty 1 4111 1111 1111 1111"), "qty 1 [CARD_REDACTED]");
}

TEST(Detectors, RedactsUsSsn) { EXPECT_EQ(RedactAll("SSN: 123-45-6789."), "SSN: [SSN_REDACTED]."); }

TEST(Detectors, KeepsSsnWithReservedAreaGroupOrSerial) {
  EXPECT_FALSE(Changes("000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000"));
}

TEST(Detectors, KeepsSsnShapeInsideLongerNumbers) {
  EXPECT_FALSE(Changes("part 9-123-45-6789 and 123-45-6789-1 and A123-45-6789"));
}

TEST(Detectors, RedactsIbanWithAndWithoutSpaces) {
  EXPECT_EQ(RedactAll("pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 today"),
            "pay [IBAN_REDACTED] or [IBAN_REDACTED] today");
}

TEST(Detectors, IbanStopsBeforeTrailingUppercaseWord) {
  EXPECT_EQ(RedactAll("NL91 ABNA 0417 1643 00 EUR"), "[IBAN_REDACTED] EUR");
}

TEST(Detectors, KeepsIbanWithBadChecksum) {
  EXPECT_FALSE(Changes("pay DE88 3704 0044 0532 0130 00 today"));
}

TEST(Detectors, RedactsAwsAccessKeyId) {
  EXPECT_EQ(RedactAll("key=" + aws_key_id + "\n"), "key=[CLOUD_KEY_REDACTED]\n");
}

TEST(Detectors, RedactsAwsSecretOnlyWhenLabelled) {
  EXPECT_EQ(RedactAll("aws_secret_access_key = " + aws_secret),
            "aws_secret_access_key = [CLOUD_KEY_REDACTED]");
  EXPECT_EQ(RedactAll("{\"SecretAccessKey\": \"" + aws_secret + "\"}"),
            "{\"SecretAccessKey\": \"[CLOUD_KEY_REDACTED]\"}");
  EXPECT_FALSE(Changes("checksum " + aws_secret));
}

TEST(Detectors, RedactsGcpGithubSlackAndStripeKeys) {
  EXPECT_EQ(RedactAll(gcp_key + " " + github_token + " " + slack_token + " " + stripe_key),
            "[CLOUD_KEY_REDACTED] [CLOUD_KEY_REDACTED] [CLOUD_KEY_REDACTED] "
            "[CLOUD_KEY_REDACTED]");
}

// The cloud-key scan reads sixteen positions at a time, each with the byte before and the two
// after, and the last few bytes one by one: a key must be found at every offset, and one glued
// to a word before it at none.
TEST(Detectors, FindsCloudKeysAtEveryOffsetAndNeverGluedToAWord) {
  const std::string keys[] = {aws_key_id, github_token, slack_token, stripe_key, gcp_key};
  for (const std::string& key : keys) {
    for (size_t offset = 0; offset <= 40; ++offset) {
      const std::string before(offset, ' ');
      EXPECT_EQ(RedactAll(before + key), before + "[CLOUD_KEY_REDACTED]") << key << " @" << offset;
      EXPECT_EQ(RedactAll(before + key + ".."), before + "[CLOUD_KEY_REDACTED]..")
          << key << " @" << offset;
      if (offset > 0) {
        const std::string glued = std::string(offset, 'q') + key;
        EXPECT_FALSE(Changes(glued)) << glued;
      }
    }
  }
  for (size_t offset = 0; offset <= 40; ++offset) {
    const std::string label = std::string(offset, ' ') + "AWS_SECRET_ACCESS_KEY=";
    EXPECT_EQ(RedactAll(label + aws_secret), label + "[CLOUD_KEY_REDACTED]") << offset;
  }
}

TEST(Detectors, KeepsKeyPrefixesWithWrongLength) {
  EXPECT_FALSE(Changes("AKIA1234 ghp_short sk_live_tooshort xoxb-1"));
}

TEST(Detectors, RedactsBearerTokenAndKeepsTheWord) {
  EXPECT_EQ(RedactAll("Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543."),
            "Authorization: Bearer [TOKEN_REDACTED].");
}

TEST(Detectors, KeepsBearerInOrdinaryProse) {
  EXPECT_FALSE(Changes("The bearer of this letter, a bearer bond."));
}

TEST(Detectors, RedactsJwtAnywhere) {
  EXPECT_EQ(RedactAll("token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r"
                      "_wW1gFWFOEjXk; path=/"),
            "token=[TOKEN_REDACTED]; path=/");
}

TEST(Detectors, RedactsPrivateKeyBlock) {
  EXPECT_EQ(RedactAll("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7b\n"
                      "-----END RSA PRIVATE KEY-----\ndone"),
            "key:\n[PRIVATE_KEY_REDACTED]\ndone");
}

TEST(Detectors, RedactsUnterminatedPrivateKeyToTheEnd) {
  EXPECT_EQ(RedactAll("x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA"),
            "x [PRIVATE_KEY_REDACTED]");
}

TEST(Detectors, KeepsPublicKeysAndCertificates) {
  EXPECT_FALSE(
      Changes("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----"));
}

TEST(Detectors, RedactsAdjacentMatches) {
  EXPECT_EQ(RedactAll("a@b.co,c@d.io 123-45-6789/4111111111111111"),
            "[EMAIL_REDACTED],[EMAIL_REDACTED] [SSN_REDACTED]/[CARD_REDACTED]");
}

TEST(Detectors, ScanReportsSortedOffsetsAndDetectors) {
  DetectorSet set = Builtins();
  std::vector<Match> matches;
  set.Scan("id 123-45-6789 mail x@y.org", &matches);
  ASSERT_EQ(matches.size(), 2u);
  EXPECT_EQ(matches[0].begin, 3u);
  EXPECT_EQ(matches[0].end, 14u);
  EXPECT_EQ(matches[0].kind, DetectorKind::kUsSsn);
  EXPECT_EQ(set.spec(matches[0].detector).id, "us_ssn");
  EXPECT_EQ(matches[1].begin, 20u);
  EXPECT_EQ(matches[1].end, 27u);
  EXPECT_EQ(matches[1].kind, DetectorKind::kEmail);
}

TEST(Detectors, OverlapGoesToTheLongestMatch) {
  // The custom pattern matches "123-45", a prefix of the SSN: the SSN is longer and wins.
  absl::StatusOr<DetectorSet> set =
      DetectorSet::Create({{DetectorKind::kCustom, "short", R"(\d{3}-\d{2})", "[SHORT]"},
                           {DetectorKind::kUsSsn, "", "", ""}});
  ASSERT_TRUE(set.ok()) << set.status();
  std::string out;
  ASSERT_TRUE(set->Redact("ssn 123-45-6789", &out, nullptr));
  EXPECT_EQ(out, "ssn [SSN_REDACTED]");
}

TEST(Detectors, EqualOverlapGoesToTheEarlierDetector) {
  absl::StatusOr<DetectorSet> set =
      DetectorSet::Create({{DetectorKind::kCustom, "employee-ssn", R"(\d{3}-\d{2}-\d{4})", "[EMP]"},
                           {DetectorKind::kUsSsn, "", "", ""}});
  ASSERT_TRUE(set.ok()) << set.status();
  std::string out;
  std::vector<Match> matches;
  ASSERT_TRUE(set->Redact("ssn 123-45-6789", &out, &matches));
  EXPECT_EQ(out, "ssn [EMP]");
  ASSERT_EQ(matches.size(), 1u);
  EXPECT_EQ(matches[0].detector, 0u);
  EXPECT_EQ(matches[0].kind, DetectorKind::kCustom);
}

TEST(Detectors, CustomRe2PatternRedactsWithItsReplacement) {
  absl::StatusOr<DetectorSet> set =
      DetectorSet::Create({{DetectorKind::kCustom, "employee-id", "EMP-[0-9]{6}", "[EMPLOYEE]"},
                           {DetectorKind::kCustom, "project", "(?i)project\\s+falcon", ""}});
  ASSERT_TRUE(set.ok()) << set.status();
  std::string out;
  ASSERT_TRUE(set->Redact("EMP-004211 works on Project  Falcon; EMP-12 does not", &out, nullptr));
  EXPECT_EQ(out, "[EMPLOYEE] works on [REDACTED]; EMP-12 does not");
}

TEST(Detectors, CustomPatternMatchingEmptyIsIgnored) {
  absl::StatusOr<DetectorSet> set =
      DetectorSet::Create({{DetectorKind::kCustom, "maybe", "x*", "[X]"}});
  ASSERT_TRUE(set.ok()) << set.status();
  std::string out;
  ASSERT_TRUE(set->Redact("abxxc", &out, nullptr));
  EXPECT_EQ(out, "ab[X]c");
}

TEST(Detectors, InvalidRe2IsAnErrorNamingTheDetector) {
  absl::StatusOr<DetectorSet> set =
      DetectorSet::Create({{DetectorKind::kCustom, "employee-id", "EMP-([0-9]{6}", ""}});
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr("detector \"employee-id\": invalid RE2 pattern"));
}

TEST(Detectors, RejectsPatternOnFixedKindDuplicateIdAndEmptyCustom) {
  absl::StatusOr<DetectorSet> a = DetectorSet::Create({{DetectorKind::kEmail, "mail", "x", ""}});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("detector \"mail\""));

  absl::StatusOr<DetectorSet> b = DetectorSet::Create(
      {{DetectorKind::kEmail, "", "", ""}, {DetectorKind::kCustom, "email", "x", ""}});
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("detector \"email\": duplicate id"));

  absl::StatusOr<DetectorSet> c = DetectorSet::Create({{DetectorKind::kCustom, "c", "", ""}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("detector \"c\": custom detector without a pattern"));
}

TEST(Detectors, RedactLeavesOutputUntouchedWhenNothingMatches) {
  DetectorSet set = Builtins();
  std::string out = "sentinel";
  std::vector<Match> matches;
  EXPECT_FALSE(set.Redact("nothing to see here: 42, build 2024-05-01", &out, &matches));
  EXPECT_EQ(out, "sentinel");
  EXPECT_TRUE(matches.empty());
}

TEST(Detectors, EmptySetNeverMatches) {
  DetectorSet set;
  std::vector<Match> matches;
  set.Scan("a@b.co 123-45-6789", &matches);
  EXPECT_TRUE(matches.empty());
}

TEST(Detectors, WorksOnNonAsciiAndInvalidUtf8) {
  EXPECT_EQ(RedactAll("Grüße an jürgen@example.de \xff\xfe 123-45-6789\xc3"),
            "Grüße an [EMAIL_REDACTED] \xff\xfe [SSN_REDACTED]\xc3");
}

TEST(Detectors, KindNamesAndDefaultReplacements) {
  EXPECT_EQ(DetectorKindName(DetectorKind::kCardNumber), "card_number");
  EXPECT_EQ(DetectorKindName(DetectorKind::kBearerToken), "bearer_token");
  EXPECT_EQ(DefaultReplacement(DetectorKind::kIban), "[IBAN_REDACTED]");
  EXPECT_EQ(BuiltinDetectors().size(), 7u);
}

TEST(Detectors, FindsEachKindAtEveryOffsetAroundTheSixteenByteBlocks) {
  // The pre-filter reads sixteen bytes at a time and the rest one by one; a secret must be found
  // wherever it sits relative to those blocks, and the text around it left alone.
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  const std::pair<std::string, std::string> cases[] = {
      {"alice@example.com", "[EMAIL_REDACTED]"},
      {"4111 1111 1111 1111", "[CARD_REDACTED]"},
      {"123-45-6789", "[SSN_REDACTED]"},
      {"GB82WEST12345698765432", "[IBAN_REDACTED]"},
      {aws_key_id, "[CLOUD_KEY_REDACTED]"},
      {github_token, "[CLOUD_KEY_REDACTED]"},
      {slack_token, "[CLOUD_KEY_REDACTED]"},
      {stripe_key, "[CLOUD_KEY_REDACTED]"},
      {gcp_key, "[CLOUD_KEY_REDACTED]"},
      {"aws_secret_access_key = " + aws_secret, "aws_secret_access_key = [CLOUD_KEY_REDACTED]"},
      {"Bearer 8f14e45fceea167a5a36dedd4bea2543", "Bearer [TOKEN_REDACTED]"},
      {"BEARER 8f14e45fceea167a5a36dedd4bea2543", "BEARER [TOKEN_REDACTED]"},
      {jwt, "[TOKEN_REDACTED]"},
  };
  for (const auto& [secret, redacted] : cases) {
    for (size_t before = 0; before <= 33; ++before) {
      for (size_t after : {size_t{0}, size_t{1}, size_t{15}, size_t{17}}) {
        std::string text = std::string(before, ' ') + secret + std::string(after, ' ');
        ASSERT_EQ(RedactAll(text), std::string(before, ' ') + redacted + std::string(after, ' '))
            << "before " << before << ", after " << after << ": " << text;
      }
    }
  }
}

TEST(Detectors, FindsCardsAtEveryOffsetAmongBytesThatCannotBePartOfOne) {
  // Cards are looked for only in text holding 13 digits, spaces or dashes in a row, a run the
  // pre-filter tracks across its sixteen-byte blocks and the last block's overlap. With padding
  // that is none of those, the run is the card alone: the shortest (13 digits) and the longest
  // spans are found at every offset, in text short enough for the byte-by-byte path too.
  for (const std::string card : {"4222222222222", "4111-1111-1111-1111", "4111 1111 1111 1111"}) {
    for (size_t before = 0; before <= 70; ++before) {
      for (size_t after = 0; after <= 20; ++after) {
        std::string text = std::string(before, '#') + card + std::string(after, '#');
        ASSERT_EQ(RedactAll(text),
                  std::string(before, '#') + "[CARD_REDACTED]" + std::string(after, '#'))
            << "before " << before << ", after " << after << ": " << text;
      }
    }
  }
  EXPECT_EQ(RedactAll("422222222222#2222222222222"), "422222222222#2222222222222");
}

TEST(Detectors, FindsAJwtRightAfterABearerTokenAndNotInsideIt) {
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln";
  // The token run ends at the space; the JWT after it is its own match.
  EXPECT_EQ(RedactAll("Bearer abcdefgh12345678 " + jwt),
            "Bearer [TOKEN_REDACTED] [TOKEN_REDACTED]");
  // "eyJ" glued to a base64url character does not start a JWT.
  EXPECT_FALSE(Changes("xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln"));
  // A JWT whose "eyJ" sits inside an earlier match is not found twice.
  std::vector<Match> matches;
  Builtins().Scan("Bearer " + jwt, &matches);
  ASSERT_EQ(matches.size(), 1u);
  EXPECT_EQ(matches[0].begin, 7u);
  EXPECT_EQ(matches[0].end, 7 + jwt.size());
}

TEST(Detectors, SkipsTextShorterThanAnyDetectorNeeds) {
  absl::StatusOr<DetectorSet> set = DetectorSet::Create({{.kind = DetectorKind::kEmail}});
  ASSERT_TRUE(set.ok());
  std::vector<Match> matches;
  set->Scan("a@b.c", &matches);  // 5 bytes: no address is that short
  EXPECT_TRUE(matches.empty());
  set->Scan("a@b.cd", &matches);
  EXPECT_EQ(matches.size(), 1u);
  absl::StatusOr<DetectorSet> custom =
      DetectorSet::Create({{.kind = DetectorKind::kCustom, .pattern = "x"}});
  ASSERT_TRUE(custom.ok());
  custom->Scan("x", &matches);  // a custom pattern may match a single byte
  EXPECT_EQ(matches.size(), 2u);
}

}  // namespace
}  // namespace mcpmw::redaction
