// Tests on a real io_uring. Where the kernel or its sandbox offers none (io_uring_disabled, a
// seccomp profile), each test is skipped with Ring::Create's explanation.
#include "src/io/ring.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "src/common/fd.h"
#include "src/io/task.h"
#include "tests/io/ring_support.h"

namespace mcpmw::io {
namespace {

using namespace std::chrono_literals;

using testing_support::MakePipe;
using testing_support::Pipe;

std::string ErrnoText(int err) { return std::generic_category().message(err); }

void WriteFully(int fd, std::string_view bytes) {
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

Task<int> ReadOnce(Ring& ring, int fd, std::span<char> buf) {
  co_return co_await ReadOp(ring, fd, buf);
}

// Reads until end of file.
Task<std::string> ReadToEnd(Ring& ring, int fd) {
  std::string out;
  std::array<char, 4096> buf;
  while (true) {
    int n = co_await ReadOp(ring, fd, buf);
    if (n <= 0) {
      co_return out;
    }
    out.append(buf.data(), static_cast<size_t>(n));
  }
}

// Completes after one trip through the kernel: a POLLOUT poll on a pipe's write end is ready at
// once. Whatever was queued before it has been submitted by the time it returns.
Task<void> RoundTrip(Ring& ring, int writable_fd) { co_await PollOp(ring, writable_fd, POLLOUT); }

TEST(ReadOp, ReadsWhatWasWrittenToAPipe) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  WriteFully(p.write.Get(), "hello");
  std::array<char, 16> buf{};
  EXPECT_EQ(ring.RunUntilDone(ReadOnce(ring, p.read.Get(), buf)), 5);
  EXPECT_EQ(std::string_view(buf.data(), 5), "hello");
}

TEST(ReadOp, ReturnsZeroAtEndOfFile) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  p.write.Reset();
  std::array<char, 16> buf{};
  EXPECT_EQ(ring.RunUntilDone(ReadOnce(ring, p.read.Get(), buf)), 0);
}

TEST(ReadOp, ReturnsMinusErrnoForABadDescriptor) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  std::array<char, 16> buf{};
  EXPECT_EQ(ring.RunUntilDone(ReadOnce(ring, 1'000'000, buf)), -EBADF);
}

Task<int> WriteTwoPieces(Ring& ring, int fd) {
  std::array<iovec, 2> iov = {{{const_cast<char*>("ping "), 5}, {const_cast<char*>("pong"), 4}}};
  co_return co_await WritevOp(ring, fd, iov);
}

TEST(WritevOp, WritesEveryPieceInOrder) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  EXPECT_EQ(ring.RunUntilDone(WriteTwoPieces(ring, p.write.Get())), 9);
  std::array<char, 16> buf{};
  ASSERT_EQ(::read(p.read.Get(), buf.data(), buf.size()), 9);
  EXPECT_EQ(std::string_view(buf.data(), 9), "ping pong");
}

Task<int> PollOnce(Ring& ring, int fd, unsigned events) {
  co_return co_await PollOp(ring, fd, events);
}

TEST(PollOp, ReportsTheReadyEvents) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  WriteFully(p.write.Get(), "x");
  EXPECT_EQ(ring.RunUntilDone(PollOnce(ring, p.read.Get(), POLLIN)) & POLLIN, POLLIN);
}

Task<int> WriteEverything(Ring& ring, int fd, std::vector<iovec> iov) {
  co_return co_await WriteAll(ring, fd, iov);
}

TEST(WriteAll, WritesALargeBufferThroughAPipeDrainedConcurrently) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  // Far more than a pipe holds (64 KiB), in pieces of odd sizes, so writes come back short and
  // resume in the middle of a piece.
  std::string data(4 * 1024 * 1024 + 12'345, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  const size_t a = 70'001;
  const size_t b = 1'500'007;
  std::vector<iovec> iov = {{data.data(), a},
                            {data.data() + a, b},
                            {nullptr, 0},
                            {data.data() + a + b, data.size() - a - b}};

  std::string received;
  std::thread drain([fd = p.read.Get(), &received] {
    std::array<char, 16384> buf;
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      received.append(buf.data(), static_cast<size_t>(n));
    }
  });
  int rc = ring.RunUntilDone(WriteEverything(ring, p.write.Get(), iov));
  p.write.Reset();  // end of file for the drain
  drain.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(received.size(), data.size());
  EXPECT_TRUE(received == data);
}

TEST(WriteAll, ReturnsEpipeWhenTheReaderIsGone) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  std::signal(SIGPIPE, SIG_IGN);  // as mcpmw itself runs
  Pipe p = MakePipe();
  p.read.Reset();
  std::string data = "orphan";
  EXPECT_EQ(ring.RunUntilDone(WriteEverything(ring, p.write.Get(), {{data.data(), data.size()}})),
            -EPIPE);
}

Task<int> Sleep(Ring& ring, Duration d) { co_return co_await SleepOp(ring, d); }

TEST(SleepOp, CompletesWithEtime) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  EXPECT_EQ(ring.RunUntilDone(Sleep(ring, 1ms)), -ETIME);
}

TEST(SleepOp, TreatsANegativeDurationAsZero) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  EXPECT_EQ(ring.RunUntilDone(Sleep(ring, -5s)), -ETIME);
}

Task<void> CancelAfterRoundTrip(Ring& ring, int writable_fd, const Operation* op) {
  co_await RoundTrip(ring, writable_fd);
  ring.Cancel(op);
}

// Reads from a pipe nobody writes to, while a spawned task cancels the read once it is pending.
Task<int> ReadThatGetsCancelled(Ring& ring, int read_fd, int writable_fd) {
  std::array<char, 16> buf{};
  ReadOp read(ring, read_fd, buf);
  Spawn(CancelAfterRoundTrip(ring, writable_fd, &read));
  co_return co_await read;
}

TEST(Ring, CancelMakesAPendingReadReturnEcanceled) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe idle = MakePipe();
  Pipe ready = MakePipe();
  EXPECT_EQ(ring.RunUntilDone(ReadThatGetsCancelled(ring, idle.read.Get(), ready.write.Get())),
            -ECANCELED);
}

// Writes one byte to `fd`, logs `name` when the write completes, and defers `name` + "-end".
Task<void> WriteThenDefer(Ring& ring, int fd, std::string name, std::vector<std::string>* log,
                          bool nest) {
  char byte = 'x';
  std::array<iovec, 1> iov{{{&byte, 1}}};
  int n = co_await WritevOp(ring, fd, iov);
  EXPECT_EQ(n, 1);
  log->push_back(name);
  ring.AtBatchEnd([&ring, name, log, nest] {
    log->push_back(name + "-end");
    if (nest) {
      ring.AtBatchEnd([log] { log->push_back("nested"); });
    }
  });
}

Task<void> WritesThenSleep(Ring& ring, int fd, std::vector<std::string>* log) {
  Spawn(WriteThenDefer(ring, fd, "a", log, /*nest=*/true));
  Spawn(WriteThenDefer(ring, fd, "b", log, /*nest=*/false));
  co_await SleepOp(ring, 1ms);
  log->push_back("slept");
}

TEST(Ring, AtBatchEndRunsAfterEveryCompletionOfTheBatchAndBeforeTheNextWait) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  std::vector<std::string> log;
  ring.AtBatchEnd([&log] { log.push_back("before-any-wait"); });
  ring.RunUntilDone(WritesThenSleep(ring, p.write.Get(), &log));
  EXPECT_EQ(log, (std::vector<std::string>{"before-any-wait", "a", "b", "a-end", "b-end", "nested",
                                           "slept"}));
}

Task<void> CloseAfterRoundTrip(Ring& ring, UniqueFd& fd) {
  co_await RoundTrip(ring, fd.Get());
  fd.Reset();
}

// Lets the child go (by closing its pipe) only once the wait on its pidfd has been submitted.
Task<int> ReleaseChildAndWait(Ring& ring, UniqueFd& go, int pidfd) {
  Spawn(CloseAfterRoundTrip(ring, go));
  co_return co_await WaitPidfd(ring, pidfd);
}

TEST(WaitPidfd, ReturnsAfterTheChildExits) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe go = MakePipe();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << ErrnoText(errno);
  if (pid == 0) {
    // The child: wait for the parent to close the pipe, then exit. Async-signal-safe calls only.
    ::close(go.write.Get());
    char c;
    while (::read(go.read.Get(), &c, 1) > 0) {
    }
    ::_exit(7);
  }
  go.read.Reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.Valid()) {
    int err = errno;
    go.write.Reset();
    ::waitpid(pid, nullptr, 0);
    GTEST_SKIP() << "pidfd_open: " << ErrnoText(err);
  }
  pollfd pfd{.fd = pidfd.Get(), .events = POLLIN};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "the child exited before it was released";

  EXPECT_EQ(ring.RunUntilDone(ReleaseChildAndWait(ring, go.write, pidfd.Get())), 0);
  EXPECT_FALSE(go.write.Valid());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, WNOHANG), pid) << "WaitPidfd returned before the exit";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

Task<int> Constant(int v) { co_return v; }

Task<int> SumTo(int n) {
  int total = 0;
  for (int i = 1; i <= n; ++i) {
    total += co_await Constant(i);
  }
  co_return total;
}

TEST(Task, PassesValuesUpAChainOfAwaits) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  EXPECT_EQ(ring.RunUntilDone(SumTo(100)), 5050);
}

Task<size_t> CountBytes(Ring& ring, int fd) {
  std::string all = co_await ReadToEnd(ring, fd);
  co_return all.size();
}

TEST(Task, ResumesItsAwaiterAfterRealIo) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  WriteFully(p.write.Get(), std::string(10'000, 'z'));
  p.write.Reset();
  EXPECT_EQ(ring.RunUntilDone(CountBytes(ring, p.read.Get())), 10'000u);
}

Task<std::unique_ptr<int>> MakeBox(int v) { co_return std::make_unique<int>(v); }

Task<int> Unbox() {
  std::unique_ptr<int> box = co_await MakeBox(41);
  co_return *box + 1;
}

TEST(Task, MovesAMoveOnlyResult) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  EXPECT_EQ(ring.RunUntilDone(Unbox()), 42);
}

Task<int> Depth(int n) {
  if (n == 0) {
    co_return 0;
  }
  co_return 1 + co_await Depth(n - 1);
}

TEST(Task, AwaitsAChainDeeperThanTheStackWouldHold) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
  // Measured with GCC 12: at -O0 a chain of ~100k awaits overflows an 8 MiB stack; from -O2 on
  // (and with clang at any level) it runs in constant stack.
  GTEST_SKIP() << "GCC makes symmetric transfer a tail call only in optimised builds";
#endif
  // Symmetric transfer: each resume is a tail call, so depth costs heap frames, not stack.
  EXPECT_EQ(ring.RunUntilDone(Depth(1'000'000)), 1'000'000);
}

// Sets `*destroyed` when the coroutine frame holding it (as a parameter) is freed.
class FrameGuard {
 public:
  explicit FrameGuard(bool* destroyed) : destroyed_(destroyed) {}
  FrameGuard(FrameGuard&& other) noexcept : destroyed_(std::exchange(other.destroyed_, nullptr)) {}
  FrameGuard& operator=(FrameGuard&&) = delete;
  ~FrameGuard() {
    if (destroyed_ != nullptr) {
      *destroyed_ = true;
    }
  }

 private:
  bool* destroyed_;
};

Task<void> Detached(Ring& ring, int writable_fd, int& stage, FrameGuard guard) {
  stage = 1;
  co_await RoundTrip(ring, writable_fd);
  stage = 2;
  ring.Stop();
}

TEST(Spawn, RunsUntilTheFirstSuspensionThenFinishesOnItsOwn) {
  auto ring_or = Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  Ring& ring = **ring_or;
  Pipe p = MakePipe();
  int stage = 0;
  bool frame_freed = false;
  Spawn(Detached(ring, p.write.Get(), stage, FrameGuard(&frame_freed)));
  EXPECT_EQ(stage, 1);
  EXPECT_FALSE(frame_freed);
  ring.Run();  // until the detached task calls Stop()
  EXPECT_EQ(stage, 2);
  EXPECT_TRUE(frame_freed);
}

}  // namespace
}  // namespace mcpmw::io
