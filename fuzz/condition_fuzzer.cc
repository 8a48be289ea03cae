// Fuzz target for policy::Condition.
//
// The input is a condition source. Compiling it in either language must not crash; an
// expression error must be InvalidArgument naming the rule. When an expression compiles, it is
// evaluated against two fixed contexts (with and without tool arguments), and its canonical
// form must round-trip: ToString() compiles again, prints the same text, and evaluates the same
// on both contexts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/policy/condition.h"

namespace {

using mcpmw::policy::Condition;
using mcpmw::policy::ConditionLanguage;
using mcpmw::policy::EvalContext;

[[noreturn]] void Fail(const char* what, std::string_view input, std::string_view detail = {}) {
  std::fprintf(stderr, "condition_fuzzer: %s\ninput (%zu bytes): %.*s\ndetail: %.*s\n", what,
               input.size(), static_cast<int>(std::min<size_t>(input.size(), 400)), input.data(),
               static_cast<int>(std::min<size_t>(detail.size(), 400)), detail.data());
  __builtin_trap();
}

struct Contexts {
  simdjson::dom::parser parser;
  simdjson::padded_string json{std::string_view(
      R"({"path":"/etc/passwd","recursive":true,"count":3,"ratio":0.5,"tags":["a","b",7,null],)"
      R"("nested":{"list":[{"name":"n0"},{"name":"n1"}]},"odd key":"v","empty":"","zero":0,)"
      R"("big":18446744073709551615,"neg":-9223372036854775808,"none":[],"blank":{}})")};
  std::vector<std::string> roles = {"admin", "dev", ""};
  std::vector<std::string> scopes = {"tools:invoke", " Files:Write ", "scope:read"};
  EvalContext with_args;
  EvalContext without_args;

  Contexts() {
    simdjson::dom::element args;
    if (parser.parse(json).get(args) != simdjson::SUCCESS) {
      __builtin_trap();
    }
    with_args = EvalContext{.method = "tools/call",
                            .tool_name = "file.delete",
                            .tool_server = "fs",
                            .tenant = "acme",
                            .user = "alice",
                            .agent = "claude-code",
                            .env = "prod",
                            .roles = roles,
                            .scopes = scopes,
                            .args = args,
                            .has_args = true};
    without_args = with_args;
    without_args.args = simdjson::dom::element();
    without_args.has_args = false;
    without_args.tool_name = "";
    without_args.tool_server = "";
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* contexts = new Contexts();
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<Condition> legacy =
      Condition::Compile(input, "f", ConditionLanguage::kLegacySubstring);
  if (!legacy.ok()) {
    Fail("legacy compile failed", input, legacy.status().ToString());
  }
  legacy->Evaluate(contexts->with_args);
  legacy->Evaluate(contexts->without_args);

  absl::StatusOr<Condition> c = Condition::Compile(input, "f", ConditionLanguage::kExpression);
  if (!c.ok()) {
    if (c.status().code() != absl::StatusCode::kInvalidArgument ||
        !mcpmw::Sv(c.status().message()).starts_with("rule \"f\": ")) {
      Fail("error is not InvalidArgument naming the rule", input, c.status().ToString());
    }
    return 0;
  }
  const bool with = c->Evaluate(contexts->with_args);
  const bool without = c->Evaluate(contexts->without_args);

  const std::string printed = c->ToString();
  absl::StatusOr<Condition> again =
      Condition::Compile(printed, "f", ConditionLanguage::kExpression);
  if (!again.ok()) {
    Fail("canonical form does not compile", input, again.status().ToString());
  }
  if (again->ToString() != printed) {
    Fail("canonical form does not print itself", input, printed);
  }
  if (again->Evaluate(contexts->with_args) != with ||
      again->Evaluate(contexts->without_args) != without) {
    Fail("canonical form evaluates differently", input, printed);
  }
  return 0;
}
