// mcpmw audit: the bytes of one audit log line, written and read back.
//
// The audit log is JSON lines (the full description, with examples, is src/audit/FORMAT.md).
// Every line is one of three kinds, always in exactly this canonical form, keys in this order,
// no spaces outside the report:
//
//   header (line 1 only)
//     {"mcpmw_audit":1,"alg":"hmac-sha256","key_id":"0123456789abcdef","started":"<ts>"}
//   record
//     {"seq":N,"ts":"<ts>","prev":"<64 hex>","report":<the caller's JSON>}
//   segment signature
//     {"segment":K,"first":A,"last":B,"head":"<64 hex>","alg":"…","key_id":"…","sig":"<hex>"}
//     or, for the first segment a writer signs after reopening a log that had unsigned records
//     (its writer stopped uncleanly), with "recovered":R after "last": records A..R were
//     already in the file, unsigned, when this writer opened it
//
// <ts> is RFC 3339 UTC with milliseconds ("2026-11-24T06:53:12.345Z"). A line's hash is the
// lower-case hex SHA-256 of its bytes without the terminating '\n'. Chain: record N's prev is
// the hash of record N-1's line, and record 0's prev is the hash of the header line, so the
// header is chained too. Signature lines are not chained themselves; each one signs
// SigningInput(K, A, B, head, alg, key_id[, R]), where head is the hash of record B's line, so
// one signature covers every byte of the header and of records 0..B (and says which of them it
// found unsigned).
//
// The writer (audit_sink.h) only emits these forms; the readers here accept only these forms,
// so any changed byte outside a report is either a parse failure or a field mismatch, and any
// changed byte inside a report breaks the chain at the next record or signature.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace mcpmw::audit {

inline constexpr int kFormatVersion = 1;
// prev/head placeholder length: a SHA-256 in hex.
inline constexpr size_t kHashHexSize = 64;

enum class LineKind { kHeader, kRecord, kSignature, kUnknown };

// The kind a line claims to be, from its first key alone.
LineKind ClassifyLine(std::string_view line);

// "2026-11-24T06:53:12.345Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

struct HeaderLine {
  int version = kFormatVersion;
  std::string alg;
  std::string key_id;
  std::string started;
};

struct RecordLine {
  uint64_t seq = 0;
  std::string_view ts;
  std::string_view prev;
  std::string_view report;  // the raw JSON value, exactly as written
};

struct SignatureLine {
  uint64_t segment = 0;
  uint64_t first = 0;
  uint64_t last = 0;
  std::string_view head;
  std::string_view alg;
  std::string_view key_id;
  std::string_view sig;
  // Records first..recovered were found unsigned when the log was reopened: signed by a later
  // writer, not by the one that wrote them (verify says so). Absent in every other segment.
  std::optional<uint64_t> recovered;
};

// Writers: each appends one line without its '\n' to `out`.
void AppendHeaderLine(const HeaderLine& header, std::string* out);
void AppendRecordLine(uint64_t seq, std::string_view ts, std::string_view prev,
                      std::string_view report, std::string* out);
// A record line up to its report: append the report and then '}' to finish it.
void AppendRecordLinePrefix(uint64_t seq, std::string_view ts, std::string_view prev,
                            std::string* out);
void AppendSignatureLine(const SignatureLine& sig, std::string* out);

// The exact bytes a segment signature signs.
std::string SigningInput(uint64_t segment, uint64_t first, uint64_t last, std::string_view head,
                         std::string_view alg, std::string_view key_id,
                         std::optional<uint64_t> recovered = std::nullopt);

// Readers for one line without its '\n'. Returned views point into `line`. They check the
// canonical form (key order, digits, hex, timestamp shape) but not the report's JSON; the
// error message says what is wrong, for the verifier to quote. InvalidArgument on any mismatch.
absl::StatusOr<HeaderLine> ParseHeaderLine(std::string_view line);
absl::StatusOr<RecordLine> ParseRecordLine(std::string_view line);
absl::StatusOr<SignatureLine> ParseSignatureLine(std::string_view line);

}  // namespace mcpmw::audit
