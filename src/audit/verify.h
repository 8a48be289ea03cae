// mcpmw audit: offline verification of an audit log (`mcpmw audit verify FILE`).
//
// Not on the message path. Reads a whole log written by AuditSink (format: record.h and
// FORMAT.md) and checks, line by line and in order: the header and that it names the verifier's
// key; every line's canonical form and, for records, that the report is valid JSON; seq
// continuity; the prev-hash chain; each segment signature (number, record range, head hash,
// key, signature); a final newline; and that a signature covers the last record. It stops at the
// first problem and names it.
//
// What a successful verify proves: the file is, byte for byte, a prefix of what the holder of
// the key wrote, ending at a signed segment boundary. It cannot tell that whole trailing
// segments (records and their signature lines) were cut off; compare `last_seq`/`head` with an
// anchor kept elsewhere (a metrics scrape, a shipped copy) for that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/audit/signer.h"

namespace mcpmw::audit {

// The first thing found wrong, most specific first.
enum class AuditProblem {
  kNone,
  kMissingHeader,      // the file is empty or its first line is not a header
  kWrongKey,           // header or signature names another alg/key than the verifier's
  kMalformedLine,      // not one of the three canonical line forms, or a report that is not JSON
  kRecordMissing,      // seq jumps forward and the missing record is nowhere later: deleted
  kRecordOutOfOrder,   // seq jumps, and the expected record appears later or already did
  kPrevMismatch,       // prev is not the hash of the record before it (or the header)
  kSegmentOutOfOrder,  // signature line's segment number is not the next one
  kSegmentRange,       // signature's first/last are not the records since the last signature
  kHeadMismatch,       // signature's head is not the hash of its last record
  kBadSignature,       // signature does not verify: forged or made with another key
  kTornLine,           // the file does not end with '\n': a truncated or torn final line
  kUnsignedTail,       // records after the last signature: truncated, or not closed cleanly
};

std::string_view AuditProblemName(AuditProblem problem);

struct VerifyReport {
  bool ok = false;
  uint64_t lines = 0;     // lines read up to and including the bad one
  uint64_t records = 0;   // records that passed every check
  uint64_t segments = 0;  // signatures that passed every check
  // The last verified record and its line hash (the head to anchor elsewhere); -1 when none.
  int64_t last_seq = -1;
  std::string head;
  // Record ranges [first, last] a writer found unsigned when it reopened the log (left by one
  // that stopped uncleanly) and signed then. Chained, but not authenticated when written: whoever
  // could write the file before that reopen could have rewritten them undetected.
  std::vector<std::pair<uint64_t, uint64_t>> recovered;

  // The first problem, when !ok.
  AuditProblem problem = AuditProblem::kNone;
  uint64_t bad_line = 0;            // 1-based line number
  std::optional<uint64_t> bad_seq;  // the record (or the signature's last record) it concerns
  // One sentence for an operator: "record 57 (line 59): prev hash does not match record 56 …".
  std::string reason;
};

// Verifies the audit log at `path` with `verifier`. Tampering is a report with ok == false, not
// an error; the status is an error only when the file cannot be read (NotFound,
// PermissionDenied, Internal). Reads the whole file into memory.
absl::StatusOr<VerifyReport> VerifyAuditFile(std::string_view path, const Verifier& verifier);

// The same checks over a log already in memory.
VerifyReport VerifyAuditLog(std::string_view contents, const Verifier& verifier);

// One line for the CLI: "OK: 1200 records in 2 segments, last seq 1199, head <hash>" (and a
// warning naming recovered records, if any) or "FAILED (prev-mismatch): record 57 (line 59): …".
std::string DescribeVerifyReport(const VerifyReport& report);

}  // namespace mcpmw::audit
