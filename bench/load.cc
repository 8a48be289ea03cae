// mcpmw-load: closed-loop load generator for stdio MCP servers and the proxies in front of them.
//
//   mcpmw-load [--window W] [--messages N] [--warmup N] [--payload-bytes B] [--json]
//              -- CMD ARGS...
//
// Spawns CMD with pipes on its stdin and stdout, sends initialize and waits for its reply, sends
// notifications/initialized, then keeps exactly W tools/call requests in flight:
//   {"jsonrpc":"2.0","id":<n>,"method":"tools/call","params":{"name":"echo",
//    "arguments":{"text":"<B bytes>"}}}
// Every response is checked: its id must be outstanding and its result's content[0].text must be
// the text sent with that id (each id gets a distinct text). The first mismatch, an error reply,
// or a target that stalls for kStallSeconds ends the run with exit status 1. Round trips of the
// N measured requests (after the warmup ones) are timed with a steady clock; the report gives
// msgs/s over the measured part and p50/p99/p999 in µs. --json prints one JSON object on one
// line instead. At the end the target's stdin is closed, its stdout drained and the target
// reaped; a target that does not exit cleanly also makes the exit status 1.
//
// The report also gives the CPU time (user + system) that the whole run cost per request: this
// generator's own, and that of the target and every descendant it reaped (getrusage
// RUSAGE_SELF + RUSAGE_CHILDREN, read after the target is reaped), divided by every request sent,
// warmup included. On a machine with few cores, where the generator, the proxy and the server
// share CPUs, it says what each configuration costs apart from how the scheduler placed it.
// Kernel threads (page writeback, for one) are not in it.
//
// One thread: reads block, the write side of the target's stdin is non-blocking and only polled
// for when the pipe is full. Responses that arrive in one read release their window slots
// together and the replacement requests leave in one write, so at W=1 a round trip costs the
// generator one read and one write.
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_json.h"
#include "bench/load_text.h"
#include "simdjson.h"

namespace mcpmw::bench {
namespace {

namespace od = simdjson::ondemand;

constexpr size_t kInitialReadCapacity = 1 << 20;
constexpr int kStallSeconds = 10;
constexpr int kExitWaitSeconds = 10;

struct Options {
  uint32_t window = 1;
  uint64_t messages = 10000;
  uint64_t warmup = 0;
  bool warmup_set = false;
  size_t payload_bytes = 200;
  bool json = false;
  char** command = nullptr;  // null-terminated, from argv
};

void Usage() {
  std::fprintf(stderr,
               "usage: mcpmw-load [--window W] [--messages N] [--warmup N] [--payload-bytes B] "
               "[--json] -- CMD ARGS...\n");
}

bool ParseUint(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
    return false;
  }
  *out = v;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* opt) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 >= argc) {
        return false;
      }
      opt->command = argv + i + 1;
      return true;
    }
    if (arg == "--json") {
      opt->json = true;
      continue;
    }
    std::string_view name = arg;
    const char* option = argv[i];
    const char* value = nullptr;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = argv[i] + eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    uint64_t v = 0;
    if (value == nullptr || !ParseUint(value, &v)) {
      std::fprintf(stderr, "mcpmw-load: %s needs a non-negative integer\n", option);
      return false;
    }
    if (name == "--window" && v >= 1 && v <= 1'000'000) {
      opt->window = static_cast<uint32_t>(v);
    } else if (name == "--messages" && v >= 1) {
      opt->messages = v;
    } else if (name == "--warmup") {
      opt->warmup = v;
      opt->warmup_set = true;
    } else if (name == "--payload-bytes" && v <= (64u << 20)) {
      opt->payload_bytes = v;
    } else {
      std::fprintf(stderr, "mcpmw-load: bad option %.*s\n", static_cast<int>(arg.size()),
                   arg.data());
      return false;
    }
  }
  return false;
}

// strerror(3) is not thread-safe and the stall watchdog runs beside the main thread.
std::string ErrnoText(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof(buf));  // the GNU variant: returns the text
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What one response line said. Views into the line; valid until the next line is parsed.
struct Response {
  bool has_id = false;
  bool id_is_uint = false;
  uint64_t id = 0;
  bool has_result = false;
  bool has_error = false;
  bool has_method = false;
  std::string_view text;  // result.content[0].text, raw token (with quotes)
};

bool ReadResult(od::value value, Response* out) {
  return ForEachMember(value, [out](std::string_view key, od::value v) {
    if (key != "content") {
      return true;
    }
    od::array content;
    if (v.get_array().get(content) != simdjson::SUCCESS) {
      return false;
    }
    for (auto element : content) {
      od::object item;
      od::value text;
      if (element.get_object().get(item) != simdjson::SUCCESS ||
          item.find_field_unordered("text").get(text) != simdjson::SUCCESS) {
        return false;
      }
      out->text = TrimRight(text.raw_json_token());
      break;  // only the first item matters
    }
    return true;
  });
}

// `line` must be followed by SIMDJSON_PADDING readable bytes.
bool ParseResponse(od::parser& parser, std::string_view line, Response* out) {
  return ForEachLineMember(parser, line, [out](std::string_view key, od::value v) {
    if (key == "id") {
      out->has_id = !v.is_null();
      out->id_is_uint = v.get_uint64().get(out->id) == simdjson::SUCCESS;
    } else if (key == "result") {
      out->has_result = true;
      return ReadResult(v, out);
    } else if (key == "error") {
      out->has_error = true;
    } else if (key == "method") {
      out->has_method = true;
    }
    return true;
  });
}

class LoadRun {
 public:
  explicit LoadRun(const Options& opt)
      : opt_(opt),
        total_(opt.warmup + opt.messages),
        read_capacity_(kInitialReadCapacity),
        read_buf_(new char[read_capacity_ + simdjson::SIMDJSON_PADDING]()),
        send_ns_(total_ + 1, 0) {
    rtt_ns_.reserve(opt.messages);
  }

  int Run();

 private:
  // Reports the first problem with the target and ends the process with status 1.
  [[noreturn]] void Fail(std::string_view what, std::string_view line = {});
  void Spawn();
  void AppendRequest(uint64_t id);
  // Writes what it can of the pending output; false while some is left (the pipe is full).
  bool Flush();
  // Flushes everything, reading (and handling) responses meanwhile so neither side can block
  // the other.
  void FlushAll();
  // One blocking read; handles every complete line it completes and returns how many
  // tools/call responses they held.
  uint64_t ReadAndHandle();
  void HandleLine(std::string_view line, int64_t now);
  void Handshake();
  void Finish();
  void Report(double total_s);

  const Options& opt_;
  const uint64_t total_;
  pid_t pid_ = -1;
  int to_target_ = -1;
  int from_target_ = -1;

  size_t read_capacity_;
  std::unique_ptr<char[]> read_buf_;
  size_t read_begin_ = 0;
  size_t read_end_ = 0;
  od::parser parser_;

  std::string pending_;
  size_t pending_off_ = 0;
  std::string expected_;  // scratch for the text a response must carry

  bool initialized_ = false;
  uint64_t next_id_ = 1;
  uint64_t received_ = 0;
  uint64_t released_ = 0;         // responses whose window slot was not refilled yet
  std::vector<int64_t> send_ns_;  // by id; 0 once answered
  std::vector<int64_t> rtt_ns_;
  int64_t measure_start_ns_ = 0;
  int64_t measure_end_ns_ = 0;
  std::atomic<uint64_t> progress_{0};   // read by the stall watchdog
  std::atomic<bool> finishing_{false};  // Finish() has its own deadlines; the watchdog stands down
};

void LoadRun::Fail(std::string_view what, std::string_view line) {
  std::fprintf(stderr, "mcpmw-load: FAIL: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!line.empty()) {
    constexpr size_t kShown = 400;
    std::fprintf(stderr, "mcpmw-load: the line was: %.*s%s\n",
                 static_cast<int>(std::min(line.size(), kShown)), line.data(),
                 line.size() > kShown ? "..." : "");
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::fflush(stdout);
  _exit(1);
}

void LoadRun::Spawn() {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
    Fail("pipe2: " + ErrnoText(errno));
  }
  pid_ = ::fork();
  if (pid_ < 0) {
    Fail("fork: " + ErrnoText(errno));
  }
  if (pid_ == 0) {
    std::signal(SIGPIPE, SIG_DFL);
    if (::dup2(to_child[0], STDIN_FILENO) < 0 || ::dup2(from_child[1], STDOUT_FILENO) < 0) {
      _exit(127);
    }
    ::execvp(opt_.command[0], opt_.command);
    std::fprintf(stderr, "mcpmw-load: exec %s: %s\n", opt_.command[0], ErrnoText(errno).c_str());
    _exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  to_target_ = to_child[1];
  from_target_ = from_child[0];
  // Only our end of the target's stdin: a full pipe must not stop us reading its replies.
  ::fcntl(to_target_, F_SETFL, ::fcntl(to_target_, F_GETFL) | O_NONBLOCK);
}

void LoadRun::AppendRequest(uint64_t id) {
  char head[160];
  int n = std::snprintf(head, sizeof(head),
                        R"({"jsonrpc":"2.0","id":%llu,"method":"tools/call","params":)"
                        R"({"name":"echo","arguments":{"text":")",
                        static_cast<unsigned long long>(id));
  pending_.append(head, n);
  AppendLoadText(id, opt_.payload_bytes, &pending_);
  pending_.append("\"}}}\n");
}

bool LoadRun::Flush() {
  while (pending_off_ < pending_.size()) {
    ssize_t n = ::write(to_target_, pending_.data() + pending_off_, pending_.size() - pending_off_);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        return false;
      }
      Fail("writing to the target: " + ErrnoText(errno));
    }
    pending_off_ += static_cast<size_t>(n);
  }
  pending_.clear();
  pending_off_ = 0;
  return true;
}

void LoadRun::FlushAll() {
  while (!Flush()) {
    pollfd fds[2] = {{from_target_, POLLIN, 0}, {to_target_, POLLOUT, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      Fail("poll: " + ErrnoText(errno));
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ReadAndHandle();
    }
  }
}

uint64_t LoadRun::ReadAndHandle() {
  if (read_end_ == read_capacity_) {
    if (read_begin_ > 0) {
      std::memmove(read_buf_.get(), read_buf_.get() + read_begin_, read_end_ - read_begin_);
      read_end_ -= read_begin_;
      read_begin_ = 0;
    } else {  // one line longer than the buffer
      size_t bigger = 2 * read_capacity_;
      std::unique_ptr<char[]> next(new char[bigger + simdjson::SIMDJSON_PADDING]());
      std::memcpy(next.get(), read_buf_.get(), read_end_);
      read_buf_ = std::move(next);
      read_capacity_ = bigger;
    }
  }
  ssize_t n;
  do {
    n = ::read(from_target_, read_buf_.get() + read_end_, read_capacity_ - read_end_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    Fail("reading from the target: " + ErrnoText(errno));
  }
  if (n == 0) {
    char what[160];
    std::snprintf(what, sizeof(what), "the target closed its stdout after %llu of %llu responses%s",
                  static_cast<unsigned long long>(received_),
                  static_cast<unsigned long long>(total_),
                  initialized_ ? "" : " (before answering initialize)");
    Fail(what);
  }
  int64_t now = NowNs();
  read_end_ += static_cast<size_t>(n);
  uint64_t before = received_;
  // Lines are followed in memory by the padding simdjson needs: data ends at or before
  // read_capacity_ and the allocation extends SIMDJSON_PADDING beyond it.
  while (read_begin_ < read_end_) {
    const void* lf = std::memchr(read_buf_.get() + read_begin_, '\n', read_end_ - read_begin_);
    if (lf == nullptr) {
      break;
    }
    size_t line_end = static_cast<const char*>(lf) - read_buf_.get();
    std::string_view line = TrimRight({read_buf_.get() + read_begin_, line_end - read_begin_});
    if (!line.empty()) {
      HandleLine(line, now);
    }
    read_begin_ = line_end + 1;
  }
  if (read_begin_ == read_end_) {
    read_begin_ = read_end_ = 0;
  }
  progress_.store(received_ + (initialized_ ? 1 : 0), std::memory_order_relaxed);
  return received_ - before;
}

void LoadRun::HandleLine(std::string_view line, int64_t now) {
  Response r;
  if (!ParseResponse(parser_, line, &r)) {
    Fail("the target sent a line that is not a JSON-RPC message", line);
  }
  if (r.has_method || !r.has_id) {
    return;  // a notification or a server-to-client request: not ours to count
  }
  if (!r.id_is_uint) {
    Fail("a response id that this generator never sent", line);
  }
  if (r.has_error) {
    Fail("the target answered with an error", line);
  }
  if (!r.has_result) {
    Fail("a response without a result", line);
  }
  if (!initialized_) {
    if (r.id != 0) {
      Fail("a response before the reply to initialize", line);
    }
    initialized_ = true;
    return;
  }
  if (r.id == 0 || r.id >= next_id_ || send_ns_[r.id] == 0) {
    Fail("a response whose id is not outstanding", line);
  }
  expected_.clear();
  expected_.push_back('"');
  AppendLoadText(r.id, opt_.payload_bytes, &expected_);
  expected_.push_back('"');
  if (r.text != expected_) {
    Fail("the result text differs from the text sent with that id", line);
  }
  if (r.id > opt_.warmup) {
    rtt_ns_.push_back(now - send_ns_[r.id]);
  }
  send_ns_[r.id] = 0;
  ++received_;
  ++released_;
  if (received_ == opt_.warmup) {
    measure_start_ns_ = now;
  }
  if (received_ == total_) {
    measure_end_ns_ = now;
  }
}

void LoadRun::Handshake() {
  pending_.append(
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":)"
      R"("2025-06-18","capabilities":{},"clientInfo":{"name":"mcpmw-load","version":"0.1.0"}}})"
      "\n");
  FlushAll();
  while (!initialized_) {
    ReadAndHandle();
  }
  pending_.append(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
                  "\n");
}

void LoadRun::Finish() {
  ::close(to_target_);
  // Drain whatever else the target says until it closes its stdout, but do not wait forever.
  int64_t deadline = NowNs() + int64_t{kExitWaitSeconds} * 1'000'000'000;
  char sink[64 * 1024];
  while (true) {
    int left_ms = static_cast<int>(std::max<int64_t>(0, (deadline - NowNs()) / 1'000'000));
    pollfd fd = {from_target_, POLLIN, 0};
    int ready = ::poll(&fd, 1, left_ms);
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready <= 0) {
      std::fprintf(stderr,
                   "mcpmw-load: the target did not close its stdout within %d s of "
                   "stdin closing; killing it\n",
                   kExitWaitSeconds);
      ::kill(pid_, SIGKILL);
      break;
    }
    ssize_t n = ::read(from_target_, sink, sizeof(sink));
    if (n <= 0 && !(n < 0 && errno == EINTR)) {
      break;
    }
  }
  ::close(from_target_);
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno != EINTR)) {
      break;
    }
    if (waited_ms == kExitWaitSeconds * 1000) {
      std::fprintf(stderr, "mcpmw-load: the target did not exit within %d s; killing it\n",
                   kExitWaitSeconds);
      ::kill(pid_, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return;
  }
  if (WIFEXITED(status)) {
    std::fprintf(stderr, "mcpmw-load: FAIL: the target exited with status %d\n",
                 WEXITSTATUS(status));
  } else {
    std::fprintf(stderr, "mcpmw-load: FAIL: the target died of signal %d\n",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  std::fflush(stdout);
  _exit(1);
}

// CPU seconds, user and system, of this process and its reaped descendants so far.
double CpuSeconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    if (::getrusage(who, &u) == 0) {
      for (const timeval& t : {u.ru_utime, u.ru_stime}) {
        total += static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
      }
    }
  }
  return total;
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[i]) / 1000.0;
}

void LoadRun::Report(double total_s) {
  std::sort(rtt_ns_.begin(), rtt_ns_.end());
  double measured_s = static_cast<double>(measure_end_ns_ - measure_start_ns_) / 1e9;
  double rate = measured_s > 0 ? static_cast<double>(opt_.messages) / measured_s : 0;
  double sum = 0;
  for (int64_t v : rtt_ns_) {
    sum += static_cast<double>(v);
  }
  double mean_us = sum / static_cast<double>(rtt_ns_.size()) / 1000.0;
  double p50 = Percentile(rtt_ns_, 0.50);
  double p99 = Percentile(rtt_ns_, 0.99);
  double p999 = Percentile(rtt_ns_, 0.999);
  double max = static_cast<double>(rtt_ns_.back()) / 1000.0;
  const double cpu_us = CpuSeconds() * 1e6 / static_cast<double>(opt_.warmup + opt_.messages);
  if (opt_.json) {
    std::printf(
        R"({"window":%u,"messages":%llu,"warmup":%llu,"payload_bytes":%zu,"msgs_per_s":%.0f,)"
        R"("p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f,)"
        R"("cpu_us_per_msg":%.2f,"measured_s":%.3f,"total_s":%.3f})"
        "\n",
        opt_.window, static_cast<unsigned long long>(opt_.messages),
        static_cast<unsigned long long>(opt_.warmup), opt_.payload_bytes, rate, p50, p99, p999, max,
        mean_us, cpu_us, measured_s, total_s);
  } else {
    std::printf("window %u, payload %zu B, %llu messages measured after %llu warmup\n", opt_.window,
                opt_.payload_bytes, static_cast<unsigned long long>(opt_.messages),
                static_cast<unsigned long long>(opt_.warmup));
    std::printf("throughput  %.0f msgs/s\n", rate);
    std::printf("latency µs  p50 %.1f  p99 %.1f  p999 %.1f  max %.1f  mean %.1f\n", p50, p99, p999,
                max, mean_us);
    std::printf(
        "cpu         %.2f µs per message (this generator, the target and its reaped "
        "descendants; user + system)\n",
        cpu_us);
    std::printf("total       %.3f s (measured part %.3f s)\n", total_s, measured_s);
  }
  std::fflush(stdout);
}

int LoadRun::Run() {
  std::signal(SIGPIPE, SIG_IGN);
  int64_t t0 = NowNs();
  Spawn();
  // A target that stops answering must not hang a benchmark script forever.
  std::thread([this] {
    uint64_t last = progress_.load(std::memory_order_relaxed);
    int quiet = 0;
    while (true) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      uint64_t now = progress_.load(std::memory_order_relaxed);
      quiet = now == last ? quiet + 1 : 0;
      last = now;
      if (quiet >= kStallSeconds && !finishing_.load(std::memory_order_relaxed)) {
        char what[160];
        std::snprintf(what, sizeof(what), "no response for %d s (%llu of %llu answered)",
                      kStallSeconds, static_cast<unsigned long long>(now > 0 ? now - 1 : 0),
                      static_cast<unsigned long long>(total_));
        Fail(what);
      }
    }
  }).detach();

  Handshake();
  measure_start_ns_ = NowNs();
  uint64_t first = std::min<uint64_t>(opt_.window, total_);
  int64_t now = NowNs();
  for (uint64_t i = 0; i < first; ++i) {
    send_ns_[next_id_] = now;
    AppendRequest(next_id_++);
  }
  while (received_ < total_) {
    if (!Flush()) {
      pollfd fds[2] = {{from_target_, POLLIN, 0}, {to_target_, POLLOUT, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        Fail("poll: " + ErrnoText(errno));
      }
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
    }
    ReadAndHandle();
    // Refill the window: one new request per response, all in one write.
    if (released_ > 0) {
      uint64_t refill = std::min(released_, total_ - (next_id_ - 1));
      released_ = 0;
      now = NowNs();
      for (uint64_t i = 0; i < refill; ++i) {
        send_ns_[next_id_] = now;
        AppendRequest(next_id_++);
      }
    }
  }
  double total_s = static_cast<double>(NowNs() - t0) / 1e9;
  finishing_.store(true, std::memory_order_relaxed);
  Finish();
  Report(total_s);
  return 0;
}

}  // namespace
}  // namespace mcpmw::bench

int main(int argc, char** argv) {
  mcpmw::bench::Options opt;
  if (!mcpmw::bench::ParseOptions(argc, argv, &opt)) {
    mcpmw::bench::Usage();
    return 2;
  }
  if (!opt.warmup_set) {
    opt.warmup = opt.messages / 10;
  }
  try {
    mcpmw::bench::LoadRun run(opt);
    return run.Run();
  } catch (const std::exception& e) {  // std::bad_alloc for an absurd --messages
    std::fprintf(stderr, "mcpmw-load: FAIL: %s\n", e.what());
    return 1;
  }
}
