#include "src/io/ring.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "src/common/log.h"

namespace mcpmw::io {

KernelFeatures ProbeKernelFeatures() {
  KernelFeatures f;
  io_uring ring{};
  io_uring_params params{};
  int rc = io_uring_queue_init_params(4, &ring, &params);
  if (rc < 0) {
    f.unavailable_reason = ErrnoText(-rc);
    return f;
  }
  f.ring_available = true;
  f.nodrop = (params.features & IORING_FEAT_NODROP) != 0;
  f.cur_pos = (params.features & IORING_FEAT_RW_CUR_POS) != 0;
  f.fast_poll = (params.features & IORING_FEAT_FAST_POLL) != 0;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring); probe != nullptr) {
    f.op_read = io_uring_opcode_supported(probe, IORING_OP_READ) != 0;
    f.op_writev = io_uring_opcode_supported(probe, IORING_OP_WRITEV) != 0;
    f.op_poll = io_uring_opcode_supported(probe, IORING_OP_POLL_ADD) != 0;
    f.op_timeout = io_uring_opcode_supported(probe, IORING_OP_TIMEOUT) != 0;
    f.op_cancel = io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL) != 0;
    io_uring_free_probe(probe);
  }
  io_uring_queue_exit(&ring);
  return f;
}

absl::Status CheckKernelFeatures(const KernelFeatures& f) {
  if (!f.ring_available) {
    return absl::FailedPreconditionError(absl::StrCat(
        "io_uring is not available on this kernel (io_uring_setup: ", f.unavailable_reason,
        "). mcpmw needs Linux 5.11 or newer with io_uring enabled: check "
        "/proc/sys/kernel/io_uring_disabled is 0 and that no container seccomp profile blocks "
        "io_uring_setup"));
  }
  std::string missing;
  auto need = [&missing](bool have, const char* what) {
    if (!have) {
      absl::StrAppend(&missing, missing.empty() ? "" : ", ", what);
    }
  };
  need(f.nodrop, "IORING_FEAT_NODROP");
  need(f.cur_pos, "IORING_FEAT_RW_CUR_POS");
  need(f.fast_poll, "IORING_FEAT_FAST_POLL");
  need(f.op_read, "IORING_OP_READ");
  need(f.op_writev, "IORING_OP_WRITEV");
  need(f.op_poll, "IORING_OP_POLL_ADD");
  need(f.op_timeout, "IORING_OP_TIMEOUT");
  need(f.op_cancel, "IORING_OP_ASYNC_CANCEL");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("this kernel's io_uring lacks ", missing,
                                                      "; mcpmw needs Linux 5.11 or newer"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Ring>> Ring::Create(unsigned entries) {
  std::unique_ptr<Ring> ring(new Ring());
  io_uring_params params{};
  // One ring per reactor thread, never shared: tell the kernel so it can skip cross-thread
  // task_work notifications (IORING_SETUP_SINGLE_ISSUER | COOP_TASKRUN), falling back to a plain
  // ring on kernels that do not know these flags.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring->ring_, &params);
  if (rc == -EINVAL) {
    params = {};
    rc = io_uring_queue_init_params(entries, &ring->ring_, &params);
  }
  if (rc < 0) {
    KernelFeatures f;
    f.unavailable_reason = ErrnoText(-rc);
    return CheckKernelFeatures(f);
  }
  ring->initialised_ = true;
  return ring;
}

Ring::~Ring() {
  if (initialised_) {
    io_uring_queue_exit(&ring_);
  }
}

io_uring_sqe* Ring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Ring::Cancel(const Operation* op) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel(sqe, const_cast<Operation*>(op), 0);
  io_uring_sqe_set_data(sqe, nullptr);  // the cancel's own completion is not awaited
}

void Ring::ReapCompletions() {
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  // Collect first, resume after advancing the CQ: a resumed coroutine may submit and wait again.
  constexpr unsigned kBatch = 64;
  Operation* ready[kBatch];
  int results[kBatch];
  io_uring_for_each_cqe(&ring_, head, cqe) {
    auto* op = static_cast<Operation*>(io_uring_cqe_get_data(cqe));
    if (op != nullptr) {
      ready[seen] = op;
      results[seen] = cqe->res;
    } else {
      ready[seen] = nullptr;
    }
    if (++seen == kBatch) {
      break;
    }
  }
  io_uring_cq_advance(&ring_, seen);
  for (unsigned i = 0; i < seen; ++i) {
    if (ready[i] != nullptr) {
      ready[i]->result_ = results[i];
      ready[i]->waiter_.resume();
    }
  }
}

void Ring::Submit() { io_uring_submit(&ring_); }

void Ring::RunBatchEnd() {
  while (!batch_end_.empty()) {
    batch_end_running_.swap(batch_end_);
    for (std::function<void()>& fn : batch_end_running_) {
      fn();
    }
    batch_end_running_.clear();
  }
}

void Ring::Run() {
  while (!stopped_) {
    RunBatchEnd();
    if (stopped_) {
      break;
    }
    if (busy_poll_.count() > 0) {
      // DEFER_TASKRUN posts completions only when this thread enters the kernel, so polling
      // means a non-blocking io_uring_enter per round rather than only reading the CQ ring.
      io_uring_submit_and_get_events(&ring_);
      TimePoint until = std::chrono::steady_clock::now() + busy_poll_;
      while (io_uring_cq_ready(&ring_) == 0 && std::chrono::steady_clock::now() < until) {
        io_uring_get_events(&ring_);
      }
      if (io_uring_cq_ready(&ring_) > 0) {
        ReapCompletions();
        continue;
      }
    }
    int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      // The ring itself failed; nothing on it can make progress any more.
      return;
    }
    ReapCompletions();
  }
}

void Ring::RunUntilDone(Task<void> task) {
  bool done = false;
  auto wrapper = [](Task<void> t, bool& flag, Ring& r) -> Task<void> {
    co_await std::move(t);
    flag = true;
    r.Stop();
  };
  stopped_ = false;
  Spawn(wrapper(std::move(task), done, *this));
  if (!done) {
    Run();
  }
  stopped_ = false;
}

io_uring_sqe* Operation::Prepare(Ring& ring, std::coroutine_handle<> waiter) {
  waiter_ = waiter;
  io_uring_sqe* sqe = ring.GetSqe();
  io_uring_sqe_set_data(sqe, this);
  return sqe;
}

void WritevOp::await_suspend(std::coroutine_handle<> h) {
  io_uring_prep_writev(Prepare(ring_, h), fd_, iov_.data(), static_cast<unsigned>(iov_.size()),
                       static_cast<__u64>(-1));
}

namespace {
__kernel_timespec ToTimespec(Duration d) {
  auto ns = d.count() < 0 ? 0 : d.count();
  return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}
}  // namespace

ReadOp::ReadOp(Ring& ring, int fd, std::span<char> buf, Duration timeout)
    : ring_(ring), fd_(fd), buf_(buf), has_timeout_(true), ts_(ToTimespec(timeout)) {}

void ReadOp::await_suspend(std::coroutine_handle<> h) {
  io_uring_sqe* sqe = Prepare(ring_, h);
  // Offset -1: read from the current position, so stdin may be a pipe, a tty or a file.
  io_uring_prep_read(sqe, fd_, buf_.data(), static_cast<unsigned>(buf_.size()),
                     static_cast<__u64>(-1));
  if (has_timeout_) {
    // As for PollOp: one completion (the read's) says whether data or the deadline came first.
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* timeout = ring_.GetSqe();
    io_uring_prep_link_timeout(timeout, &ts_, 0);
    io_uring_sqe_set_data(timeout, nullptr);
  }
}

void AcceptOp::await_suspend(std::coroutine_handle<> h) {
  io_uring_prep_accept(Prepare(ring_, h), fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_,
                       SOCK_CLOEXEC);
}

PollOp::PollOp(Ring& ring, int fd, unsigned events, Duration timeout)
    : ring_(ring), fd_(fd), events_(events), has_timeout_(true), ts_(ToTimespec(timeout)) {}

void PollOp::await_suspend(std::coroutine_handle<> h) {
  io_uring_sqe* sqe = Prepare(ring_, h);
  io_uring_prep_poll_add(sqe, fd_, events_);
  if (has_timeout_) {
    // IOSQE_IO_LINK + LINK_TIMEOUT: the kernel cancels the poll when the timeout fires, so one
    // completion (ours) tells which came first; the timeout's own completion is ignored.
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* timeout = ring_.GetSqe();
    io_uring_prep_link_timeout(timeout, &ts_, 0);
    io_uring_sqe_set_data(timeout, nullptr);
  }
}

SleepOp::SleepOp(Ring& ring, Duration d) : ring_(ring), ts_(ToTimespec(d)) {}

void SleepOp::await_suspend(std::coroutine_handle<> h) {
  io_uring_prep_timeout(Prepare(ring_, h), &ts_, 0, 0);
}

Task<int> WriteAll(Ring& ring, int fd, std::span<iovec> iov) {
  size_t first = 0;
  while (first < iov.size()) {
    int n = co_await WritevOp(ring, fd, iov.subspan(first));
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n < 0) {
      co_return n;
    }
    first = AdvanceIov(iov, first, static_cast<size_t>(n));
  }
  co_return 0;
}

size_t AdvanceIov(std::span<iovec> iov, size_t first, size_t written) {
  while (first < iov.size() && written >= iov[first].iov_len) {
    written -= iov[first].iov_len;
    ++first;
  }
  if (first < iov.size()) {
    iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + written;
    iov[first].iov_len -= written;
  }
  return first;
}

Task<bool> WaitPidfdFor(Ring& ring, int pidfd, Duration timeout) {
  while (true) {
    int rc = co_await PollOp(ring, pidfd, POLLIN, timeout);
    if (rc == -EINTR || rc == -EAGAIN) {
      continue;
    }
    co_return rc > 0;
  }
}

void TaskGroup::Spawn(Task<void> task) {
  ++running_;
  io::Spawn(Member(*this, std::move(task)));
}

Task<void> TaskGroup::Member(TaskGroup& group, Task<void> task) {
  co_await std::move(task);
  if (--group.running_ == 0 && group.joiner_) {
    std::exchange(group.joiner_, {}).resume();
  }
}

Task<void> TaskGroup::Join() {
  struct Awaiter {
    TaskGroup& group;
    bool await_ready() const noexcept { return group.running_ == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { group.joiner_ = h; }
    void await_resume() const noexcept {}
  };
  co_await Awaiter{*this};
}

Task<int> WaitPidfd(Ring& ring, int pidfd) {
  while (true) {
    int rc = co_await PollOp(ring, pidfd, POLLIN);
    if (rc == -EINTR || rc == -EAGAIN) {
      continue;
    }
    co_return rc < 0 ? rc : 0;
  }
}

}  // namespace mcpmw::io
