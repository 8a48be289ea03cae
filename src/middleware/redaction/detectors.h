// mcpmw redaction: content detectors.
//
// Place in the message path: a bundle load builds one DetectorSet from its `redactionRules`
// (ARCHITECTURE §5); the `request_redaction` and `response_redaction` stages (§4) hand it, through
// a JsonRedactor, every string value of the tool arguments and of the tools/call result before
// the message is forwarded. A DetectorSet finds secrets and personal data in text and replaces
// them; it reports what it found (detector, offsets) so events can say what and where, and never
// needs to copy the secret anywhere else.
//
// The fixed kinds are hand-written scanners (one pass each, skipped outright when the text lacks
// the bytes the kind needs); kCustom is an RE2 pattern. What each fixed kind accepts:
//
//   kEmail        local@domain.tld: local part 1-64 bytes of [A-Za-z0-9._%+-] or non-ASCII
//                 (leading dots are not part of the match), domain of two or more dot-separated
//                 labels of [A-Za-z0-9-] or non-ASCII (no label starts or ends with '-'), the
//                 last label (TLD) 2-63 ASCII letters. A trailing '.' (end of a sentence) is not
//                 part of the match.
//   kCardNumber   13-19 digits, optionally split by single spaces or dashes, first digit 2-6
//                 (the issuer ranges of Visa, Mastercard, Amex, Discover, JCB, UnionPay, so
//                 13-digit millisecond timestamps starting with 1 are not cards), passing the Luhn
//                 check, not glued to a letter. In a longer run of digit groups a card may start
//                 at any group; from there the most groups that pass are taken.
//   kUsSsn        ddd-dd-dddd, area not 000, 666 or 900-999, group not 00, serial not 0000, not
//                 touching another letter or digit nor continued by "-digit".
//   kIban         two uppercase letters, two check digits, then uppercase letters and digits,
//                 15-34 characters in all, with or without single spaces between groups, whose
//                 ISO 13616 mod-97 is 1. The longest space-group prefix that passes is taken.
//   kCloudKey     AWS access key ids (AKIA/ASIA + 16 of [A-Z0-9]); AWS secret access keys (40 of
//                 [A-Za-z0-9/+]) only right after a label such as aws_secret_access_key,
//                 SecretAccessKey or AWS_SECRET_KEY (`=`, `:` or `=>`, optional quotes), the
//                 label itself kept; GCP API keys (AIza + 35 of [A-Za-z0-9_-]); GitHub tokens
//                 (ghp_/gho_/ghs_/ghu_/ghr_ + 36 of [A-Za-z0-9], github_pat_ + 82 of
//                 [A-Za-z0-9_]); Slack tokens (xoxa-/xoxb-/xoxp-/xoxr-/xoxs- + 10 or more of
//                 [A-Za-z0-9-]); Stripe live keys (sk_live_/rk_live_ + 16 or more of
//                 [A-Za-z0-9]).
//   kBearerToken  `Bearer <token>` (case-insensitive word, spaces or tabs): the token, a run of
//                 [A-Za-z0-9-._~+/] then '=' padding, without a trailing '.' or ',', at least 8
//                 characters with a digit or at least 20 characters; the word Bearer is kept.
//                 Also JWT-shaped text anywhere: eyJ… '.' … '.' … in base64url (header at least
//                 10 characters, payload at least 4, signature possibly empty).
//   kPrivateKey   from `-----BEGIN <LABEL>PRIVATE KEY-----` (label of [A-Z0-9 ], e.g. "RSA ",
//                 "OPENSSH ", "ENCRYPTED ", or none) to the end of the next
//                 `-----END <LABEL>PRIVATE KEY-----`; a block without its END line is redacted to
//                 the end of the text (a truncated key is still a secret).
//   kCustom       an RE2 pattern (Perl leftmost-first semantics, partial match); empty matches
//                 are ignored.
//
// All scanners work on bytes; they never fail and never read outside the text, whatever it
// holds (invalid UTF-8 included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace mcpmw::redaction {

enum class DetectorKind {
  kEmail,
  kCardNumber,
  kUsSsn,
  kIban,
  kCloudKey,
  kBearerToken,
  kPrivateKey,
  kCustom,
};

// "email", "card_number", "us_ssn", "iban", "cloud_key", "bearer_token", "private_key",
// "custom": the names bundles and events use. The view is static.
std::string_view DetectorKindName(DetectorKind kind);

// The replacement used when a DetectorSpec leaves it empty: "[EMAIL_REDACTED]",
// "[CARD_REDACTED]", "[SSN_REDACTED]", "[IBAN_REDACTED]", "[CLOUD_KEY_REDACTED]",
// "[TOKEN_REDACTED]", "[PRIVATE_KEY_REDACTED]", "[REDACTED]". The view is static.
std::string_view DefaultReplacement(DetectorKind kind);

// One detector of a set, as a bundle configures it.
struct DetectorSpec {
  DetectorKind kind = DetectorKind::kCustom;
  // Names the detector in errors and events; unique within a set. Empty: the kind's name.
  std::string id;
  // kCustom only: the RE2 pattern. Must be empty for the fixed kinds.
  std::string pattern;
  // The text that replaces each match. Empty: DefaultReplacement(kind).
  std::string replacement;
};

// Every fixed kind once, with default ids and replacements, in tie-break order: private_key,
// bearer_token, cloud_key, email, iban, card_number, us_ssn.
std::vector<DetectorSpec> BuiltinDetectors();

// One finding: text[begin, end) matched the detector at index `detector` of its set.
struct Match {
  size_t begin = 0;
  size_t end = 0;
  size_t detector = 0;
  DetectorKind kind = DetectorKind::kCustom;
  bool operator==(const Match&) const = default;
};

// An immutable, ordered list of detectors. Copies share the compiled RE2 programs. All const
// methods may be called from any number of threads at once.
class DetectorSet {
 public:
  // An empty set: Scan finds nothing, Redact never changes anything.
  DetectorSet() = default;

  // Validates and compiles `specs` (order = tie-break priority). InvalidArgument, naming the
  // detector id, for: a kCustom pattern RE2 rejects or that is empty, a pattern on a fixed kind,
  // a duplicate id.
  static absl::StatusOr<DetectorSet> Create(std::vector<DetectorSpec> specs);

  // Appends to `out` every match in `text`, sorted by begin and non-overlapping: among candidates
  // the leftmost wins, then the longest, then the one of the earlier detector; candidates
  // overlapping a winner are dropped. Offsets index `text`.
  void Scan(std::string_view text, std::vector<Match>* out) const;

  // Whether Scan would find anything in `text`.
  bool FindsAny(std::string_view text) const;

  // Whether any detector is kCustom (an RE2 pattern, which may be anchored to the text's ends).
  bool has_custom() const;

  // Writes `text` with each match replaced by its detector's replacement to `*out` and returns
  // true; returns false, leaving `*out` untouched, when nothing matched. `matches` (may be null)
  // receives what Scan would append, offsets into `text`.
  bool Redact(std::string_view text, std::string* out, std::vector<Match>* matches) const;

  size_t size() const { return detectors_.size(); }
  bool empty() const { return detectors_.empty(); }
  // The spec at `index` (< size()), with its id and replacement filled in.
  const DetectorSpec& spec(size_t index) const { return detectors_[index].spec; }

 private:
  struct Compiled {
    DetectorSpec spec;
    std::shared_ptr<const re2::RE2> re;  // kCustom only
  };
  std::vector<Compiled> detectors_;
  // Text shorter than this holds no match (no custom detector, and every fixed kind needs more).
  size_t min_text_ = 0;
};

}  // namespace mcpmw::redaction
