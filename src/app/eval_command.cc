#include "src/app/eval_command.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/strings.h"
#include "src/eval/json_value.h"
#include "src/eval/pipeline.h"

namespace mcpmw::app {
namespace {

constexpr int kExitPassed = 0;
constexpr int kExitNotPassed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    "usage: mcpmw eval FILE [--json] (FILE is a prototype invocation document; - reads stdin)";

absl::StatusOr<std::string> ReadAll(std::string_view path) {
  const bool is_stdin = path == "-";
  std::FILE* f = is_stdin ? stdin : std::fopen(std::string(path).c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(std::strerror(errno));
  }
  std::string data;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    data.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int read_errno = errno;
  if (!is_stdin) {
    std::fclose(f);
  }
  if (failed) {
    return absl::DataLossError(std::strerror(read_errno));
  }
  return data;
}

void Print(std::FILE* f, std::string_view text) { std::fwrite(text.data(), 1, text.size(), f); }

void PrintSummary(const eval::JsonValue& report, const eval::Summary& s, std::FILE* out) {
  auto member = [&report](std::string_view object, std::string_view key) -> std::string {
    const eval::JsonValue* o = report.Find(object);
    const eval::JsonValue* v = o != nullptr ? o->Find(key) : nullptr;
    if (v == nullptr) {
      return "undefined";
    }
    if (v->is_bool()) {
      return v->as_bool() ? "true" : "false";
    }
    return v->is_number() ? eval::NumberToString(v->as_number()) : eval::StringifyJson(*v);
  };
  auto top = [&report](std::string_view key) -> std::string {
    const eval::JsonValue* v = report.Find(key);
    return v != nullptr && v->is_string() ? v->as_string() : "";
  };
  const std::string categories = s.categories.empty() ? "none" : absl::StrJoin(s.categories, ", ");
  Print(out, absl::StrCat("MCP Middleware Report\n",                                    //
                          "Invocation: ", top("invocationId"), "\n",                    //
                          "Trace: ", top("traceId"), "\n",                              //
                          "Final Status: ", top("finalStatus"), "\n",                   //
                          "Passed: ", s.passed ? "true" : "false", "\n",                //
                          "Errors: ", s.error_count, "\n",                              //
                          "Warnings: ", s.warning_count, "\n",                          //
                          "Categories: ", categories, "\n",                             //
                          "HTTP Status: ", member("response", "httpStatusCode"), "\n",  //
                          "Dispatched: ", member("response", "dispatched"), "\n",       //
                          "Cost USD: ", member("cost", "totalUsd"), "\n",               //
                          "Tokens: ", member("cost", "totalTokens"), "\n"));
}

}  // namespace

int RunEval(const std::vector<std::string_view>& args, std::FILE* out, std::FILE* err) {
  bool json = false;
  std::string_view path;
  bool have_path = false;
  for (std::string_view arg : args) {
    if (arg == "--json") {
      json = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      Print(err, absl::StrCat("mcpmw eval: unknown option `", Sv(arg), "`; ", Sv(kUsage), "\n"));
      return kExitUsage;
    } else if (have_path) {
      Print(err, absl::StrCat("mcpmw eval: one FILE at a time; ", Sv(kUsage), "\n"));
      return kExitUsage;
    } else {
      path = arg;
      have_path = true;
    }
  }
  if (!have_path) {
    Print(err, absl::StrCat("mcpmw eval: no FILE given; ", Sv(kUsage), "\n"));
    return kExitUsage;
  }
  const std::string_view shown = path == "-" ? std::string_view("<stdin>") : path;
  absl::StatusOr<std::string> text = ReadAll(path);
  if (!text.ok()) {
    Print(err,
          absl::StrCat("mcpmw eval: cannot read ", Sv(shown), ": ", text.status().message(), "\n"));
    return kExitUsage;
  }
  absl::StatusOr<eval::JsonValue> raw = eval::ParseJson(*text);
  if (!raw.ok()) {
    Print(err, absl::StrCat("mcpmw eval: ", Sv(shown),
                            " is not valid JSON: ", raw.status().message(), "\n"));
    return kExitUsage;
  }
  if (!raw->is_object()) {
    Print(err, absl::StrCat("mcpmw eval: ", Sv(shown),
                            " must hold one JSON object (a RawProxyInvocationV1 with envelope, "
                            "context, rules, pricing and usageSnapshot)\n"));
    return kExitUsage;
  }
  eval::PipelineResult result = eval::RunPipeline(*raw);
  if (json) {
    Print(out, eval::StringifyJson(result.report) + "\n");
  } else {
    PrintSummary(result.report, result.summary, out);
  }
  return result.summary.passed ? kExitPassed : kExitNotPassed;
}

}  // namespace mcpmw::app
