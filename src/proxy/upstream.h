// mcpmw proxy: one leased worker driven from a gateway reactor (ARCHITECTURE.md §1, §6).
//
//   gateway session ─► Upstream::Send ─► SessionMux::FromClient ─► FrameWriter ─► worker stdin
//   gateway session ◄─ UpstreamPeer   ◄─ SessionMux::FromWorker  ◄─ FrameReader ◄─ worker stdout
//
// An Upstream owns a pool lease (its pipes) and a SessionMux, so one worker can serve one session
// (`exclusive`) or many (`shared`) with the same code: every client session is a mux session
// whose ids and progress tokens are remapped, and every line the worker sends is delivered to the
// one peer it belongs to. When the worker's stdout ends (it exited or was killed), the mux turns
// the requests in flight into errors, each peer hears OnUpstreamGone, and the Upstream is dead:
// the owner releases the lease and binds new sessions to another worker.
//
// LeaseBroker turns PoolManager::Lease — which blocks, and may wait in the profile's queue — into
// an awaitable for the reactor: each lease runs on a short-lived thread and its result comes back
// through an eventfd the reactor reads.
//
// Threading: an Upstream and its peers belong to the reactor that created it. Peers may call
// Send/Close from inside their callbacks.
#pragma once

#include <sys/types.h>

#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "pool/pool_manager.h"
#include "src/common/fd.h"
#include "src/framing/framed_stream.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "src/proxy/session_mux.h"

namespace mcpmw::proxy {

// What a gateway session hears from its worker.
class UpstreamPeer {
 public:
  virtual ~UpstreamPeer() = default;
  // One complete JSON-RPC message for this session (ids and tokens already restored).
  virtual void OnUpstreamMessage(std::string_view line) = 0;
  // The worker is gone; in-flight requests were already answered with errors through
  // OnUpstreamMessage. The session must bind to another Upstream (or end).
  virtual void OnUpstreamGone(std::string_view how) = 0;
};

class Upstream {
 public:
  // Takes the lease's pipes (borrowed until the owner releases the lease). With a prewarmed
  // lease the mux answers every session's initialize from the cached result.
  Upstream(io::Ring& ring, pool::WorkerLease lease, SessionMuxOptions options,
           size_t max_message_bytes);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Reads the worker until its stdout ends or Stop(). Run it in the owner's TaskGroup.
  io::Task<void> Run();
  // Stops reading and writing (the owner then releases the lease, which stops the worker when
  // it is exclusive). Peers are not called. Completes once Run() has returned.
  io::Task<void> Stop();

  // A new mux session for `peer`, which must outlive it or Close() it first.
  SessionId Open(UpstreamPeer* peer);
  // One message from `session`'s client: a complete JSON text without its newline.
  void Send(SessionId session, std::string_view line);
  // Ends the session (its in-flight requests are cancelled at the worker). The peer hears
  // nothing more.
  void Close(SessionId session);

  bool alive() const { return alive_; }
  size_t sessions() const { return peers_.size(); }
  uint64_t requests() const { return requests_; }
  const pool::WorkerLease& lease() const { return lease_; }
  // The worker's initialize result (JSON object text) once known — from the prewarm handshake
  // or the first session's initialize answer; empty before.
  std::string_view initialize_result() const { return mux_.CachedInitialize(); }

 private:
  void Deliver(MuxOutput out);

  io::Ring& ring_;
  pool::WorkerLease lease_;
  SessionMux mux_;
  framing::FrameReader reader_;
  framing::FrameWriter writer_;
  absl::flat_hash_map<SessionId, UpstreamPeer*> peers_;
  uint64_t requests_ = 0;
  bool alive_ = true;
  bool running_ = false;
  bool stopping_ = false;
  std::coroutine_handle<> stop_waiter_;
  // What to the worker is written once per batch of completions (Ring::AtBatchEnd): the requests
  // of many clients in one writev, and the worker woken once for them.
  bool flush_scheduled_ = false;
  // Lets a scheduled flush find out that this Upstream is gone (null after destruction).
  std::shared_ptr<Upstream*> self_ = std::make_shared<Upstream*>(this);
};

// Leases from a PoolManager without blocking the reactor.
class LeaseBroker {
 public:
  // `ring` is the reactor that awaits; Run() must be running on it for leases to complete.
  LeaseBroker(io::Ring& ring, pool::PoolManager& pools);
  ~LeaseBroker();  // joins every lease thread (the pool must be shut down first, or leases done)
  LeaseBroker(const LeaseBroker&) = delete;
  LeaseBroker& operator=(const LeaseBroker&) = delete;

  // Reads completions until Stop(). Run it in the owner's TaskGroup.
  io::Task<void> Run();
  // Run() returns now, or once every lease in progress has reported (shut the pool down first so
  // queued leases fail fast).
  void Stop();

  // Leases a worker of `profile`; the error is PoolManager::Lease's.
  io::Task<absl::StatusOr<pool::WorkerLease>> Lease(std::string profile);

 private:
  struct Wait;
  struct Awaiter;
  void Finish(Wait* wait);

  io::Ring& ring_;
  pool::PoolManager& pools_;
  UniqueFd event_fd_;
  std::mutex mu_;
  std::vector<Wait*> done_;  // guarded by mu_
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  bool stop_pending_ = false;
  size_t outstanding_ = 0;  // leases whose thread has not reported back yet
  io::ReadOp* pending_read_ = nullptr;
};

}  // namespace mcpmw::proxy
