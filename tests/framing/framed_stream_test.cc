// FrameWriter on a real io_uring and a real pipe. Where the kernel offers no io_uring, each test
// is skipped with Ring::Create's explanation.
#include "src/framing/framed_stream.h"

#include <unistd.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "src/common/fd.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "tests/io/ring_support.h"

namespace mcpmw::framing {
namespace {

using testing_support::MakePipe;
using testing_support::Pipe;
using testing_support::ReadEnd;

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

// A ring, a pipe whose read end the test looks into, and a writer on its write end.
class FrameWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring_or = io::Ring::Create(64);
    SKIP_WITHOUT_IO_URING(ring_or);
    ring_ = *std::move(ring_or);
    pipe_ = MakePipe(ReadEnd::kNonBlocking);
    writer_ = std::make_unique<FrameWriter>(*ring_, pipe_.write.Get(), Framing::kNdjson);
  }
  std::string InPipe() { return Available(pipe_.read.Get()); }

  std::unique_ptr<io::Ring> ring_;
  Pipe pipe_;
  std::unique_ptr<FrameWriter> writer_;
};

TEST_F(FrameWriterTest, StartFlushLeavesTheWriteQueuedUntilTheRingRuns) {
  writer_->EnqueueMessage(R"({"jsonrpc":"2.0","method":"a"})");
  writer_->StartFlush();
  EXPECT_EQ(InPipe(), "");
  EXPECT_FALSE(writer_->Idle());
  EXPECT_EQ(ring_->RunUntilDone(writer_->Flush()), 0);
  EXPECT_EQ(InPipe(), "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n");
}

TEST_F(FrameWriterTest, FlushNowPutsTheQueuedFramesInThePipeBeforeTheRingRunsAgain) {
  writer_->EnqueueMessage(R"({"jsonrpc":"2.0","method":"a"})");
  writer_->EnqueueMessage(R"({"jsonrpc":"2.0","method":"b"})");
  writer_->FlushNow();
  EXPECT_EQ(InPipe(),
            "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n{\"jsonrpc\":\"2.0\",\"method\":\"b\"}\n");
  // What is queued while that write's completion is not yet reaped goes in the next write.
  writer_->EnqueueMessage(R"({"jsonrpc":"2.0","method":"c"})");
  writer_->FlushNow();
  EXPECT_EQ(InPipe(), "");
  EXPECT_EQ(ring_->RunUntilDone(writer_->Flush()), 0);
  EXPECT_EQ(InPipe(), "{\"jsonrpc\":\"2.0\",\"method\":\"c\"}\n");
  EXPECT_TRUE(writer_->Idle());
}

TEST_F(FrameWriterTest, FlushNowWithNothingQueuedWritesNothing) {
  writer_->FlushNow();
  EXPECT_TRUE(writer_->Idle());
  EXPECT_EQ(InPipe(), "");
}

}  // namespace
}  // namespace mcpmw::framing
