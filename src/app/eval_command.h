// mcpmw app: `mcpmw eval FILE [--json]`, the prototype's file mode (seed §7.3, §7.4).
#pragma once

#include <cstdio>
#include <string_view>
#include <vector>

namespace mcpmw::app {

// Runs the offline pipeline (src/eval/pipeline.h) on the RawProxyInvocationV1 document in FILE
// (`-` reads stdin). `args` are the words after `eval`: FILE and optionally `--json`, in either
// order. Prints the prototype's 12-line summary, or with --json the full
// MiddlewareExecutionReportV1 as one line of JSON, on `out`. Returns 0 when the report is
// served, 1 when it is blocked or errored, 2 for a usage error or a FILE that cannot be read, is
// not JSON, or is not a JSON object (one line on `err` saying which).
int RunEval(const std::vector<std::string_view>& args, std::FILE* out, std::FILE* err);

}  // namespace mcpmw::app
