// FrameWriter on a real io_uring and a real pipe. Where the kernel offers no io_uring, each test
// is skipped with Ring::Create's explanation.
#include "src/framing/framed_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "gtest/gtest.h"
#include "src/common/fd.h"
#include "src/io/ring.h"
#include "src/io/task.h"

namespace mcpmw::framing {
namespace {

#define SKIP_WITHOUT_IO_URING(ring_or)                                    \
  if (!(ring_or).ok()) {                                                  \
    GTEST_SKIP() << "no io_uring here: " << (ring_or).status().message(); \
  }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// The read end is non-blocking: a test can look at what the pipe holds without waiting.
Pipe MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0 || ::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
    ADD_FAILURE() << "pipe2: errno " << errno;
    return {};
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// What the pipe holds now ("" when nothing was written yet).
std::string Available(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(FrameWriter, StartFlushLeavesTheWriteQueuedUntilTheRingRuns) {
  auto ring_or = io::Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  io::Ring& ring = **ring_or;
  Pipe p = MakePipe();
  FrameWriter writer(ring, p.write.Get(), Framing::kNdjson);
  writer.EnqueueMessage(R"({"jsonrpc":"2.0","method":"a"})");
  writer.StartFlush();
  EXPECT_EQ(Available(p.read.Get()), "");
  EXPECT_FALSE(writer.Idle());
  EXPECT_EQ(ring.RunUntilDone(writer.Flush()), 0);
  EXPECT_EQ(Available(p.read.Get()), "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n");
}

TEST(FrameWriter, FlushNowPutsTheQueuedFramesInThePipeBeforeTheRingRunsAgain) {
  auto ring_or = io::Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  io::Ring& ring = **ring_or;
  Pipe p = MakePipe();
  FrameWriter writer(ring, p.write.Get(), Framing::kNdjson);
  writer.EnqueueMessage(R"({"jsonrpc":"2.0","method":"a"})");
  writer.EnqueueMessage(R"({"jsonrpc":"2.0","method":"b"})");
  writer.FlushNow();
  EXPECT_EQ(Available(p.read.Get()),
            "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n{\"jsonrpc\":\"2.0\",\"method\":\"b\"}\n");
  // What is queued while that write's completion is not yet reaped goes in the next write.
  writer.EnqueueMessage(R"({"jsonrpc":"2.0","method":"c"})");
  writer.FlushNow();
  EXPECT_EQ(Available(p.read.Get()), "");
  EXPECT_EQ(ring.RunUntilDone(writer.Flush()), 0);
  EXPECT_EQ(Available(p.read.Get()), "{\"jsonrpc\":\"2.0\",\"method\":\"c\"}\n");
  EXPECT_TRUE(writer.Idle());
}

TEST(FrameWriter, FlushNowWithNothingQueuedWritesNothing) {
  auto ring_or = io::Ring::Create(64);
  SKIP_WITHOUT_IO_URING(ring_or);
  io::Ring& ring = **ring_or;
  Pipe p = MakePipe();
  FrameWriter writer(ring, p.write.Get(), Framing::kNdjson);
  writer.FlushNow();
  EXPECT_TRUE(writer.Idle());
  EXPECT_EQ(Available(p.read.Get()), "");
}

}  // namespace
}  // namespace mcpmw::framing
