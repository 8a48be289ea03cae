#include "src/audit/record.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::audit {
namespace {

constexpr std::string_view kHeaderPrefix = R"({"mcpmw_audit":)";
constexpr std::string_view kRecordPrefix = R"({"seq":)";
constexpr std::string_view kSignaturePrefix = R"({"segment":)";
// "2026-11-24T06:53:12.345Z"
constexpr size_t kTimestampSize = 24;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A strict left-to-right reader over the canonical form. The first failure sticks and names
// the field, so the verifier can say "bad `prev`" rather than "malformed".
class Cursor {
 public:
  explicit Cursor(std::string_view text) : rest_(text) {}

  // Consumes `literal` when the text goes on with it; false (and no failure) when it does not.
  bool Optional(std::string_view literal) {
    if (!ok() || rest_.substr(0, literal.size()) != literal) {
      return false;
    }
    rest_.remove_prefix(literal.size());
    return true;
  }

  bool Literal(std::string_view literal, std::string_view field) {
    if (!ok() || rest_.substr(0, literal.size()) != literal) {
      return Fail(field);
    }
    rest_.remove_prefix(literal.size());
    return true;
  }

  // A non-negative decimal without leading zeros.
  bool Uint(uint64_t* value, std::string_view field) {
    if (!ok()) {
      return false;
    }
    size_t digits = 0;
    while (digits < rest_.size() &&
           absl::ascii_isdigit(static_cast<unsigned char>(rest_[digits]))) {
      ++digits;
    }
    if (digits == 0 || (digits > 1 && rest_[0] == '0')) {
      return Fail(field);
    }
    auto [ptr, ec] = std::from_chars(rest_.data(), rest_.data() + digits, *value);
    if (ec != std::errc() || ptr != rest_.data() + digits) {
      return Fail(field);
    }
    rest_.remove_prefix(digits);
    return true;
  }

  // A quoted string of characters accepted by `allowed`, no escapes; the view excludes quotes.
  template <typename Pred>
  bool Quoted(std::string_view* value, std::string_view field, Pred allowed) {
    if (!ok() || rest_.empty() || rest_[0] != '"') {
      return Fail(field);
    }
    size_t end = 1;
    while (end < rest_.size() && rest_[end] != '"') {
      if (!allowed(rest_[end])) {
        return Fail(field);
      }
      ++end;
    }
    if (end == rest_.size()) {
      return Fail(field);
    }
    *value = rest_.substr(1, end - 1);
    rest_.remove_prefix(end + 1);
    return true;
  }

  bool Hash(std::string_view* value, std::string_view field) {
    return Quoted(value, field, IsLowerHex) && (value->size() == kHashHexSize || Fail(field));
  }

  bool Hex(std::string_view* value, std::string_view field) {
    return Quoted(value, field, IsLowerHex) && (!value->empty() || Fail(field));
  }

  bool Timestamp(std::string_view* value, std::string_view field) {
    if (!Quoted(value, field, [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == ':' ||
                 c == 'T' || c == '.' || c == 'Z';
        })) {
      return false;
    }
    std::string_view ts = *value;
    if (ts.size() != kTimestampSize || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' ||
        ts[13] != ':' || ts[16] != ':' || ts[19] != '.' || ts[23] != 'Z') {
      return Fail(field);
    }
    return true;
  }

  bool Name(std::string_view* value, std::string_view field) {
    return Quoted(value, field,
                  [](char c) {
                    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-';
                  }) &&
           (!value->empty() || Fail(field));
  }

  // Everything up to the final '}' of the line.
  bool RawUntilFinalBrace(std::string_view* value, std::string_view field) {
    if (!ok() || rest_.empty() || rest_.back() != '}') {
      return Fail(field);
    }
    *value = rest_.substr(0, rest_.size() - 1);
    rest_ = {};
    return true;
  }

  bool End(std::string_view field) { return ok() && (rest_.empty() || Fail(field)); }

  bool ok() const { return failed_field_.empty(); }

  absl::Status status(std::string_view kind) const {
    if (ok()) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", Sv(kind), " line: bad or missing `", Sv(failed_field_), "`"));
  }

 private:
  bool Fail(std::string_view field) {
    if (ok()) {
      failed_field_ = field;
    }
    return false;
  }

  std::string_view rest_;
  std::string_view failed_field_;
};

}  // namespace

LineKind ClassifyLine(std::string_view line) {
  if (line.substr(0, kRecordPrefix.size()) == kRecordPrefix) {
    return LineKind::kRecord;
  }
  if (line.substr(0, kSignaturePrefix.size()) == kSignaturePrefix) {
    return LineKind::kSignature;
  }
  if (line.substr(0, kHeaderPrefix.size()) == kHeaderPrefix) {
    return LineKind::kHeader;
  }
  return LineKind::kUnknown;
}

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto seconds = static_cast<time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char out[64];
  std::snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return out;
}

void AppendHeaderLine(const HeaderLine& header, std::string* out) {
  absl::StrAppend(out, R"({"mcpmw_audit":)", header.version, R"(,"alg":")", header.alg,
                  R"(","key_id":")", header.key_id, R"(","started":")", header.started, "\"}");
}

void AppendRecordLinePrefix(uint64_t seq, std::string_view ts, std::string_view prev,
                            std::string* out) {
  absl::StrAppend(out, R"({"seq":)", seq, R"(,"ts":")", Sv(ts), R"(","prev":")", Sv(prev),
                  R"(","report":)");
}

void AppendRecordLine(uint64_t seq, std::string_view ts, std::string_view prev,
                      std::string_view report, std::string* out) {
  AppendRecordLinePrefix(seq, ts, prev, out);
  absl::StrAppend(out, Sv(report), "}");
}

void AppendSignatureLine(const SignatureLine& sig, std::string* out) {
  absl::StrAppend(out, R"({"segment":)", sig.segment, R"(,"first":)", sig.first, R"(,"last":)",
                  sig.last);
  if (sig.recovered.has_value()) {
    absl::StrAppend(out, R"(,"recovered":)", *sig.recovered);
  }
  absl::StrAppend(out, R"(,"head":")", Sv(sig.head), R"(","alg":")", Sv(sig.alg), R"(","key_id":")",
                  Sv(sig.key_id), R"(","sig":")", Sv(sig.sig), "\"}");
}

std::string SigningInput(uint64_t segment, uint64_t first, uint64_t last, std::string_view head,
                         std::string_view alg, std::string_view key_id,
                         std::optional<uint64_t> recovered) {
  std::string input =
      absl::StrCat("mcpmw-audit-v1\nsegment=", segment, "\nfirst=", first, "\nlast=", last,
                   "\nhead=", Sv(head), "\nalg=", Sv(alg), "\nkey_id=", Sv(key_id), "\n");
  if (recovered.has_value()) {  // signed, so that the mark cannot be taken off the line
    absl::StrAppend(&input, "recovered=", *recovered, "\n");
  }
  return input;
}

absl::StatusOr<HeaderLine> ParseHeaderLine(std::string_view line) {
  Cursor c(line);
  uint64_t version = 0;
  std::string_view alg;
  std::string_view key_id;
  std::string_view started;
  (void)(c.Literal(kHeaderPrefix, "mcpmw_audit") && c.Uint(&version, "mcpmw_audit") &&
         c.Literal(R"(,"alg":)", "alg") && c.Name(&alg, "alg") &&
         c.Literal(R"(,"key_id":)", "key_id") && c.Hex(&key_id, "key_id") &&
         c.Literal(R"(,"started":)", "started") && c.Timestamp(&started, "started") &&
         c.Literal("}", "}") && c.End("end of line"));
  MCPMW_RETURN_IF_ERROR(c.status("header"));
  if (version != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("audit format version ", version,
                                                   " is not supported (this build reads ",
                                                   kFormatVersion, ")"));
  }
  return HeaderLine{.version = static_cast<int>(version),
                    .alg = std::string(alg),
                    .key_id = std::string(key_id),
                    .started = std::string(started)};
}

absl::StatusOr<RecordLine> ParseRecordLine(std::string_view line) {
  Cursor c(line);
  RecordLine record;
  (void)(c.Literal(kRecordPrefix, "seq") && c.Uint(&record.seq, "seq") &&
         c.Literal(R"(,"ts":)", "ts") && c.Timestamp(&record.ts, "ts") &&
         c.Literal(R"(,"prev":)", "prev") && c.Hash(&record.prev, "prev") &&
         c.Literal(R"(,"report":)", "report") && c.RawUntilFinalBrace(&record.report, "report"));
  MCPMW_RETURN_IF_ERROR(c.status("record"));
  if (record.report.empty()) {
    return absl::InvalidArgumentError("malformed record line: bad or missing `report`");
  }
  return record;
}

absl::StatusOr<SignatureLine> ParseSignatureLine(std::string_view line) {
  Cursor c(line);
  SignatureLine sig;
  (void)(c.Literal(kSignaturePrefix, "segment") && c.Uint(&sig.segment, "segment") &&
         c.Literal(R"(,"first":)", "first") && c.Uint(&sig.first, "first") &&
         c.Literal(R"(,"last":)", "last") && c.Uint(&sig.last, "last") &&
         (!c.Optional(R"(,"recovered":)") || c.Uint(&sig.recovered.emplace(), "recovered")) &&
         c.Literal(R"(,"head":)", "head") && c.Hash(&sig.head, "head") &&
         c.Literal(R"(,"alg":)", "alg") && c.Name(&sig.alg, "alg") &&
         c.Literal(R"(,"key_id":)", "key_id") && c.Hex(&sig.key_id, "key_id") &&
         c.Literal(R"(,"sig":)", "sig") && c.Hex(&sig.sig, "sig") && c.Literal("}", "}") &&
         c.End("end of line"));
  MCPMW_RETURN_IF_ERROR(c.status("signature"));
  return sig;
}

}  // namespace mcpmw::audit
