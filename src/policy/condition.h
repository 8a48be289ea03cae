// mcpmw policy: rule conditions.
//
// Place in the message path: a bundle load compiles every rule's `conditionDsl` once into a
// Condition (ARCHITECTURE §5); the `policy` stage (§4) then calls Evaluate() per message with an
// EvalContext of views into the message and its principal. Compilation allocates and may fail;
// evaluation never fails, never throws and does not allocate on its common paths.
//
// Two languages (issue 3, item 3):
//
// kExpression, the bundle language. Grammar, loosest binding first:
//
//   condition  := ε | "*" | or                  empty / whitespace / "*" alone: always true
//   or         := and ( "||" and )*
//   and        := compare ( "&&" compare )*
//   compare    := unary [ cmp-op unary ]         comparisons do not chain: (a == b) == c
//   cmp-op     := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "contains"
//               | "startsWith" | "endsWith" | "matches" STRING
//   unary      := "!" unary | primary             so `!a == b` is `(!a) == b`
//   primary    := STRING | ["-"] NUMBER | "true" | "false" | "null"
//               | "[" [ or ( "," or )* ] "]" | path | "(" or ")"
//   path       := "method" | "env" | "tool.name" | "tool.server"
//               | "principal." ( "tenant" | "user" | "agent" | "roles" | "scopes" )
//               | "args" ( "." NAME | "[" INTEGER "]" | "[" STRING "]" )*
//
//   STRING: "…" or '…' with escapes \" \' \\ \/ \b \f \n \r \t \uXXXX (surrogate pairs joined).
//   NUMBER: JSON-like integer (int64) or float (finite double). NAME: [A-Za-z_][A-Za-z0-9_]*,
//   keywords allowed after a dot (`args.in`); other member names use `args["odd key"]`.
//
// Values are null, bool, number, string, list (a list literal, principal.roles/scopes, or a JSON
// array under args) and object (a JSON object under args). Semantics:
//   - `==`/`!=` compare type and value; numbers numerically (1 == 1.0), strings bytewise,
//     null == null. Lists and objects never equal anything. `!=` is exactly `!(a == b)`.
//   - `< <= > >=` order two numbers numerically or two strings by UTF-8 code units (= code point
//     order; JS's UTF-16 order differs only between U+E000–U+FFFF and astral characters, seed
//     §3.3). Any other pair of types is false.
//   - `a in b`: b a list → some element == a; b a string → a is a string and a substring of b
//     (the empty string is a substring of every string here: the needle is written by the rule
//     author, unlike legacy bug B1). Anything else is false. `b contains a` is `a in b`.
//   - `startsWith`/`endsWith`: both strings, else false. `s matches "re"`: an RE2 pattern,
//     compiled once; partial match, so anchor with ^ and $. A non-string left side is false.
//   - `!`, `&&`, `||` work on truthiness (short-circuit): true, a non-empty string, a non-zero
//     number, a non-empty list or object are truthy; false, null, "", 0, empty lists are not.
//     The whole condition holds when its value is truthy, so a bare path tests presence.
//   - `args…` reads the tool arguments; a missing member, an out-of-range index, a step into a
//     non-container, or no arguments at all (EvalContext::has_args false) all read as null.
//
// kLegacySubstring, the prototype's non-language (seed §6.3 step 4), kept for `mcpmw eval` on
// prototype documents: the rule applies iff the condition text contains `*`, or contains, as a
// plain case-sensitive substring, one of these needles: the lowercased tool name, the server
// id, any normalized scope. Unlike the prototype an empty needle never matches (bug B1 fixed),
// so an empty condition matches nothing. Needles are derived from the EvalContext without
// allocating: tool_name is lowercased (ASCII only; the prototype's full Unicode toLowerCase is
// not reproduced for non-ASCII letters), each scope is trimmed of ECMAScript whitespace and
// lowercased the same way (seed §6.1 step 4; a scope that trims to empty is dropped). The
// server id is ctx.tool_server verbatim: to reproduce the prototype exactly (bug B2) the caller
// sets it to `requestPayload.serverId` when that is a string and to "" otherwise.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "simdjson.h"

namespace mcpmw::policy {

enum class ConditionLanguage { kExpression, kLegacySubstring };

// What a condition reads: views that must stay valid for the duration of Evaluate(). The struct
// itself is cheap to build per message and owns nothing.
struct EvalContext {
  std::string_view method;
  std::string_view tool_name;
  // The tool's server id. In kLegacySubstring mode, the prototype's needle (see the banner).
  std::string_view tool_server;
  std::string_view tenant;
  std::string_view user;
  std::string_view agent;
  std::string_view env;
  std::span<const std::string> roles;
  std::span<const std::string> scopes;
  // The tool arguments, read only when has_args is true. "No arguments" is has_args == false
  // (args may then be default-constructed and is never touched); every args path is then null.
  // Arguments that are not an object make every args.<member> path null too.
  simdjson::dom::element args;
  bool has_args = false;
};

namespace internal {
struct Program;
}  // namespace internal

// A compiled condition. Immutable after Compile(); copies share the compiled program, and any
// number of threads may call Evaluate() on the same (or copied) Condition concurrently.
class Condition {
 public:
  // Compiles `source` once. Errors are InvalidArgument and name the rule and the 1-based column
  // (counted in characters; "line L, column C" when the source spans lines), e.g.
  //   rule "deny-delete": column 17: expected a value after `==`, found `)`
  // kLegacySubstring never fails.
  static absl::StatusOr<Condition> Compile(std::string_view source, std::string_view rule_id,
                                           ConditionLanguage language);

  // True when the rule applies to `ctx`. Never fails; allocation-free except for RE2's lazily
  // built (then cached) matching state on a pattern's first uses.
  bool Evaluate(const EvalContext& ctx) const;

  // A canonical source text: fully parenthesized, one spelling per construct. For an expression
  // it compiles back to a Condition that evaluates identically and prints the same text; for a
  // legacy condition it is the source unchanged.
  std::string ToString() const;

  // True for the empty and `*` expression conditions ("all").
  bool always_true() const;
  ConditionLanguage language() const;
  // The rule id given to Compile(); valid as long as this Condition or a copy lives.
  std::string_view rule_id() const;

 private:
  explicit Condition(std::shared_ptr<const internal::Program> program)
      : program_(std::move(program)) {}

  std::shared_ptr<const internal::Program> program_;
};

}  // namespace mcpmw::policy
