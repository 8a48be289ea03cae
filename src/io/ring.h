// mcpmw io: one io_uring ring per reactor thread, and the awaitable operations on it.
//
// Every byte mcpmw moves goes through a Ring: the sidecar's stdin/stdout, the server's pipes,
// timers, signals (via signalfd) and child exits (via pidfd polling). Operations are awaitables
// whose user_data is their own address; Run() reaps completions and resumes the awaiting
// coroutine with the raw result (>= 0, or -errno). Raw errno stays inside src/io; callers above
// translate it into absl::Status.
//
// Threading: a Ring and every operation on it belong to the thread that runs Run().
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/io/task.h"

namespace mcpmw::io {

// What the running kernel's io_uring offers, probed once at start-up.
struct KernelFeatures {
  bool ring_available = false;  // io_uring_setup succeeded
  std::string unavailable_reason;
  bool nodrop = false;     // IORING_FEAT_NODROP: completions are never lost
  bool cur_pos = false;    // IORING_FEAT_RW_CUR_POS: offset -1 means "current position"
  bool fast_poll = false;  // IORING_FEAT_FAST_POLL: pipe reads wait without a worker thread
  bool op_read = false, op_writev = false, op_poll = false, op_timeout = false, op_cancel = false;
};

// Probes io_uring on this kernel without keeping a ring.
KernelFeatures ProbeKernelFeatures();

// Returns OK when everything mcpmw needs is present, or a FailedPrecondition status whose message
// tells an operator what is missing and how to fix it.
absl::Status CheckKernelFeatures(const KernelFeatures& features);

class Ring;

// Base of every awaitable operation: the completion lands in `result_` and resumes `waiter_`.
class Operation {
 public:
  Operation() = default;
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  bool await_ready() const noexcept { return false; }
  int await_resume() const noexcept { return result_; }

 protected:
  friend class Ring;
  // Gets an SQE whose user_data is this operation and remembers the waiter.
  io_uring_sqe* Prepare(Ring& ring, std::coroutine_handle<> waiter);

  int result_ = 0;
  std::coroutine_handle<> waiter_;
};

class Ring {
 public:
  // Creates a ring with `entries` submission slots. Fails with a readable message when io_uring
  // is missing or disabled (kernel.io_uring_disabled, a container seccomp profile).
  static absl::StatusOr<std::unique_ptr<Ring>> Create(unsigned entries = 256);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Returns a free SQE, submitting queued ones first when the queue is full.
  io_uring_sqe* GetSqe();

  // Runs the loop until Stop() is called: submits queued SQEs, waits for at least one completion,
  // resumes the awaiting coroutines. Returns once stopped.
  void Run();

  // After handling completions, keep polling for new ones for up to `window` before sleeping in
  // the kernel (0, the default, sleeps at once). Polling trades CPU for latency: a thread that
  // sleeps must be woken, and on a VM whose idle vCPUs halt, that wake-up costs tens of µs.
  // The window only starts after activity, so an idle ring does not spin.
  void set_busy_poll(Duration window) { busy_poll_ = window; }
  // Runs `fn` once the current batch of completions has been handled, before the loop submits
  // and waits again (or before the next wait, when called outside a batch). Work queued by many
  // completions of one batch can so leave in one operation: an upstream writes all the requests
  // of a batch with one writev instead of one for the first and one more, a round later, for the
  // rest. `fn` may defer again; that runs in the same pass.
  void AtBatchEnd(std::function<void()> fn) { batch_end_.push_back(std::move(fn)); }
  // Hands the queued SQEs to the kernel now rather than when the batch ends. An operation the
  // kernel can do at once (a write to a pipe with room) is then done before this returns; its
  // completion is still reaped, and its coroutine resumed, by the loop.
  void Submit();
  // Makes Run() return after the current batch of completions.
  void Stop() { stopped_ = true; }
  bool Stopped() const { return stopped_; }

  // Runs `task` on this ring until it finishes (test and tool helper). Must not be nested.
  template <typename T>
  T RunUntilDone(Task<T> task);
  void RunUntilDone(Task<void> task);

  // Asks the kernel to cancel the pending operation `op`; it completes with -ECANCELED (or with
  // its real result if it was already finishing). Fire-and-forget.
  void Cancel(const Operation* op);

  const Clock& clock() const { return SteadyClock::Instance(); }

 private:
  Ring() = default;
  void ReapCompletions();
  void RunBatchEnd();

  io_uring ring_{};
  std::vector<std::function<void()>> batch_end_;
  std::vector<std::function<void()>> batch_end_running_;
  Duration busy_poll_{0};
  bool initialised_ = false;
  bool stopped_ = false;
};

// read(2) of up to `buf.size()` bytes from the current position. Result: bytes read, 0 at EOF,
// or -errno. With a timeout, a linked timeout cancels the read when it expires (result
// -ECANCELED, as for Ring::Cancel: a caller that also cancels tells the two apart itself).
class ReadOp final : public Operation {
 public:
  ReadOp(Ring& ring, int fd, std::span<char> buf) : ring_(ring), fd_(fd), buf_(buf) {}
  ReadOp(Ring& ring, int fd, std::span<char> buf, Duration timeout);
  void await_suspend(std::coroutine_handle<> h);

 private:
  Ring& ring_;
  int fd_;
  std::span<char> buf_;
  bool has_timeout_ = false;
  __kernel_timespec ts_{};
};

// accept4(2) on a listening socket; the new socket is close-on-exec (and blocking: io_uring
// waits for it without a thread). Result: the new fd or -errno. After success, peer() holds the
// client's address.
class AcceptOp final : public Operation {
 public:
  AcceptOp(Ring& ring, int fd) : ring_(ring), fd_(fd) {}
  void await_suspend(std::coroutine_handle<> h);
  const sockaddr_storage& peer() const { return peer_; }

 private:
  Ring& ring_;
  int fd_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = sizeof(peer_);
};

// writev(2) of `iov` at the current position. Result: bytes written (maybe short) or -errno.
class WritevOp final : public Operation {
 public:
  WritevOp(Ring& ring, int fd, std::span<const iovec> iov) : ring_(ring), fd_(fd), iov_(iov) {}
  void await_suspend(std::coroutine_handle<> h);

 private:
  Ring& ring_;
  int fd_;
  std::span<const iovec> iov_;
};

// One-shot poll for `events` (POLLIN, POLLOUT…). Result: the ready mask or -errno. Waiting for a
// child to exit is a POLLIN poll on its pidfd. With a timeout, a linked timeout cancels the poll
// when it expires (result -ECANCELED).
class PollOp final : public Operation {
 public:
  PollOp(Ring& ring, int fd, unsigned events) : ring_(ring), fd_(fd), events_(events) {}
  PollOp(Ring& ring, int fd, unsigned events, Duration timeout);
  void await_suspend(std::coroutine_handle<> h);

 private:
  Ring& ring_;
  int fd_;
  unsigned events_;
  bool has_timeout_ = false;
  __kernel_timespec ts_{};
};

// Relative timeout. Result: -ETIME when it fired, -ECANCELED when cancelled first.
class SleepOp final : public Operation {
 public:
  SleepOp(Ring& ring, Duration d);
  void await_suspend(std::coroutine_handle<> h);

 private:
  Ring& ring_;
  __kernel_timespec ts_{};
};

// Accounts for `written` bytes of a writev over iov[first…]: returns the index of the first
// segment not fully written and advances that segment past what was written of it.
size_t AdvanceIov(std::span<iovec> iov, size_t first, size_t written);

// Writes all of `iov` to `fd`, resubmitting after short writes. Returns 0 or -errno.
Task<int> WriteAll(Ring& ring, int fd, std::span<iovec> iov);

// Waits for the process behind `pidfd` to exit (it stays unreaped). Returns 0 or -errno.
Task<int> WaitPidfd(Ring& ring, int pidfd);

// Like WaitPidfd, but gives up after `timeout`: true when the process exited.
Task<bool> WaitPidfdFor(Ring& ring, int pidfd, Duration timeout);

// Tracks a set of detached tasks so their owner can wait for all of them to finish before it
// goes away (a frame must never outlive what it points to). Single-threaded.
class TaskGroup {
 public:
  // Starts `task` now as a member of the group.
  void Spawn(Task<void> task);
  // Completes when every task started so far has finished.
  Task<void> Join();
  size_t Running() const { return running_; }

 private:
  static Task<void> Member(TaskGroup& group, Task<void> task);
  size_t running_ = 0;
  std::coroutine_handle<> joiner_;
};

template <typename T>
T Ring::RunUntilDone(Task<T> task) {
  std::optional<T> out;
  auto wrapper = [](Task<T> t, std::optional<T>& slot, Ring& r) -> Task<void> {
    slot.emplace(co_await std::move(t));
    r.Stop();
  };
  stopped_ = false;
  Spawn(wrapper(std::move(task), out, *this));
  if (!out.has_value()) {
    Run();
  }
  stopped_ = false;
  return std::move(*out);
}

}  // namespace mcpmw::io
