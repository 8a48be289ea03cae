// Framer throughput against a naive splitter, on a realistic stream of MCP traffic.
//
// The input is one buffer of alternating tools/call requests (~200 B) and their results (~200 B
// or ~4 KiB, the benchmark's argument), as a client or server would send them. Each benchmark
// frames the whole buffer once per iteration and reports bytes/s and frames/s.
//
//   BM_Framer_Ndjson                     ours, the buffer handed over whole
//   BM_Framer_NdjsonStreamed             ours, the buffer arriving in 4 KiB reads (partial lines)
//   BM_Framer_NaiveBaseline              byte-at-a-time splitter copying each line to a string
//   BM_Framer_ContentLength              ours, LSP-style headers
//   BM_Framer_ContentLengthNaiveBaseline header lines read byte by byte, body copied out
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/framing/framer.h"

namespace mcpmw::framing {
namespace {

constexpr size_t kMaxMessageBytes = size_t{4} * 1024 * 1024;
constexpr size_t kStreamBytes = size_t{512} * 1024;  // framed per iteration: thousands of messages
constexpr size_t kReadBytes = 4096;                  // a pipe read as an unlucky proxy would see it

std::string Request(int id) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf),
                        R"({"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":)"
                        R"("search_files","arguments":{"path":"/home/user/project/src",)"
                        R"("pattern":"TODO|FIXME","max_results":50},"_meta":)"
                        R"({"progressToken":"tok-%d"}}})",
                        id, id);
  return {buf, static_cast<size_t>(n)};
}

// A tools/call result of about `bytes` bytes; the text holds escaped newlines and quotes like
// real tool output does.
std::string Result(int id, size_t bytes) {
  char head[128];
  int n =
      std::snprintf(head, sizeof(head),
                    R"({"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":")", id);
  std::string out(head, n);
  static constexpr std::string_view kLine = R"(src/app/main.cc:42: // TODO: \"flush\" on exit\n)";
  constexpr std::string_view kTail = R"("}],"isError":false}})";
  while (out.size() + kLine.size() + kTail.size() <= bytes) {
    out.append(kLine);
  }
  while (out.size() + kTail.size() < bytes) {
    out.push_back('.');
  }
  out.append(kTail);
  return out;
}

// Payloads of about kStreamBytes: request, result, request, result...
std::string Stream(size_t result_bytes, Framing framing) {
  std::string out;
  for (int id = 1; out.size() < kStreamBytes; ++id) {
    AppendFramed(framing, Request(id), &out);
    AppendFramed(framing, Result(id, result_bytes), &out);
  }
  return out;
}

void SetCounters(benchmark::State& state, size_t stream_bytes, size_t frames) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * frames));
  state.SetLabel(state.range(0) > 1024 ? "results ~4 KiB" : "results ~200 B");
}

// Frames `data` as one caller loop does: handle, drop `consumed`, call again.
size_t FrameAll(Framer* framer, std::string_view data) {
  size_t frames = 0;
  while (true) {
    FrameResult r = framer->Next(data);
    data.remove_prefix(r.consumed);
    if (r.status == FrameStatus::kFrame) {
      ++frames;
      benchmark::DoNotOptimize(r.payload.data());
    } else if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
      return frames;
    }
  }
}

// Benchmark names follow the house BM_<Unit>_<Variant> convention, not function naming.
// NOLINTBEGIN(readability-identifier-naming)
void BM_Framer_Ndjson(benchmark::State& state) {
  const std::string stream = Stream(state.range(0), Framing::kNdjson);
  size_t frames = 0;
  for (auto _ : state) {
    Framer framer(kMaxMessageBytes);
    frames = FrameAll(&framer, stream);
  }
  SetCounters(state, stream.size(), frames);
}

// The stream arrives kReadBytes at a time, so ~4 KiB results straddle reads and the framer's
// resume-the-scan path is exercised. No bytes are copied: the window over the stream just grows.
void BM_Framer_NdjsonStreamed(benchmark::State& state) {
  const std::string stream = Stream(state.range(0), Framing::kNdjson);
  const std::string_view all = stream;
  size_t frames = 0;
  for (auto _ : state) {
    Framer framer(kMaxMessageBytes);
    frames = 0;
    size_t begin = 0;
    for (size_t end = std::min(kReadBytes, all.size()); begin < all.size();
         end = std::min(end + kReadBytes, all.size())) {
      while (true) {
        FrameResult r = framer.Next(all.substr(begin, end - begin));
        begin += r.consumed;
        if (r.status == FrameStatus::kFrame) {
          ++frames;
          benchmark::DoNotOptimize(r.payload.data());
        } else if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
          break;
        }
      }
      if (end == all.size()) {
        break;
      }
    }
  }
  SetCounters(state, stream.size(), frames);
}

// What a first prototype does: one byte at a time into a std::string, a copy per line.
void BM_Framer_NaiveBaseline(benchmark::State& state) {
  const std::string stream = Stream(state.range(0), Framing::kNdjson);
  size_t frames = 0;
  for (auto _ : state) {
    frames = 0;
    std::string line;
    for (char c : stream) {
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (!line.empty()) {
        ++frames;
        benchmark::DoNotOptimize(line.data());
        benchmark::ClobberMemory();
      }
      line.clear();
    }
  }
  SetCounters(state, stream.size(), frames);
}

void BM_Framer_ContentLength(benchmark::State& state) {
  const std::string stream = Stream(state.range(0), Framing::kContentLength);
  size_t frames = 0;
  for (auto _ : state) {
    Framer framer(kMaxMessageBytes);
    frames = FrameAll(&framer, stream);
  }
  SetCounters(state, stream.size(), frames);
}

// Header lines are read byte by byte into a string and parsed with strtoul; the body is copied.
void BM_Framer_ContentLengthNaiveBaseline(benchmark::State& state) {
  const std::string stream = Stream(state.range(0), Framing::kContentLength);
  size_t frames = 0;
  for (auto _ : state) {
    frames = 0;
    size_t pos = 0;
    size_t length = 0;
    std::string header;
    std::string body;
    while (pos < stream.size()) {
      char c = stream[pos++];
      if (c != '\n') {
        header.push_back(c);
        continue;
      }
      if (!header.empty() && header.back() == '\r') {
        header.pop_back();
      }
      if (!header.empty()) {
        constexpr std::string_view kName = "Content-Length:";
        if (header.compare(0, kName.size(), kName) == 0) {
          length = std::strtoul(header.c_str() + kName.size(), nullptr, 10);
        }
        header.clear();
        continue;
      }
      body.assign(stream, pos, length);  // blank line: the body follows
      pos += length;
      ++frames;
      benchmark::DoNotOptimize(body.data());
      benchmark::ClobberMemory();
    }
  }
  SetCounters(state, stream.size(), frames);
}

BENCHMARK(BM_Framer_Ndjson)->Arg(200)->Arg(4096);
BENCHMARK(BM_Framer_NdjsonStreamed)->Arg(200)->Arg(4096);
BENCHMARK(BM_Framer_NaiveBaseline)->Arg(200)->Arg(4096);
BENCHMARK(BM_Framer_ContentLength)->Arg(200)->Arg(4096);
BENCHMARK(BM_Framer_ContentLengthNaiveBaseline)->Arg(200)->Arg(4096);

// NOLINTEND(readability-identifier-naming)

}  // namespace
}  // namespace mcpmw::framing

BENCHMARK_MAIN();
