#include "src/policy/condition.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/common/utf8.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::policy {
namespace internal {

enum class Op : uint8_t {
  kAlways,
  kNull,
  kBool,
  kNumber,
  kString,
  kList,
  kPath,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kContains,
  kStartsWith,
  kEndsWith,
  kMatches,
};

enum class Root : uint8_t {
  kMethod,
  kEnv,
  kToolName,
  kToolServer,
  kTenant,
  kUser,
  kAgent,
  kRoles,
  kScopes,
  kArgs,
};

// Integers stay exact as int64; anything else (fractions, exponents, integers beyond int64) is a
// finite double.
struct Number {
  bool is_int = true;
  int64_t i = 0;
  double d = 0;
};

// One step of an args path: a member name (a view into Program::arena) or an array index.
struct Segment {
  bool is_index = false;
  uint64_t index = 0;
  uint32_t key_off = 0;
  uint32_t key_len = 0;
};

// A node of the predicate tree. Children are referred to by index into Program::nodes; n-ary
// nodes (list, &&, ||) and paths use [first, first + count) ranges of Program::children or
// Program::segments, so evaluating a long `&&` chain iterates instead of recursing.
struct Node {
  Op op = Op::kNull;
  Root root = Root::kMethod;
  bool boolean = false;
  Number number;
  uint32_t lhs = 0;
  uint32_t rhs = 0;
  uint32_t first = 0;
  uint32_t count = 0;
  uint32_t str_off = 0;  // kString, kMatches (the pattern as written, for ToString)
  uint32_t str_len = 0;
  uint32_t regex = 0;  // kMatches
};

struct Program {
  ConditionLanguage language = ConditionLanguage::kExpression;
  std::string rule_id;
  std::string source;  // kLegacySubstring: the text searched
  // Decoded string literals and member names; nodes hold offsets so moves cannot dangle views.
  std::string arena;
  std::vector<Node> nodes;
  std::vector<uint32_t> children;
  std::vector<Segment> segments;
  std::vector<std::unique_ptr<const RE2>> regexes;
  uint32_t root = 0;

  std::string_view Str(uint32_t off, uint32_t len) const {
    return std::string_view(arena).substr(off, len);
  }
};

}  // namespace internal

namespace {

using internal::Node;
using internal::Number;
using internal::Op;
using internal::Program;
using internal::Root;
using internal::Segment;

// Bounds recursion in the parser and, through the tree's depth, in Evaluate().
constexpr int kMaxNesting = 64;
// Conditions are one-liners in a bundle; this only keeps offsets in 32 bits with room to spare.
constexpr size_t kMaxSourceBytes = size_t{64} * 1024;

constexpr std::string_view kValidRoots =
    "method, env, tool.name, tool.server, principal.tenant, principal.user, principal.agent, "
    "principal.roles, principal.scopes, args.<path>";

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t {
  kEnd,
  kString,
  kNumber,
  kIdent,
  kTrue,
  kFalse,
  kNull,
  kIn,
  kContains,
  kStartsWith,
  kEndsWith,
  kMatches,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kMinus,
  kStar,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;  // byte offset into the source
  size_t len = 0;
  std::string text;  // kString: the decoded value
  Number number;     // kNumber
};

bool IsIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsKeywordToken(Tok t) {
  switch (t) {
    case Tok::kTrue:
    case Tok::kFalse:
    case Tok::kNull:
    case Tok::kIn:
    case Tok::kContains:
    case Tok::kStartsWith:
    case Tok::kEndsWith:
    case Tok::kMatches:
      return true;
    default:
      return false;
  }
}

// The comparison a token stands for, or nullopt when it is not a comparison operator.
std::optional<Op> ComparisonOp(Tok t) {
  switch (t) {
    case Tok::kEq:
      return Op::kEq;
    case Tok::kNe:
      return Op::kNe;
    case Tok::kLt:
      return Op::kLt;
    case Tok::kLe:
      return Op::kLe;
    case Tok::kGt:
      return Op::kGt;
    case Tok::kGe:
      return Op::kGe;
    case Tok::kIn:
      return Op::kIn;
    case Tok::kContains:
      return Op::kContains;
    case Tok::kStartsWith:
      return Op::kStartsWith;
    case Tok::kEndsWith:
      return Op::kEndsWith;
    case Tok::kMatches:
      return Op::kMatches;
    default:
      return std::nullopt;
  }
}

std::string_view OpText(Op op) {
  switch (op) {
    case Op::kEq:
      return "==";
    case Op::kNe:
      return "!=";
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kIn:
      return "in";
    case Op::kContains:
      return "contains";
    case Op::kStartsWith:
      return "startsWith";
    case Op::kEndsWith:
      return "endsWith";
    case Op::kMatches:
      return "matches";
    case Op::kAnd:
      return "&&";
    case Op::kOr:
      return "||";
    default:
      return "?";
  }
}

// Compiles one condition: lexes everything up front, then parses by recursive descent into the
// Program. Every error carries the byte offset it is about; Fail() turns it into a column.
class Compiler {
 public:
  Compiler(std::string_view source, Program* program) : src_(source), p_(program) {}

  absl::Status Run() {
    if (src_.size() > kMaxSourceBytes) {
      return Fail(0, absl::StrCat("condition is longer than ", kMaxSourceBytes, " bytes"));
    }
    if (absl::Status st = Lex(); !st.ok()) {
      return st;
    }
    if (Peek().kind == Tok::kEnd) {
      p_->root = Add(Node{.op = Op::kAlways});
      return absl::OkStatus();
    }
    if (Peek().kind == Tok::kStar && tokens_[1].kind == Tok::kEnd) {
      p_->root = Add(Node{.op = Op::kAlways});
      return absl::OkStatus();
    }
    absl::StatusOr<uint32_t> root = ParseOr(0);
    if (!root.ok()) {
      return root.status();
    }
    if (Peek().kind != Tok::kEnd) {
      return Fail(Peek().pos,
                  absl::StrCat("expected an operator or the end of the condition, found ",
                               Describe(Peek())));
    }
    p_->root = *root;
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(size_t pos, std::string_view message) const {
    size_t line = 1;
    size_t column = 1;
    bool multiline = false;
    for (size_t i = 0; i < pos && i < src_.size(); ++i) {
      const auto c = static_cast<unsigned char>(src_[i]);
      if (c == '\n') {
        ++line;
        column = 1;
        multiline = true;
      } else if ((c & 0xC0) != 0x80) {  // count characters, not UTF-8 continuation bytes
        ++column;
      }
    }
    multiline = multiline || src_.find('\n') != std::string_view::npos;
    std::string where = multiline ? absl::StrCat("line ", line, ", column ", column)
                                  : absl::StrCat("column ", column);
    return absl::InvalidArgumentError(absl::StrCat("rule \"", Sv(std::string_view(p_->rule_id)),
                                                   "\": ", where, ": ", Sv(message)));
  }

  std::string Describe(const Token& t) const {
    if (t.kind == Tok::kEnd) {
      return "the end of the condition";
    }
    constexpr size_t kMaxShown = 24;
    std::string_view text = src_.substr(t.pos, t.len);
    if (text.size() > kMaxShown) {
      return absl::StrCat("`", Sv(text.substr(0, kMaxShown)), "…`");
    }
    return absl::StrCat("`", Sv(text), "`");
  }

  // --- lexing ---

  absl::Status Lex() {
    size_t i = 0;
    while (true) {
      while (i < src_.size() && IsSpace(src_[i])) {
        ++i;
      }
      if (i == src_.size()) {
        tokens_.push_back(Token{.kind = Tok::kEnd, .pos = i});
        return absl::OkStatus();
      }
      Token t{.pos = i};
      const char c = src_[i];
      const char next = i + 1 < src_.size() ? src_[i + 1] : '\0';
      auto one = [&](Tok kind) {
        t.kind = kind;
        t.len = 1;
      };
      auto two = [&](Tok kind) {
        t.kind = kind;
        t.len = 2;
      };
      if (c == '"' || c == '\'') {
        if (absl::Status st = LexString(&t); !st.ok()) {
          return st;
        }
      } else if (absl::ascii_isdigit(c)) {
        if (absl::Status st = LexNumber(&t); !st.ok()) {
          return st;
        }
      } else if (IsIdentStart(c)) {
        size_t j = i;
        while (j < src_.size() && IsIdentChar(src_[j])) {
          ++j;
        }
        t.len = j - i;
        t.kind = KeywordOrIdent(src_.substr(i, t.len));
      } else if (c == '(') {
        one(Tok::kLParen);
      } else if (c == ')') {
        one(Tok::kRParen);
      } else if (c == '[') {
        one(Tok::kLBracket);
      } else if (c == ']') {
        one(Tok::kRBracket);
      } else if (c == ',') {
        one(Tok::kComma);
      } else if (c == '.') {
        one(Tok::kDot);
      } else if (c == '-') {
        one(Tok::kMinus);
      } else if (c == '*') {
        one(Tok::kStar);
      } else if (c == '!') {
        next == '=' ? two(Tok::kNe) : one(Tok::kNot);
      } else if (c == '<') {
        next == '=' ? two(Tok::kLe) : one(Tok::kLt);
      } else if (c == '>') {
        next == '=' ? two(Tok::kGe) : one(Tok::kGt);
      } else if (c == '=' && next == '=') {
        two(Tok::kEq);
      } else if (c == '&' && next == '&') {
        two(Tok::kAnd);
      } else if (c == '|' && next == '|') {
        two(Tok::kOr);
      } else if (c == '=' || c == '&' || c == '|') {
        return Fail(i, absl::StrCat("unexpected `", std::string(1, c), "`; did you mean `",
                                    std::string(2, c), "`?"));
      } else if (absl::ascii_isgraph(c)) {
        return Fail(i, absl::StrCat("unexpected character `", std::string(1, c), "`"));
      } else {
        return Fail(i, absl::StrCat("unexpected byte 0x",
                                    absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2),
                                    " outside a string literal"));
      }
      i = t.pos + t.len;
      tokens_.push_back(std::move(t));
    }
  }

  static Tok KeywordOrIdent(std::string_view word) {
    static constexpr std::pair<std::string_view, Tok> kKeywords[] = {
        {"true", Tok::kTrue},         {"false", Tok::kFalse},
        {"null", Tok::kNull},         {"in", Tok::kIn},
        {"contains", Tok::kContains}, {"startsWith", Tok::kStartsWith},
        {"endsWith", Tok::kEndsWith}, {"matches", Tok::kMatches},
    };
    for (const auto& [keyword, tok] : kKeywords) {
      if (word == keyword) {
        return tok;
      }
    }
    return Tok::kIdent;
  }

  absl::Status LexString(Token* t) {
    const char quote = src_[t->pos];
    size_t i = t->pos + 1;
    while (true) {
      if (i >= src_.size()) {
        return Fail(t->pos, "unterminated string literal");
      }
      const char c = src_[i];
      if (c == quote) {
        ++i;
        break;
      }
      if (c != '\\') {
        t->text.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) {
        return Fail(t->pos, "unterminated string literal");
      }
      const char e = src_[i + 1];
      switch (e) {
        case '"':
        case '\'':
        case '\\':
        case '/':
          t->text.push_back(e);
          break;
        case 'b':
          t->text.push_back('\b');
          break;
        case 'f':
          t->text.push_back('\f');
          break;
        case 'n':
          t->text.push_back('\n');
          break;
        case 'r':
          t->text.push_back('\r');
          break;
        case 't':
          t->text.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(i + 2, &cp)) {
            return Fail(i, "invalid \\u escape: expected four hex digits");
          }
          size_t consumed = 6;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail(i, "invalid \\u escape: unpaired surrogate");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (i + 7 >= src_.size() || src_[i + 6] != '\\' || src_[i + 7] != 'u' ||
                !Hex4(i + 8, &low) || low < 0xDC00 || low > 0xDFFF) {
              return Fail(i, "invalid \\u escape: unpaired surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            consumed = 12;
          }
          AppendUtf8(cp, &t->text);
          i += consumed;
          continue;
        }
        default:
          return Fail(i, absl::StrCat("invalid escape `\\", std::string(1, e), "` in a string"));
      }
      i += 2;
    }
    t->kind = Tok::kString;
    t->len = i - t->pos;
    return absl::OkStatus();
  }

  bool Hex4(size_t at, uint32_t* out) const {
    if (at + 4 > src_.size()) {
      return false;
    }
    uint32_t v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      const char c = src_[k];
      if (!absl::ascii_isxdigit(c)) {
        return false;
      }
      v = v * 16 + static_cast<uint32_t>(
                       absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10);
    }
    *out = v;
    return true;
  }

  absl::Status LexNumber(Token* t) {
    size_t i = t->pos;
    bool is_int = true;
    auto digits = [&] {
      while (i < src_.size() && absl::ascii_isdigit(src_[i])) {
        ++i;
      }
    };
    digits();
    if (i + 1 < src_.size() && src_[i] == '.' && absl::ascii_isdigit(src_[i + 1])) {
      is_int = false;
      ++i;
      digits();
    }
    if (i < src_.size() && (src_[i] == 'e' || src_[i] == 'E')) {
      size_t j = i + 1;
      if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) {
        ++j;
      }
      if (j >= src_.size() || !absl::ascii_isdigit(src_[j])) {
        return Fail(t->pos, "invalid number: expected digits after the exponent");
      }
      is_int = false;
      i = j;
      digits();
    }
    if (i < src_.size() && (IsIdentChar(src_[i]) || src_[i] == '.')) {
      if (src_[i] != '.' || (i + 1 < src_.size() && absl::ascii_isdigit(src_[i + 1]))) {
        return Fail(t->pos, "invalid number");
      }
    }
    t->kind = Tok::kNumber;
    t->len = i - t->pos;
    const char* begin = src_.data() + t->pos;
    const char* end = src_.data() + i;
    if (is_int) {
      auto [ptr, ec] = std::from_chars(begin, end, t->number.i);
      if (ec == std::errc() && ptr == end) {
        t->number.is_int = true;
        return absl::OkStatus();
      }
    }
    t->number.is_int = false;
    auto [ptr, ec] = std::from_chars(begin, end, t->number.d);
    if (ec != std::errc() || ptr != end) {
      return Fail(t->pos, "number out of range");
    }
    return absl::OkStatus();
  }

  // --- parsing ---

  const Token& Peek() const { return tokens_[next_]; }
  const Token& Take() { return tokens_[next_++]; }

  uint32_t Add(Node node) {
    p_->nodes.push_back(node);
    return static_cast<uint32_t>(p_->nodes.size() - 1);
  }

  uint32_t AddString(std::string_view s, Node node) {
    node.str_off = static_cast<uint32_t>(p_->arena.size());
    node.str_len = static_cast<uint32_t>(s.size());
    p_->arena.append(s);
    return Add(node);
  }

  absl::Status TooDeep(size_t pos) const {
    return Fail(pos, absl::StrCat("nesting deeper than ", kMaxNesting, " levels"));
  }

  // or := and ( "||" and )*; also and := compare ( "&&" compare )* through `op`.
  absl::StatusOr<uint32_t> ParseOr(int depth) { return ParseChain(depth, Tok::kOr); }

  absl::StatusOr<uint32_t> ParseChain(int depth, Tok joiner) {
    std::vector<uint32_t> parts;
    while (true) {
      absl::StatusOr<uint32_t> part =
          joiner == Tok::kOr ? ParseChain(depth, Tok::kAnd) : ParseCompare(depth);
      if (!part.ok()) {
        return part.status();
      }
      parts.push_back(*part);
      if (Peek().kind != joiner) {
        break;
      }
      Take();
    }
    if (parts.size() == 1) {
      return parts[0];
    }
    Node node{.op = joiner == Tok::kOr ? Op::kOr : Op::kAnd,
              .first = static_cast<uint32_t>(p_->children.size()),
              .count = static_cast<uint32_t>(parts.size())};
    p_->children.insert(p_->children.end(), parts.begin(), parts.end());
    return Add(node);
  }

  absl::StatusOr<uint32_t> ParseCompare(int depth) {
    absl::StatusOr<uint32_t> lhs = ParseUnary(depth);
    if (!lhs.ok()) {
      return lhs.status();
    }
    const std::optional<Op> comparison = ComparisonOp(Peek().kind);
    if (!comparison.has_value()) {
      return lhs;
    }
    Take();
    const Op op = *comparison;
    uint32_t result = 0;
    if (op == Op::kMatches) {
      const Token& pattern = Peek();
      if (pattern.kind != Tok::kString) {
        return Fail(pattern.pos,
                    absl::StrCat("`matches` takes a string literal RE2 pattern, found ",
                                 Describe(pattern)));
      }
      Take();
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_unique<const RE2>(
          re2::StringPiece(pattern.text.data(), pattern.text.size()), options);
      if (!re->ok()) {
        return Fail(pattern.pos, absl::StrCat("invalid regular expression: ",
                                              Sv(std::string_view(re->error()))));
      }
      p_->regexes.push_back(std::move(re));
      result =
          AddString(pattern.text, Node{.op = Op::kMatches,
                                       .lhs = *lhs,
                                       .regex = static_cast<uint32_t>(p_->regexes.size() - 1)});
    } else {
      absl::StatusOr<uint32_t> rhs = ParseUnary(depth);
      if (!rhs.ok()) {
        return rhs.status();
      }
      result = Add(Node{.op = op, .lhs = *lhs, .rhs = *rhs});
    }
    if (ComparisonOp(Peek().kind).has_value()) {
      return Fail(Peek().pos, absl::StrCat(Describe(Peek()),
                                           " cannot follow a comparison; comparisons do not "
                                           "chain, add parentheses"));
    }
    return result;
  }

  absl::StatusOr<uint32_t> ParseUnary(int depth) {
    if (Peek().kind != Tok::kNot) {
      return ParsePrimary(depth);
    }
    const Token& bang = Take();
    if (depth + 1 > kMaxNesting) {
      return TooDeep(bang.pos);
    }
    absl::StatusOr<uint32_t> operand = ParseUnary(depth + 1);
    if (!operand.ok()) {
      return operand.status();
    }
    return Add(Node{.op = Op::kNot, .lhs = *operand});
  }

  absl::Status ExpectedValue() const {
    std::string after;
    if (next_ > 0) {
      const Token& prev = tokens_[next_ - 1];
      after = absl::StrCat(" after `", Sv(src_.substr(prev.pos, prev.len)), "`");
    }
    return Fail(Peek().pos, absl::StrCat("expected a value", after, ", found ", Describe(Peek())));
  }

  absl::StatusOr<uint32_t> ParsePrimary(int depth) {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kString: {
        Take();
        return AddString(t.text, Node{.op = Op::kString});
      }
      case Tok::kNumber:
        Take();
        return Add(Node{.op = Op::kNumber, .number = t.number});
      case Tok::kMinus: {
        Take();
        if (Peek().kind != Tok::kNumber) {
          return Fail(Peek().pos,
                      absl::StrCat("expected a number after `-`, found ", Describe(Peek())));
        }
        Number n = Take().number;
        if (n.is_int) {
          n.i = -n.i;  // cannot overflow: a literal beyond INT64_MAX lexed as a double
        } else {
          n.d = -n.d;
        }
        return Add(Node{.op = Op::kNumber, .number = n});
      }
      case Tok::kTrue:
      case Tok::kFalse:
        Take();
        return Add(Node{.op = Op::kBool, .boolean = t.kind == Tok::kTrue});
      case Tok::kNull:
        Take();
        return Add(Node{.op = Op::kNull});
      case Tok::kLParen: {
        const Token& open = Take();
        if (depth + 1 > kMaxNesting) {
          return TooDeep(open.pos);
        }
        absl::StatusOr<uint32_t> inner = ParseOr(depth + 1);
        if (!inner.ok()) {
          return inner.status();
        }
        if (Peek().kind != Tok::kRParen) {
          return Fail(Peek().pos, absl::StrCat("expected `)` to close the `(` at column ",
                                               ColumnOf(open.pos), ", found ", Describe(Peek())));
        }
        Take();
        return inner;
      }
      case Tok::kLBracket:
        return ParseList(depth);
      case Tok::kIdent:
        return ParsePath();
      default:
        return ExpectedValue();
    }
  }

  size_t ColumnOf(size_t pos) const {
    size_t column = 1;
    for (size_t i = 0; i < pos && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        column = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    return column;
  }

  absl::StatusOr<uint32_t> ParseList(int depth) {
    const Token& open = Take();
    if (depth + 1 > kMaxNesting) {
      return TooDeep(open.pos);
    }
    std::vector<uint32_t> elements;
    if (Peek().kind != Tok::kRBracket) {
      while (true) {
        absl::StatusOr<uint32_t> element = ParseOr(depth + 1);
        if (!element.ok()) {
          return element.status();
        }
        elements.push_back(*element);
        if (Peek().kind == Tok::kComma) {
          Take();
          continue;
        }
        if (Peek().kind != Tok::kRBracket) {
          return Fail(Peek().pos, absl::StrCat("expected `,` or `]` in the list opened at column ",
                                               ColumnOf(open.pos), ", found ", Describe(Peek())));
        }
        break;
      }
    }
    Take();  // `]`
    Node node{.op = Op::kList,
              .first = static_cast<uint32_t>(p_->children.size()),
              .count = static_cast<uint32_t>(elements.size())};
    p_->children.insert(p_->children.end(), elements.begin(), elements.end());
    return Add(node);
  }

  // After `root.`, reads the member name (keywords are names here: `args.in`).
  const Token* TakeMemberName() {
    if (Peek().kind == Tok::kIdent || IsKeywordToken(Peek().kind)) {
      return &Take();
    }
    return nullptr;
  }

  absl::StatusOr<uint32_t> ParsePath() {
    const Token& first = Take();
    const std::string_view name = src_.substr(first.pos, first.len);
    Root root = Root::kMethod;
    std::string_view shown = name;
    if (name == "method") {
      root = Root::kMethod;
    } else if (name == "env") {
      root = Root::kEnv;
    } else if (name == "args") {
      return ParseArgs();
    } else if (name == "tool" || name == "principal") {
      const bool tool = name == "tool";
      const std::string_view fields = tool ? "tool.name, tool.server"
                                           : "principal.tenant, principal.user, principal.agent, "
                                             "principal.roles, principal.scopes";
      if (Peek().kind != Tok::kDot) {
        return Fail(Peek().pos, absl::StrCat("`", Sv(name), "` needs a field (", Sv(fields),
                                             "), found ", Describe(Peek())));
      }
      Take();
      const Token* field = TakeMemberName();
      if (field == nullptr) {
        return Fail(Peek().pos, absl::StrCat("expected a field after `", Sv(name), ".` (",
                                             Sv(fields), "), found ", Describe(Peek())));
      }
      const std::string_view f = src_.substr(field->pos, field->len);
      bool known = true;
      if (tool && f == "name") {
        root = Root::kToolName;
      } else if (tool && f == "server") {
        root = Root::kToolServer;
      } else if (!tool && f == "tenant") {
        root = Root::kTenant;
      } else if (!tool && f == "user") {
        root = Root::kUser;
      } else if (!tool && f == "agent") {
        root = Root::kAgent;
      } else if (!tool && f == "roles") {
        root = Root::kRoles;
      } else if (!tool && f == "scopes") {
        root = Root::kScopes;
      } else {
        known = false;
      }
      if (!known) {
        return Fail(field->pos, absl::StrCat("unknown field `", Sv(name), ".", Sv(f),
                                             "`; valid fields are ", Sv(fields)));
      }
      shown = src_.substr(first.pos, field->pos + field->len - first.pos);
    } else {
      return Fail(first.pos,
                  absl::StrCat("unknown name `", Sv(name), "`; valid roots are ", Sv(kValidRoots)));
    }
    if (Peek().kind == Tok::kDot || Peek().kind == Tok::kLBracket) {
      return Fail(Peek().pos,
                  absl::StrCat("`", Sv(shown), "` has no members; only args.<path> does"));
    }
    return Add(Node{.op = Op::kPath, .root = root});
  }

  absl::StatusOr<uint32_t> ParseArgs() {
    std::vector<Segment> segments;
    while (true) {
      if (Peek().kind == Tok::kDot) {
        Take();
        const Token* member = TakeMemberName();
        if (member == nullptr) {
          return Fail(Peek().pos,
                      absl::StrCat("expected a member name after `.`, found ", Describe(Peek())));
        }
        segments.push_back(Key(src_.substr(member->pos, member->len)));
      } else if (Peek().kind == Tok::kLBracket) {
        const Token& open = Take();
        const Token& inside = Peek();
        if (inside.kind == Tok::kString) {
          segments.push_back(Key(inside.text));
        } else if (inside.kind == Tok::kNumber && inside.number.is_int) {
          segments.push_back(
              Segment{.is_index = true, .index = static_cast<uint64_t>(inside.number.i)});
        } else {
          return Fail(inside.pos,
                      absl::StrCat("expected an array index or a quoted member name after `[`, "
                                   "found ",
                                   Describe(inside)));
        }
        Take();
        if (Peek().kind != Tok::kRBracket) {
          return Fail(Peek().pos, absl::StrCat("expected `]` to close the `[` at column ",
                                               ColumnOf(open.pos), ", found ", Describe(Peek())));
        }
        Take();
      } else {
        break;
      }
    }
    Node node{.op = Op::kPath,
              .root = Root::kArgs,
              .first = static_cast<uint32_t>(p_->segments.size()),
              .count = static_cast<uint32_t>(segments.size())};
    p_->segments.insert(p_->segments.end(), segments.begin(), segments.end());
    return Add(node);
  }

  Segment Key(std::string_view key) {
    Segment s{.key_off = static_cast<uint32_t>(p_->arena.size()),
              .key_len = static_cast<uint32_t>(key.size())};
    p_->arena.append(key);
    return s;
  }

  std::string_view src_;
  Program* p_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

// A value during evaluation: views only, so building one never allocates.
struct Value {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kList, kStrings, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  Number number;
  std::string_view str;
  const Node* list = nullptr;            // kList: a list literal
  std::span<const std::string> strings;  // kStrings: roles or scopes
  simdjson::dom::array array;            // kArray
  simdjson::dom::object object;          // kObject
};

Value Bool(bool b) { return Value{.kind = Value::Kind::kBool, .boolean = b}; }
Value Str(std::string_view s) { return Value{.kind = Value::Kind::kString, .str = s}; }

Value FromElement(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::STRING:
      return Str(e.get_string().value_unsafe());
    case element_type::INT64:
      return Value{.kind = Value::Kind::kNumber, .number = {.i = e.get_int64().value_unsafe()}};
    case element_type::UINT64: {
      const uint64_t u = e.get_uint64().value_unsafe();  // only beyond INT64_MAX
      return Value{.kind = Value::Kind::kNumber,
                   .number = {.is_int = false, .d = static_cast<double>(u)}};
    }
    case element_type::DOUBLE:
      return Value{.kind = Value::Kind::kNumber,
                   .number = {.is_int = false, .d = e.get_double().value_unsafe()}};
    case element_type::BOOL:
      return Bool(e.get_bool().value_unsafe());
    case element_type::ARRAY:
      return Value{.kind = Value::Kind::kArray, .array = e.get_array().value_unsafe()};
    case element_type::OBJECT:
      return Value{.kind = Value::Kind::kObject, .object = e.get_object().value_unsafe()};
    case element_type::NULL_VALUE:
      return Value{};
  }
  return Value{};
}

double AsDouble(const Number& n) { return n.is_int ? static_cast<double>(n.i) : n.d; }

// -1, 0, 1 for two numbers.
int CompareNumbers(const Number& a, const Number& b) {
  if (a.is_int && b.is_int) {
    return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  }
  const double x = AsDouble(a);
  const double y = AsDouble(b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool Equal(const Value& a, const Value& b) {
  if (a.kind != b.kind) {
    return false;
  }
  switch (a.kind) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.boolean == b.boolean;
    case Value::Kind::kNumber:
      return CompareNumbers(a.number, b.number) == 0;
    case Value::Kind::kString:
      return a.str == b.str;
    default:
      return false;  // lists and objects never compare equal
  }
}

class Evaluator {
 public:
  Evaluator(const Program& p, const EvalContext& ctx) : p_(p), ctx_(ctx) {}

  bool Truthy(const Value& v) const {
    switch (v.kind) {
      case Value::Kind::kNull:
        return false;
      case Value::Kind::kBool:
        return v.boolean;
      case Value::Kind::kNumber:
        return v.number.is_int ? v.number.i != 0 : v.number.d != 0;
      case Value::Kind::kString:
        return !v.str.empty();
      case Value::Kind::kList:
        return v.list->count > 0;
      case Value::Kind::kStrings:
        return !v.strings.empty();
      case Value::Kind::kArray:
        return v.array.begin() != v.array.end();
      case Value::Kind::kObject:
        return v.object.begin() != v.object.end();
    }
    return false;
  }

  Value Get(uint32_t index) const {
    const Node& n = p_.nodes[index];
    switch (n.op) {
      case Op::kAlways:
        return Bool(true);
      case Op::kNull:
        return Value{};
      case Op::kBool:
        return Bool(n.boolean);
      case Op::kNumber:
        return Value{.kind = Value::Kind::kNumber, .number = n.number};
      case Op::kString:
        return Str(p_.Str(n.str_off, n.str_len));
      case Op::kList:
        return Value{.kind = Value::Kind::kList, .list = &n};
      case Op::kPath:
        return Path(n);
      case Op::kNot:
        return Bool(!Truthy(Get(n.lhs)));
      case Op::kAnd:
        for (uint32_t i = 0; i < n.count; ++i) {
          if (!Truthy(Get(p_.children[n.first + i]))) {
            return Bool(false);
          }
        }
        return Bool(true);
      case Op::kOr:
        for (uint32_t i = 0; i < n.count; ++i) {
          if (Truthy(Get(p_.children[n.first + i]))) {
            return Bool(true);
          }
        }
        return Bool(false);
      case Op::kEq:
        return Bool(Equal(Get(n.lhs), Get(n.rhs)));
      case Op::kNe:
        return Bool(!Equal(Get(n.lhs), Get(n.rhs)));
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe:
        return Bool(Order(n.op, Get(n.lhs), Get(n.rhs)));
      case Op::kIn:
        return Bool(Member(Get(n.lhs), Get(n.rhs)));
      case Op::kContains:
        return Bool(Member(Get(n.rhs), Get(n.lhs)));
      case Op::kStartsWith:
      case Op::kEndsWith: {
        const Value a = Get(n.lhs);
        const Value b = Get(n.rhs);
        if (a.kind != Value::Kind::kString || b.kind != Value::Kind::kString) {
          return Bool(false);
        }
        return Bool(n.op == Op::kStartsWith ? a.str.starts_with(b.str) : a.str.ends_with(b.str));
      }
      case Op::kMatches: {
        const Value a = Get(n.lhs);
        if (a.kind != Value::Kind::kString) {
          return Bool(false);
        }
        return Bool(
            RE2::PartialMatch(re2::StringPiece(a.str.data(), a.str.size()), *p_.regexes[n.regex]));
      }
    }
    return Value{};
  }

 private:
  static bool Order(Op op, const Value& a, const Value& b) {
    int c = 0;
    if (a.kind == Value::Kind::kNumber && b.kind == Value::Kind::kNumber) {
      c = CompareNumbers(a.number, b.number);
    } else if (a.kind == Value::Kind::kString && b.kind == Value::Kind::kString) {
      c = a.str.compare(b.str);  // char_traits<char> compares as unsigned char: UTF-8 byte order
    } else {
      return false;
    }
    switch (op) {
      case Op::kLt:
        return c < 0;
      case Op::kLe:
        return c <= 0;
      case Op::kGt:
        return c > 0;
      default:
        return c >= 0;
    }
  }

  // `needle in hay`.
  bool Member(const Value& needle, const Value& hay) const {
    switch (hay.kind) {
      case Value::Kind::kString:
        return needle.kind == Value::Kind::kString &&
               hay.str.find(needle.str) != std::string_view::npos;
      case Value::Kind::kList:
        for (uint32_t i = 0; i < hay.list->count; ++i) {
          if (Equal(Get(p_.children[hay.list->first + i]), needle)) {
            return true;
          }
        }
        return false;
      case Value::Kind::kStrings:
        if (needle.kind != Value::Kind::kString) {
          return false;
        }
        return std::any_of(hay.strings.begin(), hay.strings.end(),
                           [&](const std::string& s) { return s == needle.str; });
      case Value::Kind::kArray:
        for (simdjson::dom::element e : hay.array) {
          if (Equal(FromElement(e), needle)) {
            return true;
          }
        }
        return false;
      default:
        return false;
    }
  }

  Value Path(const Node& n) const {
    switch (n.root) {
      case Root::kMethod:
        return Str(ctx_.method);
      case Root::kEnv:
        return Str(ctx_.env);
      case Root::kToolName:
        return Str(ctx_.tool_name);
      case Root::kToolServer:
        return Str(ctx_.tool_server);
      case Root::kTenant:
        return Str(ctx_.tenant);
      case Root::kUser:
        return Str(ctx_.user);
      case Root::kAgent:
        return Str(ctx_.agent);
      case Root::kRoles:
        return Value{.kind = Value::Kind::kStrings, .strings = ctx_.roles};
      case Root::kScopes:
        return Value{.kind = Value::Kind::kStrings, .strings = ctx_.scopes};
      case Root::kArgs:
        break;
    }
    if (!ctx_.has_args) {
      return Value{};
    }
    simdjson::dom::element e = ctx_.args;
    for (uint32_t i = 0; i < n.count; ++i) {
      const Segment& s = p_.segments[n.first + i];
      simdjson::dom::element child;
      if (s.is_index) {
        if (!e.is_array() ||
            e.get_array().value_unsafe().at(s.index).get(child) != simdjson::SUCCESS) {
          return Value{};
        }
      } else {
        if (!e.is_object() ||
            e.get_object().value_unsafe().at_key(p_.Str(s.key_off, s.key_len)).get(child) !=
                simdjson::SUCCESS) {
          return Value{};
        }
      }
      e = child;
    }
    return FromElement(e);
  }

  const Program& p_;
  const EvalContext& ctx_;
};

// ---------------------------------------------------------------------------------------------
// Legacy substring mode (seed §6.3 step 4)

// Length of the ECMAScript whitespace or line terminator that starts (or, with `at_end`, ends)
// `s`, in bytes; 0 when there is none. The set is String.prototype.trim's (seed §3.6).
size_t JsSpaceLength(std::string_view s, bool at_end) {
  constexpr std::string_view kMultiByte[] = {
      "\xC2\xA0",     "\xEF\xBB\xBF", "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81",
      "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86",
      "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8",
      "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};
  if (s.empty()) {
    return 0;
  }
  const char c = at_end ? s.back() : s.front();
  if (c == ' ' || (c >= '\t' && c <= '\r')) {
    return 1;
  }
  for (std::string_view ws : kMultiByte) {
    if (at_end ? s.ends_with(ws) : s.starts_with(ws)) {
      return ws.size();
    }
  }
  return 0;
}

std::string_view TrimJs(std::string_view s) {
  while (size_t n = JsSpaceLength(s, false)) {
    s.remove_prefix(n);
  }
  while (size_t n = JsSpaceLength(s, true)) {
    s.remove_suffix(n);
  }
  return s;
}

// Whether `hay` contains the ASCII-lowercased `needle`; an empty needle never matches (B1).
bool ContainsLowered(std::string_view hay, std::string_view needle) {
  if (needle.empty()) {
    return false;
  }
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char h, char n) {
           return h == absl::ascii_tolower(static_cast<unsigned char>(n));
         }) != hay.end();
}

bool LegacyApplies(std::string_view condition, const EvalContext& ctx) {
  if (condition.find('*') != std::string_view::npos) {
    return true;
  }
  if (ContainsLowered(condition, ctx.tool_name)) {
    return true;
  }
  if (!ctx.tool_server.empty() && condition.find(ctx.tool_server) != std::string_view::npos) {
    return true;
  }
  return std::any_of(ctx.scopes.begin(), ctx.scopes.end(), [&](const std::string& scope) {
    return ContainsLowered(condition, TrimJs(scope));
  });
}

// ---------------------------------------------------------------------------------------------
// Printing

// String literals print as JSON strings: the lexer reads the same escapes back.
void AppendQuoted(std::string_view s, std::string* out) { jsonrpc::AppendJsonString(s, out); }

bool IsName(std::string_view s) {
  return !s.empty() && IsIdentStart(s[0]) && std::all_of(s.begin(), s.end(), IsIdentChar);
}

void AppendNumber(const Number& n, std::string* out) {
  if (n.is_int) {
    absl::StrAppend(out, n.i);
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n.d);
  std::string_view text(buf, ec == std::errc() ? end - buf : 0);
  out->append(text);
  // Keep it a float when read back, so `1.0` does not become the integer 1 (and -0.0 stays).
  if (text.find_first_of(".e") == std::string_view::npos) {
    out->append(".0");
  }
}

void Print(const Program& p, uint32_t index, std::string* out) {
  const Node& n = p.nodes[index];
  auto join = [&](std::string_view sep) {
    for (uint32_t i = 0; i < n.count; ++i) {
      if (i > 0) {
        out->append(sep);
      }
      Print(p, p.children[n.first + i], out);
    }
  };
  switch (n.op) {
    case Op::kAlways:
      out->append("*");
      return;
    case Op::kNull:
      out->append("null");
      return;
    case Op::kBool:
      out->append(n.boolean ? "true" : "false");
      return;
    case Op::kNumber:
      AppendNumber(n.number, out);
      return;
    case Op::kString:
      AppendQuoted(p.Str(n.str_off, n.str_len), out);
      return;
    case Op::kList:
      out->push_back('[');
      join(", ");
      out->push_back(']');
      return;
    case Op::kPath: {
      constexpr std::string_view kRootNames[] = {"method",           "env",
                                                 "tool.name",        "tool.server",
                                                 "principal.tenant", "principal.user",
                                                 "principal.agent",  "principal.roles",
                                                 "principal.scopes", "args"};
      out->append(kRootNames[static_cast<size_t>(n.root)]);
      for (uint32_t i = 0; i < n.count; ++i) {
        const Segment& s = p.segments[n.first + i];
        if (s.is_index) {
          absl::StrAppend(out, "[", s.index, "]");
        } else if (std::string_view key = p.Str(s.key_off, s.key_len); IsName(key)) {
          absl::StrAppend(out, ".", Sv(key));
        } else {
          out->push_back('[');
          AppendQuoted(key, out);
          out->push_back(']');
        }
      }
      return;
    }
    case Op::kNot:
      out->push_back('!');
      Print(p, n.lhs, out);
      return;
    case Op::kAnd:
    case Op::kOr:
      out->push_back('(');
      join(n.op == Op::kAnd ? " && " : " || ");
      out->push_back(')');
      return;
    case Op::kMatches:
      out->push_back('(');
      Print(p, n.lhs, out);
      out->append(" matches ");
      AppendQuoted(p.Str(n.str_off, n.str_len), out);
      out->push_back(')');
      return;
    default:
      out->push_back('(');
      Print(p, n.lhs, out);
      absl::StrAppend(out, " ", Sv(OpText(n.op)), " ");
      Print(p, n.rhs, out);
      out->push_back(')');
      return;
  }
}

}  // namespace

absl::StatusOr<Condition> Condition::Compile(std::string_view source, std::string_view rule_id,
                                             ConditionLanguage language) {
  auto program = std::make_shared<Program>();
  program->language = language;
  program->rule_id = std::string(rule_id);
  if (language == ConditionLanguage::kLegacySubstring) {
    program->source = std::string(source);
    return Condition(std::move(program));
  }
  Compiler compiler(source, program.get());
  if (absl::Status st = compiler.Run(); !st.ok()) {
    return st;
  }
  return Condition(std::move(program));
}

bool Condition::Evaluate(const EvalContext& ctx) const {
  const Program& p = *program_;
  if (p.language == ConditionLanguage::kLegacySubstring) {
    return LegacyApplies(p.source, ctx);
  }
  Evaluator evaluator(p, ctx);
  return evaluator.Truthy(evaluator.Get(p.root));
}

std::string Condition::ToString() const {
  const Program& p = *program_;
  if (p.language == ConditionLanguage::kLegacySubstring) {
    return p.source;
  }
  std::string out;
  Print(p, p.root, &out);
  return out;
}

bool Condition::always_true() const {
  return program_->language == ConditionLanguage::kExpression &&
         program_->nodes[program_->root].op == Op::kAlways;
}

ConditionLanguage Condition::language() const { return program_->language; }

std::string_view Condition::rule_id() const { return program_->rule_id; }

}  // namespace mcpmw::policy
