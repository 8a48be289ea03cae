#include "src/framing/framed_stream.h"

#include <algorithm>
#include <cerrno>

namespace mcpmw::framing {
namespace {

// Reads are at least this large; a frame that needs more gets a buffer sized to it.
constexpr size_t kMinRead = size_t{64} * 1024;
constexpr size_t kSteadyCapacity = size_t{256} * 1024;
constexpr std::string_view kNewline = "\n";

}  // namespace

FrameReader::FrameReader(io::Ring& ring, int fd, size_t max_message_bytes, Framing forced)
    : ring_(ring),
      fd_(fd),
      forced_(forced),
      framer_(max_message_bytes, forced),
      buffer_(kSteadyCapacity) {}

size_t FrameReader::NextReadSize() const {
  size_t want = kMinRead;
  if (size_t total = framer_.BytesWanted(); total > buffer_.Size()) {
    want = std::max(want, total - buffer_.Size());
  }
  return want;
}

bool FrameReader::CanFillKeepingViews() const { return buffer_.TailRoom() >= NextReadSize(); }

io::Task<int> FrameReader::Fill(bool keep_views) {
  size_t want = NextReadSize();
  if (!keep_views) {
    buffer_.Recycle();
    if (buffer_.Size() == 0) {
      buffer_.ShrinkTo(kSteadyCapacity);  // give back what one huge frame needed
    }
  }
  // The framer rejects a frame once it is over the maximum, so the buffer never needs to hold
  // much more than one maximal frame and one read.
  std::span<char> tail = buffer_.WritableTail(want, framer_.max_message_bytes() + 2 * kMinRead);
  io::ReadOp op(ring_, fd_, tail);
  pending_ = &op;
  int n = co_await op;
  pending_ = nullptr;
  if (n > 0) {
    buffer_.Commit(static_cast<size_t>(n));
  }
  co_return n;
}

void FrameReader::CancelRead() {
  if (pending_ != nullptr) {
    ring_.Cancel(pending_);
  }
}

void FrameReader::Reset(int fd) {
  fd_ = fd;
  framer_ = Framer(framer_.max_message_bytes(), forced_);
  buffer_.Clear();
}

FrameWriter::FrameWriter(io::Ring& ring, int fd, Framing framing)
    : ring_(ring), fd_(fd), framing_(framing) {}

void FrameWriter::Push(Segment segment) {
  queue_.push_back(segment);
  ++enqueued_;
}

std::string& FrameWriter::NewOwned() {
  Push({.owned = static_cast<int>(owned_strings_.size())});
  return owned_strings_.emplace_back();
}

void FrameWriter::EnqueueFrame(const FrameResult& frame, Framing in_framing) {
  if (error_ != 0) {
    return;
  }
  Framing out = framing_ == Framing::kUnknown ? in_framing : framing_;
  if (out == in_framing) {
    Push({.borrowed = frame.wire});
    // An ndjson line at the very end of a stream may lack its LF; always end frames with one.
    if (out == Framing::kNdjson && (frame.wire.empty() || frame.wire.back() != '\n')) {
      Push({.borrowed = kNewline});
    }
  } else if (out == Framing::kContentLength) {
    NewOwned() = ContentLengthHeader(frame.payload.size());
    Push({.borrowed = frame.payload});
  } else if (frame.payload.find_first_of("\r\n") == std::string_view::npos) {
    Push({.borrowed = frame.payload});
    Push({.borrowed = kNewline});
  } else {
    AppendFramed(out, frame.payload, &NewOwned());
  }
}

void FrameWriter::EnqueueMessage(std::string json) {
  if (error_ != 0) {
    return;
  }
  Framing out = framing_ == Framing::kUnknown ? Framing::kNdjson : framing_;
  if (out == Framing::kNdjson && json.find_first_of("\r\n") == std::string::npos) {
    json.push_back('\n');
    NewOwned() = std::move(json);
  } else {
    AppendFramed(out, json, &NewOwned());
  }
}

bool FrameWriter::StartFlush() {
  if (error_ != 0 || draining_ || written_ >= enqueued_) {
    return false;
  }
  io::Spawn(Drain());  // runs to its first write, which it queues on the ring
  return true;
}

void FrameWriter::FlushNow() {
  if (StartFlush()) {
    ring_.Submit();
  }
}

io::Task<int> FrameWriter::Flush() {
  if (error_ != 0) {
    co_return -error_;
  }
  uint64_t target = enqueued_;
  StartFlush();
  if (written_ >= target) {
    co_return error_ == 0 ? 0 : -error_;
  }
  struct Awaiter {
    FrameWriter& w;
    uint64_t target;
    int result = 0;
    bool await_ready() const noexcept { return w.written_ >= target || w.error_ != 0; }
    void await_suspend(std::coroutine_handle<> h) { w.waiters_.push_back({target, h, &result}); }
    int await_resume() const noexcept { return w.error_ != 0 ? -w.error_ : result; }
  };
  co_return co_await Awaiter{*this, target};
}

io::Task<void> FrameWriter::Drain() {
  draining_ = true;
  while (!queue_.empty() && error_ == 0) {
    // Take the whole queue: frames queued while this write is in flight go in the next one.
    inflight_segments_.swap(queue_);
    inflight_strings_.swap(owned_strings_);
    iov_.clear();
    for (const Segment& s : inflight_segments_) {
      std::string_view bytes =
          s.owned >= 0 ? std::string_view(inflight_strings_[s.owned]) : s.borrowed;
      if (!bytes.empty()) {
        iov_.push_back({const_cast<char*>(bytes.data()), bytes.size()});
      }
    }
    // One writev per IOV_MAX segments; short writes resume where they stopped.
    size_t first = 0;
    while (first < iov_.size() && error_ == 0) {
      size_t n = std::min<size_t>(IOV_MAX, iov_.size() - first);
      int rc = co_await io::WritevOp(ring_, fd_, std::span<const iovec>(iov_.data() + first, n));
      if (rc == -EINTR || rc == -EAGAIN) {
        continue;
      }
      if (rc < 0) {
        error_ = -rc;
        break;
      }
      first = io::AdvanceIov(iov_, first, static_cast<size_t>(rc));
    }
    written_ += inflight_segments_.size();
    inflight_segments_.clear();
    inflight_strings_.clear();
    WakeWaiters();
  }
  if (error_ != 0) {
    written_ += queue_.size();
    queue_.clear();
    owned_strings_.clear();
    WakeWaiters();
  }
  draining_ = false;
  if (close_waiter_) {
    std::exchange(close_waiter_, {}).resume();
  }
}

void FrameWriter::WakeWaiters() {
  std::vector<Waiter> ready;
  auto it = std::partition(waiters_.begin(), waiters_.end(),
                           [this](const Waiter& w) { return w.target > written_ && error_ == 0; });
  ready.assign(it, waiters_.end());
  waiters_.erase(it, waiters_.end());
  for (const Waiter& w : ready) {
    *w.result = error_ == 0 ? 0 : -error_;
    w.handle.resume();
  }
}

io::Task<void> FrameWriter::Close() {
  if (error_ == 0) {
    error_ = EPIPE;
  }
  if (draining_) {
    struct Awaiter {
      FrameWriter& w;
      bool await_ready() const noexcept { return !w.draining_; }
      void await_suspend(std::coroutine_handle<> h) noexcept { w.close_waiter_ = h; }
      void await_resume() const noexcept {}
    };
    co_await Awaiter{*this};
  }
  written_ += queue_.size();
  queue_.clear();
  owned_strings_.clear();
  WakeWaiters();
  owned_.Reset();
}

void FrameWriter::Reopen(UniqueFd fd) {
  fd_ = fd.Get();
  owned_ = std::move(fd);
  error_ = 0;
}

}  // namespace mcpmw::framing
