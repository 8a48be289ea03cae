// EnvelopeReader (one On-Demand pass) against a full simdjson DOM parse reading the same fields.
//
// Three messages, the benchmark's argument:
//   0 request         a tools/call request with arguments and a progress token (~300 B)
//   1 response        a small tools/call result (~200 B)
//   2 large result    a tools/list result with 60 tools and their input schemas (~40 KiB)
// The DOM baseline materialises the whole document, then looks up exactly what the envelope
// reader extracts: jsonrpc, id, method, params.name, params.uri, params._meta.progressToken, and
// whether result or error is present.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "simdjson.h"
#include "src/jsonrpc/envelope.h"

namespace mcpmw::jsonrpc {
namespace {

constexpr std::string_view kRequest =
    R"({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_files",)"
    R"("arguments":{"path":"/home/user/project/src","pattern":"TODO|FIXME","max_results":50,)"
    R"("include":["*.cc","*.h"]},"_meta":{"progressToken":"tok-42"}}})";

constexpr std::string_view kResponse =
    R"({"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"src/app/main.cc:42:)"
    R"( // TODO: flush on exit\nsrc/io/ring.cc:7: // FIXME: SQPOLL\n"}],"isError":false}})";

std::string LargeResult() {
  std::string out = R"({"jsonrpc":"2.0","id":7,"result":{"tools":[)";
  for (int i = 0; i < 60; ++i) {
    char tool[1024];
    int n = std::snprintf(
        tool, sizeof(tool),
        R"(%s{"name":"tool_%d","title":"Tool number %d","description":"Reads files under a )"
        R"(directory and returns the lines that match a pattern, with their line numbers.",)"
        R"("inputSchema":{"type":"object","properties":{"path":{"type":"string","description":)"
        R"("Directory to search"},"pattern":{"type":"string","description":"Regular )"
        R"(expression"},"max_results":{"type":"integer","minimum":1,"maximum":1000},)"
        R"("include":{"type":"array","items":{"type":"string"}}},"required":["path","pattern"]},)"
        R"("annotations":{"readOnlyHint":true,"openWorldHint":false}})",
        i == 0 ? "" : ",", i, i);
    out.append(tool, n);
  }
  out.append(R"(],"nextCursor":"page-2"}})");
  return out;
}

simdjson::padded_string Input(int64_t which) {
  switch (which) {
    case 0:
      return {kRequest};
    case 1:
      return {kResponse};
    default:
      return {LargeResult()};
  }
}

std::string_view Label(int64_t which) {
  switch (which) {
    case 0:
      return "request";
    case 1:
      return "response";
    default:
      return "large result";
  }
}

MessageKind ExpectedKind(int64_t which) {
  return which == 0 ? MessageKind::kRequest : MessageKind::kResponse;
}

void SetCounters(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(std::string(Label(state.range(0))));
}

// Benchmark names follow the house BM_<Unit>_<Variant> convention, not function naming.
// NOLINTBEGIN(readability-identifier-naming)
void BM_Envelope_OnDemand(benchmark::State& state) {
  const simdjson::padded_string input = Input(state.range(0));
  const std::string_view payload(input.data(), input.size());
  EnvelopeReader reader;
  Envelope envelope;
  reader.Read(payload, &envelope);
  if (envelope.kind != ExpectedKind(state.range(0))) {
    state.SkipWithError("the envelope reader misclassified the input");
    return;
  }
  for (auto _ : state) {
    reader.Read(payload, &envelope);
    benchmark::DoNotOptimize(envelope.kind);
    benchmark::DoNotOptimize(envelope.id.data());
    benchmark::DoNotOptimize(envelope.tool_name.data());
  }
  SetCounters(state, input.size());
}

// The fields a router needs, read from a DOM the way a straightforward implementation would.
struct DomEnvelope {
  std::string_view version;
  int64_t int_id = 0;
  std::string_view string_id;
  std::string_view method;
  std::string_view tool_name;
  std::string_view resource_uri;
  std::string_view progress_token;
  bool has_result = false;
  bool has_error = false;
};

// An absent or non-string member reads as empty, as in the envelope.
void ReadOptionalString(simdjson::simdjson_result<simdjson::dom::element> member,
                        std::string_view* out) {
  if (member.get_string().get(*out) != simdjson::SUCCESS) {
    *out = {};
  }
}

bool ReadDom(simdjson::dom::parser& parser, const simdjson::padded_string& input,
             DomEnvelope* out) {
  simdjson::dom::object obj;
  if (parser.parse(input).get_object().get(obj) != simdjson::SUCCESS) {
    return false;
  }
  *out = {};
  if (obj["jsonrpc"].get_string().get(out->version) != simdjson::SUCCESS) {
    return false;
  }
  simdjson::dom::element id;
  if (obj["id"].get(id) == simdjson::SUCCESS) {
    if (id.is_int64()) {
      out->int_id = id.get_int64().value_unsafe();
    } else if (id.get_string().get(out->string_id) != simdjson::SUCCESS) {
      return false;
    }
  }
  ReadOptionalString(obj["method"], &out->method);
  simdjson::dom::object params;
  if (obj["params"].get_object().get(params) == simdjson::SUCCESS) {
    ReadOptionalString(params["name"], &out->tool_name);
    ReadOptionalString(params["uri"], &out->resource_uri);
    ReadOptionalString(params["_meta"]["progressToken"], &out->progress_token);
  }
  out->has_result = obj["result"].error() == simdjson::SUCCESS;
  out->has_error = obj["error"].error() == simdjson::SUCCESS;
  return true;
}

void BM_Envelope_DomBaseline(benchmark::State& state) {
  const simdjson::padded_string input = Input(state.range(0));
  simdjson::dom::parser parser;
  DomEnvelope envelope;
  if (!ReadDom(parser, input, &envelope) ||
      envelope.has_result != (ExpectedKind(state.range(0)) == MessageKind::kResponse)) {
    state.SkipWithError("the DOM baseline misread the input");
    return;
  }
  for (auto _ : state) {
    bool ok = ReadDom(parser, input, &envelope);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(envelope.int_id);
    benchmark::DoNotOptimize(envelope.tool_name.data());
  }
  SetCounters(state, input.size());
}

BENCHMARK(BM_Envelope_OnDemand)->DenseRange(0, 2);
BENCHMARK(BM_Envelope_DomBaseline)->DenseRange(0, 2);

// NOLINTEND(readability-identifier-naming)

}  // namespace
}  // namespace mcpmw::jsonrpc

BENCHMARK_MAIN();
