// mcpmw framing: framed byte streams over io_uring.
//
// FrameReader turns an input fd into frames: it reads into a ReadBuffer and lets a Framer slice
// it (views, no copies). FrameWriter is the single way bytes leave through an output fd: several
// coroutines may queue frames on one writer (the sidecar answers the client both with forwarded
// server messages and with its own errors) and they go out in queue order, batched into one
// writev per drain. Frames are re-framed on the way out when the two sides speak different
// framings; otherwise the original wire bytes are written untouched.
//
// Single-threaded: both belong to the reactor that owns the ring.
#pragma once

#include <sys/uio.h>

#include <coroutine>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/fd.h"
#include "src/framing/framer.h"
#include "src/io/buffer.h"
#include "src/io/ring.h"

namespace mcpmw::framing {

class FrameReader {
 public:
  FrameReader(io::Ring& ring, int fd, size_t max_message_bytes, Framing forced);

  // Whether Fill(/*keep_views=*/true) has room: the next read can append to the buffer without
  // moving or overwriting bytes that frames handed out earlier still point to.
  bool CanFillKeepingViews() const;

  // Reads more bytes into the buffer. With `keep_views`, earlier frames' bytes stay where they
  // are (they may still be queued on a FrameWriter); only call it so when CanFillKeepingViews().
  // Without, the buffer may move or reuse them. Returns bytes read, 0 at end of stream, or
  // -errno (-ECANCELED after CancelRead()).
  io::Task<int> Fill(bool keep_views = false);
  // Cancels a Fill() that is waiting, if any.
  void CancelRead();

  // The next frame event from the buffered bytes. Views stay valid until Consume()+Fill().
  FrameResult Next() { return framer_.Next(buffer_.Data()); }
  void Consume(size_t n) { buffer_.Consume(n); }
  std::string_view Buffered() const { return buffer_.Data(); }

  Framing framing() const { return framer_.framing(); }
  const Framer& framer() const { return framer_; }
  // Switches to another fd (a restarted child), dropping whatever was buffered from the old one.
  void Reset(int fd);

 private:
  io::Ring& ring_;
  int fd_;
  Framing forced_;
  Framer framer_;
  io::ReadBuffer buffer_;
  io::ReadOp* pending_ = nullptr;

  size_t NextReadSize() const;
};

class FrameWriter {
 public:
  // `fd` is borrowed unless adopted with Own(). `framing` kUnknown means "as the input came".
  FrameWriter(io::Ring& ring, int fd, Framing framing);

  // Queues a frame read from a stream framed as `in_framing`. The frame's views are borrowed:
  // they must stay valid until a Flush() issued after this call completes.
  void EnqueueFrame(const FrameResult& frame, Framing in_framing);
  // Queues a message mcpmw wrote itself (a JSON text, framed here).
  void EnqueueMessage(std::string json);

  // Writes everything queued so far. Returns 0, or -errno once the fd is broken (the peer went
  // away); queued bytes are then dropped.
  io::Task<int> Flush();
  // Starts writing what is queued without waiting for it; Flush() or Idle() tell when it is done.
  // True when it started a write (false: nothing queued, a write in flight, or the fd broken).
  bool StartFlush();
  // StartFlush, with the write handed to the kernel at once instead of at the end of the ring's
  // batch: the peer can start on the first frames of a long burst while the rest are still being
  // handled. A no-op while a write is in flight (what is queued then goes in the next one).
  void FlushNow();
  // True when nothing queued is still unwritten (borrowed views are no longer referenced).
  bool Idle() const { return written_ == enqueued_ && !draining_; }

  // Waits for an in-progress drain, fails further writes, and closes an owned fd.
  io::Task<void> Close();
  // Starts writing to a new fd (owned) after Close().
  void Reopen(UniqueFd fd);
  void Own(UniqueFd fd) { owned_ = std::move(fd); }

  // Output framing; kUnknown until set or learned from the peer's input.
  Framing framing() const { return framing_; }
  void set_framing(Framing f) { framing_ = f; }
  bool broken() const { return error_ != 0; }
  int fd() const { return fd_; }

 private:
  struct Segment {
    std::string_view borrowed;  // used when `owned` < 0
    int owned = -1;             // index into owned_strings_ relative to owned_base_
  };
  struct Waiter {
    uint64_t target;
    std::coroutine_handle<> handle;
    int* result;
  };
  io::Task<void> Drain();
  void WakeWaiters();
  void Push(Segment segment);
  std::string& NewOwned();

  io::Ring& ring_;
  int fd_;
  UniqueFd owned_;
  Framing framing_;
  std::vector<Segment> queue_;
  std::vector<std::string> owned_strings_;
  // What the drain is writing now; kept as members so their capacity is reused.
  std::vector<Segment> inflight_segments_;
  std::vector<std::string> inflight_strings_;
  std::vector<iovec> iov_;
  uint64_t enqueued_ = 0;  // segments ever queued
  uint64_t written_ = 0;   // segments ever written (or dropped on error)
  bool draining_ = false;
  int error_ = 0;
  std::vector<Waiter> waiters_;
  std::coroutine_handle<> close_waiter_;
};

}  // namespace mcpmw::framing
