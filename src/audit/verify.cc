#include "src/audit/verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/audit/record.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/common/strings.h"

namespace mcpmw::audit {
namespace {

struct Line {
  std::string_view text;  // without '\n'
  bool terminated = true;
};

std::vector<Line> SplitLines(std::string_view contents) {
  std::vector<Line> lines;
  size_t start = 0;
  while (start < contents.size()) {
    size_t end = contents.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back({contents.substr(start), false});
      break;
    }
    lines.push_back({contents.substr(start, end - start), true});
    start = end + 1;
  }
  return lines;
}

std::string RecordRef(uint64_t seq, uint64_t line) {
  return absl::StrCat("record ", seq, " (line ", line, ")");
}

std::string Range(uint64_t first, uint64_t last) {
  return first == last ? absl::StrCat(first) : absl::StrCat(first, "..", last);
}

// Walks the lines once, in order, keeping the chain state; the first problem ends the walk.
class Walker {
 public:
  Walker(const std::vector<Line>& lines, const Verifier& verifier)
      : lines_(lines), verifier_(verifier) {}

  VerifyReport Run() {
    if (lines_.empty()) {
      Fail(AuditProblem::kMissingHeader, 1, std::nullopt, "empty file: no audit log header");
      return report_;
    }
    for (size_t i = 0; i < lines_.size(); ++i) {
      uint64_t line_no = i + 1;
      report_.lines = line_no;
      const Line& line = lines_[i];
      if (!line.terminated) {
        Fail(AuditProblem::kTornLine, line_no, std::nullopt,
             absl::StrCat("line ", line_no,
                          ": torn line at end of file (no final newline) — the file was "
                          "truncated or a write was cut short",
                          last_record_line_ != 0
                              ? absl::StrCat("; the last whole record is ",
                                             RecordRef(next_seq_ - 1, last_record_line_))
                              : std::string()));
        return report_;
      }
      bool ok = i == 0 ? Header(line.text) : Body(i, line_no, line.text);
      if (!ok) {
        return report_;
      }
    }
    if (next_seq_ > segment_first_) {
      Fail(AuditProblem::kUnsignedTail, first_unsigned_line_, segment_first_,
           absl::StrCat("truncated or unsigned tail after record ", next_seq_ - 1, ": records ",
                        Range(segment_first_, next_seq_ - 1), " (lines ", first_unsigned_line_,
                        "..", last_record_line_,
                        ") have no segment signature — the file was cut, or its writer did not "
                        "close cleanly"));
      return report_;
    }
    report_.ok = true;
    return report_;
  }

 private:
  bool Header(std::string_view text) {
    absl::StatusOr<HeaderLine> header = ParseHeaderLine(text);
    if (!header.ok()) {
      return Fail(
          AuditProblem::kMissingHeader, 1, std::nullopt,
          absl::StrCat("line 1: not an audit log header (", header.status().message(), ")"));
    }
    if (header->alg != AlgName(verifier_.alg()) || header->key_id != verifier_.key_id()) {
      return Fail(AuditProblem::kWrongKey, 1, std::nullopt,
                  absl::StrCat("line 1: the log is signed with ", header->alg, " key ",
                               header->key_id, ", but the verifier holds ",
                               Sv(AlgName(verifier_.alg())), " key ", verifier_.key_id()));
    }
    prev_hash_ = Sha256Hex(text);
    return true;
  }

  bool Body(size_t index, uint64_t line_no, std::string_view text) {
    switch (ClassifyLine(text)) {
      case LineKind::kRecord:
        return Record(index, line_no, text);
      case LineKind::kSignature:
        return Signature(line_no, text);
      case LineKind::kHeader:
        return Fail(AuditProblem::kMalformedLine, line_no, std::nullopt,
                    absl::StrCat("line ", line_no, ": a second header line"));
      case LineKind::kUnknown:
        break;
    }
    return Fail(
        AuditProblem::kMalformedLine, line_no, std::nullopt,
        absl::StrCat("line ", line_no, text.empty() ? ": empty line" : ": not an audit log line"));
  }

  bool Record(size_t index, uint64_t line_no, std::string_view text) {
    absl::StatusOr<RecordLine> record = ParseRecordLine(text);
    if (!record.ok()) {
      return Fail(AuditProblem::kMalformedLine, line_no, std::nullopt,
                  absl::StrCat("line ", line_no, ": ", record.status().message()));
    }
    uint64_t seq = record->seq;
    std::string ref = RecordRef(seq, line_no);
    if (seq != next_seq_) {
      return SeqProblem(index, line_no, seq);
    }
    // The report must be one JSON value; the file buffer keeps SIMDJSON_PADDING readable bytes
    // after every line, so the parser reads in place.
    simdjson::dom::element ignored;
    if (auto error =
            parser_.parse(record->report.data(), record->report.size(), false).get(ignored);
        error != simdjson::SUCCESS) {
      return Fail(
          AuditProblem::kMalformedLine, line_no, seq,
          absl::StrCat(ref, ": report is not valid JSON (", simdjson::error_message(error), ")"));
    }
    if (record->prev != prev_hash_) {
      std::string what =
          seq == 0 ? std::string("the header line — the header was edited")
                   : absl::StrCat(RecordRef(seq - 1, last_record_line_), " — record ", seq - 1,
                                  " was edited, or records were deleted or reordered");
      return Fail(AuditProblem::kPrevMismatch, line_no, seq,
                  absl::StrCat(ref, ": prev hash does not match ", what));
    }
    prev_hash_ = Sha256Hex(text);
    if (next_seq_ == segment_first_) {
      first_unsigned_line_ = line_no;
    }
    last_record_line_ = line_no;
    ++next_seq_;
    ++report_.records;
    report_.last_seq = static_cast<int64_t>(seq);
    report_.head = prev_hash_;
    return true;
  }

  // seq is not the next one: say whether the expected record is missing or elsewhere.
  bool SeqProblem(size_t index, uint64_t line_no, uint64_t seq) {
    std::string ref = RecordRef(seq, line_no);
    if (seq < next_seq_) {
      return Fail(AuditProblem::kRecordOutOfOrder, line_no, seq,
                  absl::StrCat(ref, ": expected record ", next_seq_, " next, but record ", seq,
                               " comes before it — records reordered or duplicated"));
    }
    for (size_t j = index + 1; j < lines_.size(); ++j) {
      if (!lines_[j].terminated || ClassifyLine(lines_[j].text) != LineKind::kRecord) {
        continue;
      }
      absl::StatusOr<RecordLine> later = ParseRecordLine(lines_[j].text);
      if (later.ok() && later->seq == next_seq_) {
        return Fail(AuditProblem::kRecordOutOfOrder, line_no, seq,
                    absl::StrCat(ref, ": expected record ", next_seq_,
                                 " next, which appears "
                                 "later at line ",
                                 j + 1, " — records reordered"));
      }
    }
    return Fail(
        AuditProblem::kRecordMissing, line_no, seq,
        absl::StrCat(ref, ": expected record ", next_seq_, " next — ",
                     seq - next_seq_ == 1 ? "record " : "records ", Range(next_seq_, seq - 1),
                     seq - next_seq_ == 1 ? " is" : " are", " missing (deleted)"));
  }

  bool Signature(uint64_t line_no, std::string_view text) {
    absl::StatusOr<SignatureLine> sig = ParseSignatureLine(text);
    if (!sig.ok()) {
      return Fail(AuditProblem::kMalformedLine, line_no, std::nullopt,
                  absl::StrCat("line ", line_no, ": ", sig.status().message()));
    }
    std::string ref = absl::StrCat("signature of segment ", sig->segment, " (line ", line_no, ")");
    if (sig->segment != next_segment_) {
      return Fail(AuditProblem::kSegmentOutOfOrder, line_no, sig->last,
                  absl::StrCat(ref, ": expected segment ", next_segment_,
                               " next — a signature line was deleted, duplicated or moved"));
    }
    if (next_seq_ == segment_first_ || sig->first != segment_first_ || sig->last != next_seq_ - 1) {
      std::string holds =
          next_seq_ == segment_first_
              ? std::string("no records follow the previous signature")
              : absl::StrCat("the segment holds records ", Range(segment_first_, next_seq_ - 1));
      return Fail(AuditProblem::kSegmentRange, line_no, sig->last,
                  absl::StrCat(ref, ": covers records ", Range(sig->first, sig->last), " but ",
                               holds, " — records or signature lines were deleted or moved"));
    }
    if (sig->alg != AlgName(verifier_.alg()) || sig->key_id != verifier_.key_id()) {
      return Fail(AuditProblem::kWrongKey, line_no, sig->last,
                  absl::StrCat(ref, ": signed with ", Sv(sig->alg), " key ", Sv(sig->key_id),
                               ", but the log header names ", Sv(AlgName(verifier_.alg())), " key ",
                               verifier_.key_id()));
    }
    if (sig->head != prev_hash_) {
      return Fail(
          AuditProblem::kHeadMismatch, line_no, sig->last,
          absl::StrCat(ref, ": head does not match ", RecordRef(sig->last, last_record_line_),
                       " — record ", sig->last, " was edited"));
    }
    if (sig->recovered.has_value() &&
        (*sig->recovered < sig->first || *sig->recovered > sig->last)) {
      return Fail(AuditProblem::kMalformedLine, line_no, sig->last,
                  absl::StrCat(ref, ": marks records ", Range(sig->first, *sig->recovered),
                               " as recovered, outside the records it covers"));
    }
    if (!verifier_.Verify(SigningInput(sig->segment, sig->first, sig->last, sig->head, sig->alg,
                                       sig->key_id, sig->recovered),
                          sig->sig)) {
      return Fail(AuditProblem::kBadSignature, line_no, sig->last,
                  absl::StrCat(ref,
                               ": signature does not verify — forged, or made with another "
                               "key"));
    }
    ++next_segment_;
    segment_first_ = next_seq_;
    ++report_.segments;
    if (sig->recovered.has_value()) {
      report_.recovered.emplace_back(sig->first, *sig->recovered);
    }
    return true;
  }

  bool Fail(AuditProblem problem, uint64_t line_no, std::optional<uint64_t> seq,
            std::string reason) {
    report_.ok = false;
    report_.problem = problem;
    report_.bad_line = line_no;
    report_.bad_seq = seq;
    report_.reason = std::move(reason);
    return false;
  }

  const std::vector<Line>& lines_;
  const Verifier& verifier_;
  simdjson::dom::parser parser_;
  VerifyReport report_;
  std::string prev_hash_;
  uint64_t next_seq_ = 0;
  uint64_t next_segment_ = 0;
  uint64_t segment_first_ = 0;        // first record not yet covered by a signature
  uint64_t first_unsigned_line_ = 0;  // its line
  uint64_t last_record_line_ = 0;
};

// `contents` must have SIMDJSON_PADDING readable bytes after its end.
VerifyReport VerifyPadded(std::string_view contents, const Verifier& verifier) {
  std::vector<Line> lines = SplitLines(contents);
  return Walker(lines, verifier).Run();
}

}  // namespace

std::string_view AuditProblemName(AuditProblem problem) {
  switch (problem) {
    case AuditProblem::kNone:
      return "none";
    case AuditProblem::kMissingHeader:
      return "missing-header";
    case AuditProblem::kWrongKey:
      return "wrong-key";
    case AuditProblem::kMalformedLine:
      return "malformed-line";
    case AuditProblem::kRecordMissing:
      return "record-missing";
    case AuditProblem::kRecordOutOfOrder:
      return "record-out-of-order";
    case AuditProblem::kPrevMismatch:
      return "prev-mismatch";
    case AuditProblem::kSegmentOutOfOrder:
      return "segment-out-of-order";
    case AuditProblem::kSegmentRange:
      return "segment-range";
    case AuditProblem::kHeadMismatch:
      return "head-mismatch";
    case AuditProblem::kBadSignature:
      return "bad-signature";
    case AuditProblem::kTornLine:
      return "torn-line";
    case AuditProblem::kUnsignedTail:
      return "unsigned-tail";
  }
  return "unknown";
}

VerifyReport VerifyAuditLog(std::string_view contents, const Verifier& verifier) {
  simdjson::padded_string padded(contents.data(), contents.size());
  return VerifyPadded(std::string_view(padded.data(), padded.size()), verifier);
}

absl::StatusOr<VerifyReport> VerifyAuditFile(std::string_view path, const Verifier& verifier) {
  std::string p(path);
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.Valid() || ::fstat(fd.Get(), &st) != 0) {
    int err = errno;
    std::string message = absl::StrCat("audit log ", p, ": ", ErrnoText(err));
    if (err == ENOENT) {
      return absl::NotFoundError(message);
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(message);
    }
    return absl::InternalError(message);
  }
  // Read into a buffer with simdjson's padding after the end, so reports parse in place.
  std::string contents;
  contents.reserve(static_cast<size_t>(st.st_size) + simdjson::SIMDJSON_PADDING);
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.Get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return absl::InternalError(absl::StrCat("audit log ", p, ": ", ErrnoText(errno)));
    }
    if (n == 0) {
      break;
    }
    contents.append(buf, static_cast<size_t>(n));
  }
  if (contents.capacity() - contents.size() < simdjson::SIMDJSON_PADDING) {
    // The file grew while we read it.
    contents.reserve(contents.size() + simdjson::SIMDJSON_PADDING);
  }
  return VerifyPadded(contents, verifier);
}

std::string DescribeVerifyReport(const VerifyReport& report) {
  if (report.ok) {
    std::string out = absl::StrCat("OK: ", report.records, " records in ", report.segments,
                                   " signed segments, last seq ", report.last_seq, ", head ",
                                   report.head.empty() ? std::string("(none)") : report.head);
    for (const auto& [first, last] : report.recovered) {
      absl::StrAppend(&out, "\nWARNING: ",
                      first == last ? absl::StrCat("record ", first, " was")
                                    : absl::StrCat("records ", Range(first, last), " were"),
                      " left unsigned by a writer that did not close cleanly, and signed when "
                      "the log was reopened, not when written: compare with another copy of the "
                      "log if it matters");
    }
    return out;
  }
  return absl::StrCat("FAILED (", Sv(AuditProblemName(report.problem)), "): ", report.reason);
}

}  // namespace mcpmw::audit
