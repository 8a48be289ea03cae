#include "src/proxy/upstream.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <utility>

#include "src/common/log.h"

namespace mcpmw::proxy {

using framing::FrameResult;
using framing::FrameStatus;
using framing::Framing;

Upstream::Upstream(io::Ring& ring, pool::WorkerLease lease, SessionMuxOptions options,
                   size_t max_message_bytes)
    : ring_(ring),
      lease_(std::move(lease)),
      mux_(options),
      reader_(ring, lease_.stdout_fd, max_message_bytes, Framing::kNdjson),
      writer_(ring, lease_.stdin_fd, Framing::kNdjson) {
  if (lease_.initialize_result.has_value()) {
    if (absl::Status s = mux_.SetCachedInitialize(*lease_.initialize_result); !s.ok()) {
      LogError("upstream ", lease_.worker_id, ": ", s.message());
    }
  }
}

Upstream::~Upstream() { *self_ = nullptr; }

SessionId Upstream::Open(UpstreamPeer* peer) {
  SessionId id = mux_.OpenSession();
  peers_[id] = peer;
  return id;
}

void Upstream::Send(SessionId session, std::string_view line) {
  if (!alive_) {
    return;
  }
  ++requests_;
  Deliver(mux_.FromClient(session, line));
}

void Upstream::Close(SessionId session) {
  if (peers_.erase(session) == 0) {
    return;
  }
  if (alive_) {
    Deliver(mux_.CloseSession(session));
  }
}

void Upstream::Deliver(MuxOutput out) {
  if (!out.to_worker.empty() && alive_ && !stopping_) {
    for (std::string& line : out.to_worker) {
      writer_.EnqueueMessage(std::move(line));
    }
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      ring_.AtBatchEnd([self = self_] {
        if (Upstream* u = *self; u != nullptr) {
          u->flush_scheduled_ = false;
          u->writer_.StartFlush();
        }
      });
    }
  }
  for (Delivery& d : out.to_clients) {
    // A peer may close itself (or another session) from inside its callback: look up each time.
    auto it = peers_.find(d.session);
    if (it != peers_.end()) {
      it->second->OnUpstreamMessage(d.line);
    }
  }
}

io::Task<void> Upstream::Run() {
  running_ = true;
  while (!stopping_) {
    int n = co_await reader_.Fill();
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    while (true) {
      FrameResult r = reader_.Next();
      if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
        break;
      }
      if (r.status == FrameStatus::kFrame) {
        Deliver(mux_.FromWorker(r.payload));
      } else if (r.status == FrameStatus::kOversized) {
        LogError("upstream ", lease_.worker_id, ": a message of ", r.frame_bytes,
                 "+ bytes is over the limit; dropped");
      }
      reader_.Consume(r.consumed);
    }
  }
  if (!stopping_) {
    alive_ = false;
    std::string how = "the MCP server " + lease_.worker_id + " exited";
    Deliver(mux_.WorkerExited(how));
    // Copy: peers rebind (and unregister) from inside the callback.
    std::vector<UpstreamPeer*> peers;
    peers.reserve(peers_.size());
    for (auto& [id, peer] : peers_) {
      peers.push_back(peer);
    }
    peers_.clear();
    for (UpstreamPeer* peer : peers) {
      peer->OnUpstreamGone(how);
    }
  }
  alive_ = false;
  co_await writer_.Close();
  running_ = false;
  if (stop_waiter_) {
    std::exchange(stop_waiter_, {}).resume();
  }
}

namespace {
struct StopAwaiter {
  std::coroutine_handle<>* slot;
  bool done;
  bool await_ready() const noexcept { return done; }
  void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
  void await_resume() const noexcept {}
};
}  // namespace

io::Task<void> Upstream::Stop() {
  stopping_ = true;
  peers_.clear();
  if (!running_) {
    co_return;
  }
  reader_.CancelRead();
  co_await StopAwaiter{&stop_waiter_, !running_};
}

// ---- LeaseBroker ------------------------------------------------------------------------------

struct LeaseBroker::Wait {
  std::string profile;
  std::optional<absl::StatusOr<pool::WorkerLease>> result;
  std::coroutine_handle<> handle;
};

struct LeaseBroker::Awaiter {
  LeaseBroker& broker;
  Wait& wait;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    wait.handle = h;
    ++broker.outstanding_;
    Wait* w = &wait;
    LeaseBroker* b = &broker;
    broker.threads_.emplace_back([b, w] {
      w->result.emplace(b->pools_.Lease(w->profile));
      b->Finish(w);
    });
  }
  void await_resume() const noexcept {}
};

LeaseBroker::LeaseBroker(io::Ring& ring, pool::PoolManager& pools)
    : ring_(ring), pools_(pools), event_fd_(::eventfd(0, EFD_CLOEXEC)) {}

LeaseBroker::~LeaseBroker() {
  for (std::thread& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

void LeaseBroker::Finish(Wait* wait) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_.push_back(wait);
  }
  uint64_t one = 1;
  if (::write(event_fd_.Get(), &one, sizeof(one)) < 0) {
    LogError("lease broker: cannot signal the reactor (", ErrnoText(errno), ")");
  }
}

io::Task<absl::StatusOr<pool::WorkerLease>> LeaseBroker::Lease(std::string profile) {
  Wait wait;
  wait.profile = std::move(profile);
  co_await Awaiter{*this, wait};
  co_return std::move(*wait.result);
}

io::Task<void> LeaseBroker::Run() {
  uint64_t count = 0;
  while (!stopped_) {
    io::ReadOp read(ring_, event_fd_.Get(),
                    std::span<char>(reinterpret_cast<char*>(&count), sizeof(count)));
    pending_read_ = &read;
    int n = co_await read;
    pending_read_ = nullptr;
    if (n < 0 && n != -EINTR && n != -EAGAIN) {
      break;
    }
    std::vector<Wait*> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(done_);
    }
    for (Wait* w : done) {
      --outstanding_;
      w->handle.resume();
    }
    if (stop_pending_ && outstanding_ == 0) {
      break;
    }
  }
}

void LeaseBroker::Stop() {
  if (outstanding_ > 0) {
    stop_pending_ = true;  // Run() returns once the last lease thread has reported
    return;
  }
  stopped_ = true;
  if (pending_read_ != nullptr) {
    ring_.Cancel(pending_read_);
  }
}

}  // namespace mcpmw::proxy
