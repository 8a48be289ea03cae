// The governance chain per message: one tools/call exchange (request through OnRequest, its
// response through OnResponse, then OnComplete handing the report over unrendered) under an
// empty bundle (the eleven stages with nothing to decide) and under the full bundle the
// end-to-end `mcpmw-governed` row uses (bench/governed_bundle.json), beside the baseline every
// governed message pays anyway: reading its envelope. BM_ReportRender is what the audit writer
// then spends, on its own thread, rendering the full bundle's report. BM_ChainFullBundle_LoadText
// is the full bundle on the message the end-to-end load generator sends (bench/load.cc: 200
// bytes of "<id>:" and a rotating alphanumeric run, echoed back), which wakes more detectors
// than prose does.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "bench/load_text.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/chain_factory.h"

namespace mcpmw {
namespace {

constexpr std::string_view kRequest =
    R"({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":)"
    R"({"text":"Please summarise the quarterly report for the board meeting on Thursday."}}})";
constexpr std::string_view kResponse =
    R"({"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"Please summarise )"
    R"(the quarterly report for the board meeting on Thursday."}],"isError":false}})";

std::shared_ptr<const policy::Bundle> LoadBundle(bool full) {
  std::string text = R"({"bundleVersion":"empty"})";
  if (full) {
    std::ifstream in(std::string(MCPMW_SOURCE_DIR) + "/bench/governed_bundle.json");
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  return *policy::ParseBundle(text);
}

// bench/load.cc's request for id 42 with 200 bytes of text, and bench/echo_server.cc's answer.
std::string LoadText() {
  std::string text;
  bench::AppendLoadText(42, 200, &text);
  return text;
}
std::string LoadRequest() {
  return R"({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo",)"
         R"("arguments":{"text":")" +
         LoadText() + R"("}}})";
}
std::string LoadResponse() {
  return R"({"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":")" + LoadText() +
         R"("}]}})";
}

// kRender: one exchange first, then the loop renders its report.
enum class Measure { kChain, kRender };

void RunExchange(benchmark::State& state, bool full, Measure measure = Measure::kChain,
                 std::string_view request_text = kRequest,
                 std::string_view response_text = kResponse) {
  SteadyClock clock;
  uint64_t sequence = 0;
  middleware::RateLimitState rate_state;
  telemetry::Metrics metrics;
  // The chain hands each report over unrendered: the audit producer packs it into its queue and
  // the writer renders it on its own thread. Pack each one into a buffer, as the producer does;
  // the rendering is timed separately (BM_ReportRender).
  std::string packed;
  middleware::ChainDeps deps{.session_id = "0123456789abcdef",
                             .sequence = &sequence,
                             .clock = &clock,
                             .rate_state = &rate_state,
                             .metrics = &metrics,
                             .report = [&](const middleware::ReportDraft& draft) {
                               packed.resize(draft.packed_size());
                               draft.PackInto(packed.data());
                             }};
  auto snapshot = *middleware::BuildChain(LoadBundle(full), deps);
  simdjson::padded_string request(request_text);
  simdjson::padded_string response(response_text);
  jsonrpc::EnvelopeReader reader;
  jsonrpc::Envelope req_env;
  jsonrpc::Envelope resp_env;
  middleware::Principal claimed;
  const bool render = measure == Measure::kRender;
  std::string rendered;
  for (auto _ : state) {
    if (render && !packed.empty()) {
      rendered.clear();
      middleware::RenderPackedReport(packed, &rendered);
      benchmark::DoNotOptimize(rendered.data());
      continue;
    }
    reader.Read(request, &req_env);
    middleware::MessageContext ctx;
    ctx.envelope = &req_env;
    ctx.payload = request;
    ctx.bundle = snapshot->bundle.get();
    ctx.claimed = &claimed;
    ctx.server_id = "bench";
    ctx.started = clock.Now();
    snapshot->chain.OnRequest(ctx);
    reader.Read(response, &resp_env);
    ctx.direction = middleware::Direction::kServerToClient;
    ctx.envelope = &resp_env;
    ctx.payload = response;
    ctx.rewritten.reset();
    snapshot->chain.OnResponse(ctx);
    snapshot->chain.OnComplete(ctx);
    benchmark::DoNotOptimize(ctx.outcome);
  }
  rendered.clear();
  middleware::RenderPackedReport(packed, &rendered);
  state.counters["report_B"] = static_cast<double>(rendered.size());
  state.counters["packed_B"] = static_cast<double>(packed.size());
}

void BM_EnvelopeOnly_Baseline(benchmark::State& state) {
  simdjson::padded_string request(kRequest);
  simdjson::padded_string response(kResponse);
  jsonrpc::EnvelopeReader reader;
  jsonrpc::Envelope env;
  for (auto _ : state) {
    reader.Read(request, &env);
    benchmark::DoNotOptimize(env.kind);
    reader.Read(response, &env);
    benchmark::DoNotOptimize(env.kind);
  }
}
BENCHMARK(BM_EnvelopeOnly_Baseline);

void BM_ChainEmptyBundle(benchmark::State& state) { RunExchange(state, false); }
BENCHMARK(BM_ChainEmptyBundle);

void BM_ChainFullBundle(benchmark::State& state) { RunExchange(state, true); }
BENCHMARK(BM_ChainFullBundle);

void BM_ChainFullBundle_LoadText(benchmark::State& state) {
  const std::string request = LoadRequest();
  const std::string response = LoadResponse();
  RunExchange(state, true, Measure::kChain, request, response);
}
BENCHMARK(BM_ChainFullBundle_LoadText);

void BM_ReportRender(benchmark::State& state) { RunExchange(state, true, Measure::kRender); }
BENCHMARK(BM_ReportRender);

}  // namespace
}  // namespace mcpmw

BENCHMARK_MAIN();
