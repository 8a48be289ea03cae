#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/audit/audit_sink.h"
#include "src/audit/record.h"
#include "src/audit/signer.h"
#include "src/audit/verify.h"
#include "src/common/strings.h"
#include "tests/common/temp_dir.h"

namespace mcpmw::audit {
namespace {

using FsyncPolicy = AuditOptions::FsyncPolicy;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// 2026-11-24T06:53:12.000Z, then one millisecond more per reading (the header reads it once,
// the writer once per drain of the queues).
std::function<std::chrono::system_clock::time_point()> SteppingClock() {
  auto ticks = std::make_shared<std::atomic<int64_t>>(0);
  return [ticks] {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1795503192)) +
           std::chrono::milliseconds(ticks->fetch_add(1));
  };
}

std::string TempDir() { return testing_support::MakeTempDir("mcpmw_audit"); }

std::string ReadFile(const std::string& path) { return testing_support::ReadFileBytes(path); }

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// Lines without their '\n'; the file must end with one.
std::vector<std::string> Lines(const std::string& contents) {
  std::vector<std::string> lines = absl::StrSplit(contents, '\n');
  EXPECT_EQ(lines.back(), "");
  lines.pop_back();
  return lines;
}

std::string Unlines(const std::vector<std::string>& lines) {
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

Signer HmacSigner() { return *Signer::Hmac(std::string(32, 'k')); }
Verifier HmacVerifier() { return *Verifier::Hmac(std::string(32, 'k')); }

std::string Report(int i) { return absl::StrCat(R"({"tool":"echo","n":)", i, "}"); }

AuditOptions Options(const std::string& path, Signer signer, size_t segment_records = 10,
                     FsyncPolicy fsync = FsyncPolicy::kPerSegment) {
  AuditOptions options;
  options.path = path;
  options.signer = std::move(signer);
  options.segment_records = segment_records;
  options.fsync = fsync;
  options.wall_clock = SteppingClock();
  return options;
}

// Appends reports first..first+count-1 through one producer and closes.
void AppendAndClose(AuditOptions options, int first, int count) {
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  absl::StatusOr<Producer*> producer = (*sink)->NewProducer();
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = first; i < first + count; ++i) {
    ASSERT_TRUE((*producer)->Append(Report(i)).ok());
  }
  ASSERT_TRUE((*sink)->Close().ok());
}

// The usual fixture log: 25 records, segments of 10, HMAC. Its lines:
//   1 header | 2..11 records 0..9 | 12 sig 0 | 13..22 records 10..19 | 23 sig 1 |
//   24..28 records 20..24 | 29 sig 2
std::string WriteFixtureLog(const std::string& dir) {
  std::string path = dir + "/audit.jsonl";
  AppendAndClose(Options(path, HmacSigner()), 0, 25);
  return path;
}

VerifyReport VerifyText(const std::string& contents) {
  return VerifyAuditLog(contents, HmacVerifier());
}

struct Ed25519Pems {
  std::string private_pem;
  std::string public_pem;
};

// A throwaway Ed25519 key pair.
Ed25519Pems NewEd25519Key() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  EXPECT_NE(key, nullptr);
  auto to_string = [](BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int): OpenSSL's type.
    std::string out(data, static_cast<size_t>(size));
    BIO_free(bio);
    return out;
  };
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  Ed25519Pems pems{to_string(priv), to_string(pub)};
  EVP_PKEY_free(key);
  return pems;
}

// Re-chains a tampered log the way a forger without the key would: every prev and head
// recomputed, signatures left as they were.
std::string Rechain(const std::vector<std::string>& lines) {
  std::vector<std::string> out = lines;
  std::string prev = Sha256Hex(out[0]);
  for (size_t i = 1; i < out.size(); ++i) {
    std::string& line = out[i];
    if (ClassifyLine(line) == LineKind::kRecord) {
      size_t at = line.find(R"("prev":")") + 8;
      line.replace(at, kHashHexSize, prev);
      prev = Sha256Hex(line);
    } else {
      size_t at = line.find(R"("head":")") + 8;
      line.replace(at, kHashHexSize, prev);
    }
  }
  return Unlines(out);
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(AuditSink, RoundTripWithHmacVerifies) {
  std::string path = WriteFixtureLog(TempDir());
  std::string contents = ReadFile(path);
  std::vector<std::string> lines = Lines(contents);
  ASSERT_EQ(lines.size(), 29u);

  Signer signer = HmacSigner();
  EXPECT_EQ(lines[0], absl::StrCat(R"({"mcpmw_audit":1,"alg":"hmac-sha256","key_id":")",
                                   signer.key_id(), R"(","started":"2026-11-24T06:53:12.000Z"})"));
  // The clock ticks 1 ms per reading and the writer reads it once per drain, so record 0 is at
  // .001 and record 1 shares it or follows, depending on how the writer batched them.
  EXPECT_EQ(lines[1], absl::StrCat(R"({"seq":0,"ts":"2026-11-24T06:53:12.001Z","prev":")",
                                   Sha256Hex(lines[0]), R"(","report":{"tool":"echo","n":0}})"));
  std::string ts1 = lines[2].substr(lines[2].find(R"("ts":")") + 6, 24);
  EXPECT_THAT(ts1, testing::AnyOf("2026-11-24T06:53:12.001Z", "2026-11-24T06:53:12.002Z"));
  EXPECT_EQ(lines[2], absl::StrCat(R"({"seq":1,"ts":")", ts1, R"(","prev":")", Sha256Hex(lines[1]),
                                   R"(","report":{"tool":"echo","n":1}})"));
  std::string head = Sha256Hex(lines[10]);
  std::string sig = *signer.Sign(SigningInput(0, 0, 9, head, "hmac-sha256", signer.key_id()));
  EXPECT_EQ(lines[11], absl::StrCat(R"({"segment":0,"first":0,"last":9,"head":")", head,
                                    R"(","alg":"hmac-sha256","key_id":")", signer.key_id(),
                                    R"(","sig":")", sig, R"("})"));

  absl::StatusOr<VerifyReport> report = VerifyAuditFile(path, HmacVerifier());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->reason;
  EXPECT_EQ(report->records, 25u);
  EXPECT_EQ(report->segments, 3u);
  EXPECT_EQ(report->lines, 29u);
  EXPECT_EQ(report->last_seq, 24);
  EXPECT_EQ(report->head, Sha256Hex(lines[27]));
  EXPECT_EQ(DescribeVerifyReport(*report),
            absl::StrCat("OK: 25 records in 3 signed segments, last seq 24, head ", report->head));
}

TEST(AuditSink, RoundTripWithEd25519KeyFilesVerifies) {
  std::string dir = TempDir();
  Ed25519Pems pems = NewEd25519Key();
  WriteFile(dir + "/signing.pem", pems.private_pem);
  WriteFile(dir + "/public.pem", pems.public_pem);
  absl::StatusOr<Signer> signer = Signer::FromKeyFile(dir + "/signing.pem");
  ASSERT_TRUE(signer.ok()) << signer.status();
  absl::StatusOr<Verifier> verifier = Verifier::FromKeyFile(dir + "/public.pem");
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(signer->alg(), SignatureAlg::kEd25519);
  EXPECT_EQ(signer->key_id(), verifier->key_id());
  EXPECT_EQ(signer->key_id().size(), 16u);

  std::string path = dir + "/audit.jsonl";
  AppendAndClose(Options(path, *signer, 4), 0, 9);
  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 1u + 9u + 3u);
  absl::StatusOr<SignatureLine> last_sig = ParseSignatureLine(lines.back());
  ASSERT_TRUE(last_sig.ok()) << last_sig.status();
  EXPECT_EQ(last_sig->alg, "ed25519");
  EXPECT_EQ(last_sig->sig.size(), 128u);
  EXPECT_EQ(last_sig->first, 8u);
  EXPECT_EQ(last_sig->last, 8u);

  absl::StatusOr<VerifyReport> report = VerifyAuditFile(path, *verifier);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->reason;
  EXPECT_EQ(report->records, 9u);
  EXPECT_EQ(report->segments, 3u);

  // The private key file verifies too (its public half is used).
  absl::StatusOr<Verifier> from_private = Verifier::FromKeyFile(dir + "/signing.pem");
  ASSERT_TRUE(from_private.ok()) << from_private.status();
  EXPECT_TRUE(VerifyAuditFile(path, *from_private)->ok);
}

// ---------------------------------------------------------------------------------------------
// Tampering: each kind is found and named at the right record

// A byte inside record 4's report is covered only by the chain: record 4's own line is still
// well formed, so the first place the change shows is record 5, whose prev no longer matches.
TEST(VerifyAuditLog, NamesTheNextRecordWhenAReportByteChanges) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[5].find("echo");
  ASSERT_NE(at, std::string::npos);
  lines[5][at + 2] = 'H';  // record 4 (line 6): "ecHo"
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.problem, AuditProblem::kPrevMismatch);
  EXPECT_EQ(report.bad_line, 7u);
  EXPECT_EQ(report.bad_seq, 5u);
  EXPECT_EQ(report.reason,
            "record 5 (line 7): prev hash does not match record 4 (line 6) — record 4 was "
            "edited, or records were deleted or reordered");
  EXPECT_EQ(report.records, 5u);
}

// A byte in record 4's own prev field is a problem of record 4 itself.
TEST(VerifyAuditLog, NamesTheRecordItselfWhenItsPrevChanges) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[5].find(R"("prev":")") + 8;
  lines[5][at] = lines[5][at] == '0' ? '1' : '0';
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kPrevMismatch);
  EXPECT_EQ(report.bad_line, 6u);
  EXPECT_EQ(report.bad_seq, 4u);
}

// Record 9 closes segment 0, so the next thing that hashes its bytes is the signature's head.
TEST(VerifyAuditLog, NamesTheSignatureHeadWhenTheLastRecordOfASegmentChanges) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[10].find("echo");
  lines[10][at] = 'E';  // record 9 (line 11)
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kHeadMismatch);
  EXPECT_EQ(report.bad_line, 12u);
  EXPECT_EQ(report.bad_seq, 9u);
  EXPECT_EQ(report.reason,
            "signature of segment 0 (line 12): head does not match record 9 (line 11) — record "
            "9 was edited");
}

TEST(VerifyAuditLog, NamesTheRecordAfterADeletedLine) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  lines.erase(lines.begin() + 5);  // record 4
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kRecordMissing);
  EXPECT_EQ(report.bad_line, 6u);
  EXPECT_EQ(report.bad_seq, 5u);
  EXPECT_EQ(report.reason,
            "record 5 (line 6): expected record 4 next — record 4 is missing (deleted)");
}

TEST(VerifyAuditLog, NamesTheFirstOfTwoSwappedLines) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  std::swap(lines[5], lines[6]);  // records 4 and 5
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kRecordOutOfOrder);
  EXPECT_EQ(report.bad_line, 6u);
  EXPECT_EQ(report.bad_seq, 5u);
  EXPECT_EQ(report.reason,
            "record 5 (line 6): expected record 4 next, which appears later at line 7 — records "
            "reordered");
}

TEST(VerifyAuditLog, NamesATornLastLine) {
  std::string contents = ReadFile(WriteFixtureLog(TempDir()));
  contents.resize(contents.size() - 40);  // into the middle of line 29, segment 2's signature
  VerifyReport report = VerifyText(contents);
  EXPECT_EQ(report.problem, AuditProblem::kTornLine);
  EXPECT_EQ(report.bad_line, 29u);
  EXPECT_EQ(report.reason,
            "line 29: torn line at end of file (no final newline) — the file was truncated or a "
            "write was cut short; the last whole record is record 24 (line 28)");
}

TEST(VerifyAuditLog, NamesTheUnsignedTailWhenTheLastLineIsCutOff) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  lines.pop_back();  // segment 2's signature
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kUnsignedTail);
  EXPECT_EQ(report.bad_line, 24u);
  EXPECT_EQ(report.bad_seq, 20u);
  EXPECT_EQ(report.reason,
            "truncated or unsigned tail after record 24: records 20..24 (lines 24..28) have no "
            "segment signature — the file was cut, or its writer did not close cleanly");
  EXPECT_EQ(report.records, 25u);
  EXPECT_EQ(report.segments, 2u);
}

TEST(VerifyAuditLog, NamesAForgedSignature) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[22].find(R"("sig":")") + 7;  // segment 1
  lines[22][at] = lines[22][at] == 'a' ? 'b' : 'a';
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kBadSignature);
  EXPECT_EQ(report.bad_line, 23u);
  EXPECT_EQ(report.bad_seq, 19u);
  EXPECT_EQ(report.reason,
            "signature of segment 1 (line 23): signature does not verify — forged, or made with "
            "another key");
}

// A forger without the key edits record 12 and recomputes every prev and head: the chain is
// whole again, and only segment 1's signature gives it away.
TEST(VerifyAuditLog, CatchesARechainedEditAtTheSegmentSignature) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[14].find("echo");  // record 12
  lines[14].replace(at, 4, "rm -rf");
  VerifyReport report = VerifyText(Rechain(lines));
  EXPECT_EQ(report.problem, AuditProblem::kBadSignature);
  EXPECT_EQ(report.bad_line, 23u);
  EXPECT_EQ(report.bad_seq, 19u);
  EXPECT_EQ(report.records, 20u);
  EXPECT_EQ(report.segments, 1u);
}

TEST(VerifyAuditLog, NamesADeletedSignatureLine) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  lines.erase(lines.begin() + 11);  // segment 0's signature
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kSegmentOutOfOrder);
  EXPECT_EQ(report.bad_line, 22u);
  EXPECT_EQ(report.reason,
            "signature of segment 1 (line 22): expected segment 0 next — a signature line was "
            "deleted, duplicated or moved");
}

TEST(VerifyAuditLog, RefusesAnotherKey) {
  std::string contents = ReadFile(WriteFixtureLog(TempDir()));
  Verifier other = *Verifier::Hmac(std::string(32, 'x'));
  VerifyReport report = VerifyAuditLog(contents, other);
  EXPECT_EQ(report.problem, AuditProblem::kWrongKey);
  EXPECT_EQ(report.bad_line, 1u);
  EXPECT_EQ(report.reason,
            absl::StrCat("line 1: the log is signed with hmac-sha256 key ", HmacSigner().key_id(),
                         ", but the verifier holds hmac-sha256 key ", other.key_id()));
}

TEST(VerifyAuditLog, NamesAMissingHeader) {
  EXPECT_EQ(VerifyText("").problem, AuditProblem::kMissingHeader);
  VerifyReport report = VerifyText("{\"seq\":0}\n");
  EXPECT_EQ(report.problem, AuditProblem::kMissingHeader);
  EXPECT_EQ(report.bad_line, 1u);
}

TEST(VerifyAuditLog, NamesAReportThatIsNotJson) {
  std::vector<std::string> lines = Lines(ReadFile(WriteFixtureLog(TempDir())));
  size_t at = lines[3].find(R"("n":)");
  lines[3][at + 3] = ' ';  // record 2: {"tool":"echo","n" 2}
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_EQ(report.problem, AuditProblem::kMalformedLine);
  EXPECT_EQ(report.bad_line, 4u);
  EXPECT_EQ(report.bad_seq, 2u);
}

TEST(VerifyAuditFile, ReturnsNotFoundForAMissingFile) {
  EXPECT_EQ(VerifyAuditFile(TempDir() + "/nope.jsonl", HmacVerifier()).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// Reopening

TEST(AuditSink, ReopenContinuesTheChainAndSegments) {
  std::string path = TempDir() + "/audit.jsonl";
  AppendAndClose(Options(path, HmacSigner()), 0, 15);  // segments 0 (0..9), 1 (10..14)
  AppendAndClose(Options(path, HmacSigner()), 15, 7);  // segment 2 (15..21)
  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 1u + 22u + 3u);
  EXPECT_EQ(ClassifyLine(lines[1]), LineKind::kRecord);  // one header only
  absl::StatusOr<RecordLine> record15 = ParseRecordLine(lines[18]);
  ASSERT_TRUE(record15.ok()) << record15.status();
  EXPECT_EQ(record15->seq, 15u);
  EXPECT_EQ(record15->prev, Sha256Hex(lines[16]));  // record 14, across signature 1

  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.records, 22u);
  EXPECT_EQ(report.segments, 3u);
  EXPECT_EQ(report.last_seq, 21);
}

// A writer that died before signing leaves records 20..24 unsigned; the next writer's first
// signature covers them.
// The fixture log as a writer leaves it when it crashes before signing its last segment (the
// final signature line gone: records 20..24 unsigned), then reopened and closed after two more
// records, 25 and 26.
std::string ReopenedAfterACrash() {
  std::string path = WriteFixtureLog(TempDir());
  std::vector<std::string> lines = Lines(ReadFile(path));
  lines.pop_back();
  WriteFile(path, Unlines(lines));
  AppendAndClose(Options(path, HmacSigner()), 25, 2);
  return path;
}

TEST(AuditSink, ReopenSignsRecordsACrashedWriterLeftUnsigned) {
  std::string path = ReopenedAfterACrash();
  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 28u + 2u + 1u);
  absl::StatusOr<SignatureLine> sig = ParseSignatureLine(lines.back());
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->segment, 2u);
  EXPECT_EQ(sig->first, 20u);
  EXPECT_EQ(sig->last, 26u);
  // Records 20..24 were in the file unsigned: the signature says so, and verify reports it.
  EXPECT_EQ(sig->recovered, std::optional<uint64_t>(24));
  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.records, 27u);
  EXPECT_THAT(report.recovered, ElementsAre(std::make_pair(uint64_t{20}, uint64_t{24})));
  EXPECT_THAT(DescribeVerifyReport(report),
              HasSubstr("\nWARNING: records 20..24 were left unsigned by a writer that did not "
                        "close cleanly, and signed when the log was reopened"));
}

TEST(AuditSink, ACleanlyClosedLogMarksNoRecordsRecovered) {
  std::string path = WriteFixtureLog(TempDir());
  AppendAndClose(Options(path, HmacSigner()), 25, 2);  // reopened after a clean close
  EXPECT_THAT(ReadFile(path), Not(HasSubstr("recovered")));
  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_TRUE(report.recovered.empty());
  EXPECT_THAT(DescribeVerifyReport(report), Not(HasSubstr("WARNING")));
}

TEST(VerifyAuditLog, NamesTheSignatureWhenItsRecoveredMarkIsTakenOff) {
  std::string path = ReopenedAfterACrash();
  std::vector<std::string> lines = Lines(ReadFile(path));
  std::string& last = lines.back();
  const std::string mark = R"(,"recovered":24)";
  size_t at = last.find(mark);
  ASSERT_NE(at, std::string::npos) << last;
  last.erase(at, mark.size());
  VerifyReport report = VerifyText(Unlines(lines));
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.problem, AuditProblem::kBadSignature) << report.reason;
  EXPECT_EQ(report.bad_line, lines.size());
}

TEST(AuditSink, ReopenRefusesATornTailUnlessToldToCutIt) {
  std::string path = WriteFixtureLog(TempDir());
  std::string contents = ReadFile(path);
  size_t keep = contents.rfind('\n', contents.size() - 2) + 1;  // start of line 29
  contents.resize(contents.size() - 40);
  WriteFile(path, contents);

  absl::StatusOr<std::unique_ptr<AuditSink>> refused = AuditSink::Open(Options(path, HmacSigner()));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(
      refused.status().message().find(absl::StrCat("torn line (no final newline) at byte ", keep)),
      absl::string_view::npos)
      << refused.status();

  AuditOptions options = Options(path, HmacSigner());
  options.truncate_torn_tail = true;
  AppendAndClose(std::move(options), 25, 1);
  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.records, 26u);
  EXPECT_EQ(report.segments, 3u);  // 0, 1, and 2 covering 20..25
}

TEST(AuditSink, ReopenRefusesAnotherKey) {
  std::string path = WriteFixtureLog(TempDir());
  absl::StatusOr<std::unique_ptr<AuditSink>> sink =
      AuditSink::Open(Options(path, *Signer::Hmac(std::string(32, 'x'))));
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AuditSink, RefusesASecondWriterOnTheSameFile) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> first = AuditSink::Open(Options(path, HmacSigner()));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<AuditSink>> second = AuditSink::Open(Options(path, HmacSigner()));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

// ---------------------------------------------------------------------------------------------
// Concurrency, flushing, closing

TEST(AuditSink, TwoProducerThreadsKeepEveryRecordInTheirOrder) {
  constexpr int kPerProducer = 2000;
  std::string path = TempDir() + "/audit.jsonl";
  AuditOptions options = Options(path, HmacSigner(), 100);
  options.queue_capacity = 16;  // small, so producers hit backpressure
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* a = *(*sink)->NewProducer();
  Producer* b = *(*sink)->NewProducer();
  auto run = [](Producer* producer, char name) {
    for (int i = 0; i < kPerProducer; ++i) {
      ASSERT_TRUE(
          producer->Append(absl::StrCat(R"({"p":")", std::string(1, name), R"(","i":)", i, "}"))
              .ok());
    }
  };
  std::thread ta(run, a, 'a');
  std::thread tb(run, b, 'b');
  ta.join();
  tb.join();
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->stats().records, 2u * kPerProducer);
  EXPECT_EQ((*sink)->stats().segments, 40u);

  std::string contents = ReadFile(path);
  VerifyReport report = VerifyText(contents);
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.records, 2u * kPerProducer);
  int next_a = 0;
  int next_b = 0;
  for (const std::string& line : Lines(contents)) {
    if (ClassifyLine(line) != LineKind::kRecord) {
      continue;
    }
    std::string_view body = ParseRecordLine(line)->report;
    if (body == absl::StrCat(R"({"p":"a","i":)", next_a, "}")) {
      ++next_a;
    } else {
      EXPECT_EQ(body, absl::StrCat(R"({"p":"b","i":)", next_b, "}"));
      ++next_b;
    }
  }
  EXPECT_EQ(next_a, kPerProducer);
  EXPECT_EQ(next_b, kPerProducer);
}

TEST(AuditSink, AWriterHeldToSmallBatchesStillWritesEveryRecordInOrder) {
  std::string path = TempDir() + "/audit.jsonl";
  AuditOptions options = Options(path, HmacSigner(), 100);
  options.max_batch_bytes = 1024;  // a few records a batch: the writer yields between them
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  constexpr int kRecords = 2000;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(producer->Append(Report(i)).ok());
  }
  ASSERT_TRUE((*sink)->Close().ok());

  // ~100 bytes a record line: at least ~200 KB in batches of about 1 KB.
  EXPECT_GE((*sink)->stats().batches, 100u);
  VerifyReport verified = VerifyText(ReadFile(path));
  EXPECT_TRUE(verified.ok) << verified.reason;
  EXPECT_EQ(verified.records, static_cast<uint64_t>(kRecords));
  int next = 0;
  for (const std::string& line : Lines(ReadFile(path))) {
    if (line.find(R"("report":)") != std::string::npos) {
      EXPECT_THAT(line, testing::HasSubstr(absl::StrCat(R"("n":)", next, "}")));
      ++next;
    }
  }
  EXPECT_EQ(next, kRecords);
}

TEST(AuditSink, FlushWritesEverythingAppendedBeforeIt) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> sink =
      AuditSink::Open(Options(path, HmacSigner(), 1000, FsyncPolicy::kPerBatch));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(producer->Append(Report(i)).ok());
  }
  ASSERT_TRUE((*sink)->Flush().ok());

  // All five are on disk; the segment is still open, so the tail is unsigned.
  VerifyReport flushed = VerifyText(ReadFile(path));
  EXPECT_EQ(flushed.problem, AuditProblem::kUnsignedTail);
  EXPECT_EQ(flushed.records, 5u);
  EXPECT_EQ((*sink)->stats().records, 5u);
  EXPECT_GE((*sink)->stats().fsyncs, 1u);

  ASSERT_TRUE((*sink)->Close().ok());
  VerifyReport closed = VerifyText(ReadFile(path));
  EXPECT_TRUE(closed.ok) << closed.reason;
  EXPECT_EQ(closed.records, 5u);
  EXPECT_EQ(closed.segments, 1u);
}

TEST(AuditSink, FlushDuringCloseReturnsOnceCloseHasWrittenEverything) {
  // All of them queued before Close (the queue holds them), and written in small fsynced
  // batches: Close takes a while, and the Flush below starts while it runs.
  constexpr int kRecords = 4000;
  std::string path = TempDir() + "/audit.jsonl";
  AuditOptions options = Options(path, HmacSigner(), 1000, FsyncPolicy::kPerBatch);
  options.queue_capacity = 8192;
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(producer->Append(Report(i)).ok());
  }
  std::thread closer([&] { EXPECT_TRUE((*sink)->Close().ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // Close has begun, most likely
  ASSERT_TRUE((*sink)->Flush().ok());
  // Every record appended before the Flush is in the file when it returns.
  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_EQ(report.records, static_cast<uint64_t>(kRecords)) << report.reason;
  closer.join();
}

// Renders packed bytes as {"packed":"<bytes>"}, recording the thread it ran on.
std::atomic<std::thread::id> packed_rendered_on;
void RenderPackedText(std::string_view packed, std::string* out) {
  packed_rendered_on = std::this_thread::get_id();
  absl::StrAppend(out, R"({"packed":")", Sv(packed), "\"}");
}
// Renders them as they are.
void RenderPackedAsIs(std::string_view packed, std::string* out) { out->append(packed); }

// Appends `text` packed, to be rendered by `render`.
absl::Status AppendPackedText(Producer& producer, std::string_view text,
                              PackedRenderer render = &RenderPackedText) {
  return producer.AppendPacked(text.size(), render,
                               [text](char* out) { std::memcpy(out, text.data(), text.size()); });
}

TEST(AuditSink, RendersAPackedReportOnTheWriterThreadIntoTheChain) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(Options(path, HmacSigner()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  packed_rendered_on = std::thread::id();
  ASSERT_TRUE(producer->Append(Report(0)).ok());
  ASSERT_TRUE(AppendPackedText(*producer, "one").ok());
  ASSERT_TRUE(AppendPackedText(*producer, "not json", &RenderPackedAsIs).ok());
  ASSERT_TRUE((*sink)->Close().ok());

  EXPECT_NE(packed_rendered_on.load(), std::thread::id());
  EXPECT_NE(packed_rendered_on.load(), std::this_thread::get_id());
  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 5u);  // header, three records, one signature
  EXPECT_THAT(lines[2], testing::HasSubstr(R"(,"report":{"packed":"one"}})"));
  // An untrusting sink checks a packed report like any other.
  EXPECT_THAT(lines[3], testing::HasSubstr(R"("report":{"mcpmw_invalid_report":"bm90IGpzb24="}})"));
  VerifyReport verified = VerifyText(ReadFile(path));
  EXPECT_TRUE(verified.ok) << verified.reason;
  EXPECT_EQ(verified.records, 3u);
}

TEST(AuditSink, ReusesItsSlotsForPackedReportsOfAnySizeInOrder) {
  std::string path = TempDir() + "/audit.jsonl";
  AuditOptions options = Options(path, HmacSigner());
  options.queue_capacity = 4;
  options.trusted_reports = true;
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();

  // Three rounds through a four-slot queue: packed reports that fit their slot, ones too large
  // for it (kept on the heap), and string reports, so each slot holds each kind in turn.
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) {
    std::string text = absl::StrCat("r", i, "-");
    if (i % 3 == 1) {
      text.append(Producer::kSlotBytes + 100 * static_cast<size_t>(i), 'x');
    }
    texts.push_back(text);
    if (i % 3 == 2) {
      ASSERT_TRUE(producer->Append(absl::StrCat(R"({"packed":")", text, "\"}")).ok());
    } else {
      ASSERT_TRUE(AppendPackedText(*producer, text).ok());
    }
    if (i % 4 == 3) {
      ASSERT_TRUE((*sink)->Flush().ok());
    }
  }
  ASSERT_TRUE((*sink)->Close().ok());

  // Every record says what its report said when it was appended.
  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 1u + 12u + 2u);  // header, 12 records, signatures after 10 and 12
  for (int i = 0; i < 12; ++i) {
    size_t line = i < 10 ? 1 + i : 2 + i;
    EXPECT_THAT(lines[line],
                testing::EndsWith(absl::StrCat(R"("report":{"packed":")", texts[i], "\"}}")))
        << i;
  }
  VerifyReport verified = VerifyText(ReadFile(path));
  EXPECT_TRUE(verified.ok) << verified.reason;
  EXPECT_EQ(verified.records, 12u);
}

TEST(AuditSink, FlushWithNothingAppendedReturnsAtOnce) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(Options(path, HmacSigner()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->NewProducer().ok());
  EXPECT_TRUE((*sink)->Flush().ok());
  EXPECT_EQ((*sink)->stats().records, 0u);
}

// The nice value (field 19 of /proc/self/task/TID/stat) of this process's thread named `name`,
// or nullopt when there is none.
std::optional<int> NiceOfThreadNamed(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    std::getline(comm, thread_name);
    if (thread_name != name) {
      continue;
    }
    std::ifstream stat_file(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the ")" that ends the command name: state is field 3, nice field 19.
    std::vector<std::string> fields = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
    return std::stoi(fields[19 - 3]);
  }
  return std::nullopt;
}

TEST(AuditSink, WriterRunsAsAThreadNamedMcpmwAuditAtTheConfiguredNiceValue) {
  std::string path = TempDir() + "/audit.jsonl";
  AuditOptions options = Options(path, HmacSigner());
  options.writer_nice = 19;
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(std::move(options));
  ASSERT_TRUE(sink.ok()) << sink.status();
  // The writer names and renices itself when it starts.
  std::optional<int> nice;
  for (int i = 0; i < 500 && nice != 19; ++i) {
    nice = NiceOfThreadNamed("mcpmw-audit");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(nice, 19);
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(NiceOfThreadNamed("mcpmw-audit"), std::nullopt);
}

TEST(AuditSink, DestructorWritesAndSignsWhatWasAppended) {
  std::string path = TempDir() + "/audit.jsonl";
  {
    absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(Options(path, HmacSigner()));
    ASSERT_TRUE(sink.ok()) << sink.status();
    Producer* producer = *(*sink)->NewProducer();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(producer->Append(Report(i)).ok());
    }
  }
  VerifyReport report = VerifyText(ReadFile(path));
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.records, 3u);
}

TEST(AuditSink, AppendAfterCloseFails) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(Options(path, HmacSigner()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(producer->Append(Report(0)).code(), absl::StatusCode::kFailedPrecondition);
  std::string report = Report(1);
  EXPECT_FALSE(producer->TryAppend(report));
  EXPECT_EQ(report, Report(1));
  EXPECT_EQ((*sink)->NewProducer().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*sink)->Close().ok());
}

TEST(AuditSink, FsyncPoliciesWriteTheSameBytes) {
  std::string dir = TempDir();
  std::vector<std::string> contents;
  for (FsyncPolicy policy :
       {FsyncPolicy::kNever, FsyncPolicy::kPerSegment, FsyncPolicy::kPerBatch}) {
    std::string path = absl::StrCat(dir, "/audit", static_cast<int>(policy), ".jsonl");
    AuditOptions options = Options(path, HmacSigner(), 7, policy);
    // A clock that stands still: the writer reads it once per drain, and how the records fall
    // into drains depends on thread timing, not on the policy.
    options.wall_clock = [] { return std::chrono::system_clock::time_point{}; };
    AppendAndClose(std::move(options), 0, 30);
    contents.push_back(ReadFile(path));
  }
  EXPECT_EQ(contents[0], contents[1]);
  EXPECT_EQ(contents[0], contents[2]);
  EXPECT_TRUE(VerifyText(contents[0]).ok);
}

TEST(AuditSink, KeepsReportsOnOneLineAndWrapsOnesThatAreNotJson) {
  std::string path = TempDir() + "/audit.jsonl";
  absl::StatusOr<std::unique_ptr<AuditSink>> sink = AuditSink::Open(Options(path, HmacSigner()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  Producer* producer = *(*sink)->NewProducer();
  ASSERT_TRUE(producer->Append("{\"a\":\r\n 1}").ok());
  ASSERT_TRUE(producer->Append("not json").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->stats().invalid_reports, 1u);

  std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(ParseRecordLine(lines[1])->report, "{\"a\":   1}");
  EXPECT_EQ(ParseRecordLine(lines[2])->report, R"({"mcpmw_invalid_report":"bm90IGpzb24="})");
  EXPECT_TRUE(VerifyText(ReadFile(path)).ok);
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST(Signer, ReadsAnHmacKeyFileAsHexOrRawBytes) {
  std::string dir = TempDir();
  WriteFile(dir + "/hex.key", std::string(64, 'a') + "\n");
  WriteFile(dir + "/raw.key", std::string(32, '\xaa'));
  absl::StatusOr<Signer> hex = Signer::FromKeyFile(dir + "/hex.key");
  absl::StatusOr<Signer> raw = Signer::FromKeyFile(dir + "/raw.key");
  ASSERT_TRUE(hex.ok()) << hex.status();
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(hex->alg(), SignatureAlg::kHmacSha256);
  EXPECT_EQ(hex->key_id(), raw->key_id());  // the same 32 bytes 0xaa
  EXPECT_EQ(hex->key_id(), Sha256Hex(std::string(32, '\xaa')).substr(0, 16));
}

TEST(Signer, RefusesAShortHmacKey) {
  EXPECT_EQ(Signer::Hmac("short").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Signer, RefusesAPublicKeyForSigning) {
  EXPECT_EQ(Signer::Ed25519FromPem(NewEd25519Key().public_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Verifier, AcceptsOnlyItsOwnEd25519KeysSignature) {
  Ed25519Pems pems = NewEd25519Key();
  Signer signer = *Signer::Ed25519FromPem(pems.private_pem);
  Verifier own = *Verifier::Ed25519FromPem(pems.public_pem);
  Verifier other = *Verifier::Ed25519FromPem(NewEd25519Key().public_pem);
  std::string sig = *signer.Sign("message");
  EXPECT_TRUE(own.Verify("message", sig));
  EXPECT_FALSE(own.Verify("messagE", sig));
  EXPECT_FALSE(other.Verify("message", sig));
  EXPECT_FALSE(own.Verify("message", "zz"));
}

}  // namespace
}  // namespace mcpmw::audit
