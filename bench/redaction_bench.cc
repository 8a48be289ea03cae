// Redaction throughput: the hand-written detectors against a naive regex baseline, and the JSON
// rewriter on a tools/call result.
//
// The text is a realistic ~64 KiB tool result (search hits, log lines, a config excerpt) with a
// handful of PII and key hits. Each benchmark redacts the whole text once per iteration and
// reports bytes/s (MB/s).
//
//   BM_Redaction_Detectors             DetectorSet with every built-in detector, Redact()
//   BM_Redaction_DetectorsNoHits       the same on text with no hit (the common case)
//   BM_Redaction_NaiveRegexBaseline    one RE2 alternation per kind, RE2::GlobalReplace each in
//                                      turn (no Luhn, mod-97 or SSN range validation, so it
//                                      also does less work than ours)
//   BM_Redaction_Json                  JsonRedactor (path rules + detectors) on the text as a
//                                      tools/call result: content[].text, structuredContent
//   BM_Redaction_JsonUnchanged         the same rewriter on a result without hits (no rewrite)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "re2/re2.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/redaction/detectors.h"
#include "src/middleware/redaction/json_redactor.h"

namespace mcpmw::redaction {
namespace {

constexpr size_t kTextBytes = size_t{64} * 1024;

// ~64 KiB of tool output; `hits` adds a PII or key line every so often.
std::string ToolText(bool hits) {
  static constexpr std::string_view kLines[] = {
      "src/app/main.cc:42: // TODO: flush the writer on exit before closing fd 3\n",
      "2024-05-01T10:00:01.123Z INFO request id=7f3a2c latency=12ms status=200 path=/v1/items\n",
      "  - name: build-and-test\n    runs-on: ubuntu-22.04\n    timeout-minutes: 30\n",
      "Result 17: \"How to configure retries\" (score 0.8731) https://docs.example.com/retry\n",
      "| 2024-04-30 | order 1700000000000 | shipped | EUR 129.99 | warehouse B-12 |\n",
  };
  static constexpr std::string_view kHits[] = {
      "customer: jane.doe@corp.example, phone +1 415 555 0100\n",
      "card on file 4111 1111 1111 1111 exp 12/27\n",
      "ssn 123-45-6789 verified\n",
      "refund to DE89 3704 0044 0532 0130 00\n",
      "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543\n",
      "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
  };
  std::string out;
  size_t i = 0;
  size_t h = 0;
  while (out.size() < kTextBytes) {
    if (hits && i % 97 == 50) {
      out.append(kHits[h++ % std::size(kHits)]);
    } else {
      out.append(kLines[i % std::size(kLines)]);
    }
    ++i;
  }
  return out;
}

std::string ToolResultJson(const std::string& text) {
  std::string out = R"({"content":[{"type":"text","text":)";
  jsonrpc::AppendJsonString(text, &out);
  out.append(R"(}],"structuredContent":{"customer":{"name":"Jane","email":"jane@corp.example",)"
             R"("internalNotes":"vip"},"total":129.99,"items":[1,2,3]},"isError":false})");
  return out;
}

const DetectorSet& Builtins() {
  static const DetectorSet* set = new DetectorSet(*DetectorSet::Create(BuiltinDetectors()));
  return *set;
}

// Benchmark names follow the house BM_<Unit>_<Variant> convention, not function naming.
// NOLINTBEGIN(readability-identifier-naming)
void BM_Redaction_Detectors(benchmark::State& state) {
  const std::string text = ToolText(true);
  const DetectorSet& set = Builtins();
  std::string out;
  std::vector<Match> matches;
  for (auto _ : state) {
    matches.clear();
    bool changed = set.Redact(text, &out, &matches);
    benchmark::DoNotOptimize(changed);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["matches"] = static_cast<double>(matches.size());
}
BENCHMARK(BM_Redaction_Detectors);

void BM_Redaction_DetectorsNoHits(benchmark::State& state) {
  const std::string text = ToolText(false);
  const DetectorSet& set = Builtins();
  std::string out;
  for (auto _ : state) {
    bool changed = set.Redact(text, &out, nullptr);
    benchmark::DoNotOptimize(changed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Redaction_DetectorsNoHits);

void BM_Redaction_NaiveRegexBaseline(benchmark::State& state) {
  const std::string text = ToolText(true);
  struct Kind {
    const char* pattern;
    const char* replacement;
  };
  static constexpr Kind kKinds[] = {
      {R"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY-----)",
       "[PRIVATE_KEY_REDACTED]"},
      {R"((?i:bearer)[ \t]+[A-Za-z0-9._~+/-]{8,}=*|\beyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{4,}\.)"
       R"([A-Za-z0-9_-]*)",
       "[TOKEN_REDACTED]"},
      {R"(\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|\bAIza[A-Za-z0-9_-]{35}|\bgh[pousr]_[A-Za-z0-9]{36}\b|)"
       R"(\bxox[abprs]-[A-Za-z0-9-]{10,}|\b[sr]k_live_[A-Za-z0-9]{16,})",
       "[CLOUD_KEY_REDACTED]"},
      {R"([A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63})", "[EMAIL_REDACTED]"},
      {R"(\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b)", "[IBAN_REDACTED]"},
      {R"(\b[2-6]\d(?:[ -]?\d){11,17}\b)", "[CARD_REDACTED]"},
      {R"(\b\d{3}-\d{2}-\d{4}\b)", "[SSN_REDACTED]"},
  };
  std::vector<std::unique_ptr<RE2>> res;
  for (const Kind& k : kKinds) {
    res.push_back(std::make_unique<RE2>(k.pattern));
    if (!res.back()->ok()) {
      state.SkipWithError(res.back()->error().c_str());
      return;
    }
  }
  int replaced = 0;
  for (auto _ : state) {
    std::string out = text;
    replaced = 0;
    for (size_t k = 0; k < res.size(); ++k) {
      replaced += RE2::GlobalReplace(&out, *res[k], kKinds[k].replacement);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["matches"] = replaced;
}
BENCHMARK(BM_Redaction_NaiveRegexBaseline);

JsonRedactor MakeJsonRedactor() {
  return *JsonRedactor::Create({{"internal", "$.structuredContent..internalNotes", PathRule::kDrop},
                                {"mail", "$.structuredContent.customer.email", PathRule::kHash}},
                               Builtins(), "bench-salt");
}

void BM_Redaction_Json(benchmark::State& state) {
  const std::string json = ToolResultJson(ToolText(true));
  const JsonRedactor redactor = MakeJsonRedactor();
  std::vector<RedactionEvent> events;
  for (auto _ : state) {
    events.clear();
    absl::StatusOr<std::optional<std::string>> out = redactor.Redact(json, &events);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
  state.counters["events"] = static_cast<double>(events.size());
}
BENCHMARK(BM_Redaction_Json);

void BM_Redaction_JsonUnchanged(benchmark::State& state) {
  // No hits anywhere, not even in structuredContent.
  std::string json = R"({"content":[{"type":"text","text":)";
  jsonrpc::AppendJsonString(ToolText(false), &json);
  json.append(R"(}],"isError":false})");
  const JsonRedactor redactor = MakeJsonRedactor();
  for (auto _ : state) {
    absl::StatusOr<std::optional<std::string>> out = redactor.Redact(json, nullptr);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}
BENCHMARK(BM_Redaction_JsonUnchanged);
// NOLINTEND(readability-identifier-naming)

}  // namespace
}  // namespace mcpmw::redaction

BENCHMARK_MAIN();
