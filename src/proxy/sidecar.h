// mcpmw proxy: the sidecar session — one MCP client on stdio, one governed MCP server child.
//
//   client stdin ─► FrameReader ─► EnvelopeReader ─► track / answer / buffer ─► FrameWriter ─►
//   server client stdout ◄─ FrameWriter ◄─ track / answer ◄─ EnvelopeReader ◄─ FrameReader ◄─
//   server stdout
//
// Both directions carry every MCP message kind: requests, responses, notifications, and the
// server's own requests (sampling, elicitation, roots, ping). Each direction keeps an in-flight
// table of requests awaiting a response. mcpmw answers by itself only when it must: a message
// that is not JSON (-32700) or not JSON-RPC (-32600), a frame over the size limit (-32003), a
// request in flight when the server died (-32000), a request it cannot deliver (-32001), or,
// with a request timeout, a request the server did not answer in time (-32001, and the server
// gets `notifications/cancelled` for it; its late answer is dropped).
//
// Server lifecycle: spawned through the governor's decision, with the containment of its profile
// (pool::Spawn with the profile's environment, cwd and sandbox plan: process group, parent-death
// signal, no_new_privs, rlimits, a cgroup per start, seccomp, namespaces); when it dies, every
// client request in flight is answered with an error at once, it is restarted after a backoff
// (bounded), the client's `initialize` and `notifications/initialized` are replayed to the new
// process (its initialize response is swallowed), and what the client sent meanwhile is buffered
// (bounded) and delivered afterwards. On client EOF or SIGTERM/SIGINT: the server's stdin is
// closed, then SIGTERM after the kill timeout, then SIGKILL after another kill timeout.
//
// The server is the sidecar's one exclusive worker, but the sidecar supervises it itself rather
// than through a pool::PoolManager: it needs the exit status (for its exit code and the restart
// decision), stdin-close-first shutdown and the restart replay, none of which a lease exposes.
// The launch path is the pool's (Profile → sandbox::Plan → Spawn), so the containment is the same.
//
// Single-threaded: everything runs on the ring passed in.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "pool/process.h"
#include "pool/profile.h"
#include "pool/sandbox/sandbox.h"
#include "src/common/clock.h"
#include "src/framing/framed_stream.h"
#include "src/io/ring.h"
#include "src/jsonrpc/envelope.h"
#include "src/proxy/governance.h"

namespace mcpmw::proxy {

struct SidecarOptions {
  // The server: argv (already approved by the governor), environment (allowlist and values),
  // working directory and sandbox Spec; usually pool::ProfileFromCommandLine plus the containment
  // flags, or a `--profile` file. Only those fields are read: the pool settings (minWarm,
  // readiness, recycling, …) do not apply to the sidecar's one worker.
  pool::Profile server;
  // `server.sandbox` planned against this host (pool::sandbox::Plan), applied at every start of
  // the server; each start gets its own cgroup, torn down when that process is reaped. Null: no
  // sandbox steps (pool::Spawn's process group, parent-death signal and fd closing still apply).
  // Borrowed: must outlive the session.
  const pool::sandbox::SandboxPlan* sandbox = nullptr;
  size_t max_message_bytes = 16 * 1024 * 1024;
  // How to frame messages to the server. kUnknown (auto): the server's own framing once it has
  // written something; before that newline-delimited JSON, the MCP standard — or, with
  // `server_framing_mirrors_client`, whatever the client uses (the prototype's servers spoke
  // Content-Length like its clients).
  framing::Framing server_framing = framing::Framing::kUnknown;
  bool server_framing_mirrors_client = false;
  int max_restarts = 3;
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds kill_timeout{3000};
  // Client bytes held while the server restarts; beyond this, requests get -32001.
  size_t restart_buffer_bytes = 8 * 1024 * 1024;
  // A restarted server that does not answer the replayed initialize within this is killed (and
  // counts as a failed restart), so held client messages never wait forever.
  std::chrono::milliseconds replay_timeout{30000};
  // A server that ran this long before dying starts with a fresh restart budget.
  std::chrono::milliseconds restart_budget_reset{60000};
  // Hang detection: a client request the server has not answered this long after mcpmw received
  // it is answered with -32001 (data {"reason":"request-timeout","timeoutMs":N}), the server gets
  // `notifications/cancelled` for it (except `initialize`, which MCP forbids cancelling) and its
  // late answer is dropped. Each `notifications/progress` the server sends for the request's
  // progress token restarts its clock, up to jsonrpc::kProgressCapFactor times this in all (a hard
  // maximum: a server that reports progress forever still ends). Zero: no timeout.
  std::chrono::milliseconds request_timeout{0};
  // How long the reactor polls for more work before sleeping (see io::Ring::set_busy_poll).
  std::chrono::microseconds busy_poll{50};
  int client_in = 0;
  int client_out = 1;
  int signal_fd = -1;  // signalfd for SIGINT/SIGTERM (shutdown) and SIGHUP (reload), or -1
  // Governs client requests (policy, limits, redaction, audit). Null: a plain relay. Borrowed:
  // must outlive the session. With a policy file, the file is watched (inotify) and reloaded
  // on change and on SIGHUP.
  Governance* governance = nullptr;
};

// Process exit codes of `mcpmw stdio` (documented in the README).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;    // the server could not be started / kept running
inline constexpr int kExitUsage = 2;      // bad flags or a denied command
inline constexpr int kExitNoIoUring = 3;  // the kernel cannot run mcpmw

class Sidecar {
 public:
  Sidecar(io::Ring& ring, SidecarOptions options);
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Runs the session to its end and returns the process exit code: 0 after a client-initiated
  // shutdown or a server that exited 0 by itself; the server's exit code (1 for a signal) when
  // it kept dying past the restart budget; 1 when it could not be started.
  io::Task<int> Run();

 private:
  enum class ServerState { kStarting, kReplaying, kRunning, kBackoff, kGone };
  struct Pending {
    std::string method;
    std::unique_ptr<Exchange> exchange;  // when governed
    // Client requests with a request timeout: when mcpmw gives up on it, and the raw token of
    // params._meta.progressToken (empty if none), whose progress pushes the deadline back.
    TimePoint deadline = TimePoint::max();
    TimePoint hard_deadline = TimePoint::max();  // the latest progress can push `deadline` to
    std::string progress_token;
  };

  io::Task<void> ClientPump();
  io::Task<void> SignalWatch();
  io::Task<void> ServerLoop();
  io::Task<void> ServerPump(uint64_t generation);
  io::Task<bool> StartServer();
  io::Task<void> StopServer();
  io::Task<void> Backoff();
  io::Task<void> DrainGuard(uint64_t generation);
  io::Task<void> WaitServerPump();
  io::Task<void> ReplayWatchdog(uint64_t generation);
  io::Task<void> StopIfStdoutClosedButAlive(uint64_t generation);
  io::Task<void> BundleWatch();
  // One timer for every client request in flight: sleeps until the earliest deadline (parked
  // while nothing is in flight) and times out what is due. Runs only with a request timeout.
  io::Task<void> RequestTimer();
  // Answers, cancels and forgets the client requests whose deadline is at or before `now`.
  void TimeOutDueRequests(TimePoint now);
  // Restarts the clock of the client request whose progress token is that of the server's
  // notifications/progress in `payload`.
  void ExtendDeadlineOnProgress(std::string_view payload);
  void ReloadBundle(std::string_view why);
  // Completes the governed exchange of a client request that ends without the server's answer.
  void AbandonPending(Pending& pending, int code, std::string_view message);
  // The same for the request with raw id `id`, which then leaves the in-flight table; false when
  // it was not in flight.
  bool AbandonInFlight(std::string_view id, int code, std::string_view message);

  // Gives env_'s id, request id and progress token their canonical spelling when they are strings
  // with escapes (the in-flight tables are keyed by it).
  void CanonicalizeTokens();
  void HandleClientFrame(const framing::FrameResult& frame);
  void HandleServerFrame(const framing::FrameResult& frame);
  // Sends a client message to the server (or holds it while the server restarts): `rewritten`
  // when a governance stage changed it, else the frame's own bytes.
  void ForwardToServer(const framing::FrameResult& frame, std::optional<std::string> rewritten,
                       const jsonrpc::Envelope& env);
  void ReplyToClient(std::string_view id, int code, std::string_view message,
                     std::string_view data_json = {});
  // Answers every client request in flight with this error. The held copies of those requests
  // are dropped with them: an answered request must not reach a later server.
  void FailInFlight(int code, std::string_view message, std::string_view data_json);
  // With a policy, a client's JSON-RPC batch is answered member by member with an error (one
  // batch answer) and nothing of it reaches the server: the chain governs one message at a time.
  void RefuseClientBatch(std::string_view payload);
  // With a policy, a server's batch is not forwarded; each client request it answers gets an error
  // instead of an answer the chain never saw.
  void WithholdServerBatch(std::string_view payload);
  void BeginShutdown(std::string_view why);
  void DeliverHeld();
  // Ends the session: cancels the reads that would otherwise keep it alive.
  void Finish();

  io::Ring& ring_;
  SidecarOptions options_;
  jsonrpc::EnvelopeReader envelope_reader_;
  jsonrpc::Envelope env_;
  std::array<std::string, 3> token_storage_;  // env_'s canonical tokens (CanonicalizeTokens)

  framing::FrameReader client_reader_;
  framing::FrameWriter client_writer_;
  framing::FrameReader server_reader_;
  framing::FrameWriter server_writer_;

  pool::Child child_;
  uint64_t generation_ = 0;
  uint64_t forced_stop_generation_ = 0;  // a server mcpmw stopped because it misbehaved
  ServerState state_ = ServerState::kStarting;
  TimePoint started_at_{};
  int restarts_used_ = 0;
  int exit_code_ = kExitOk;
  bool shutting_down_ = false;
  bool finished_ = false;
  bool server_framing_known_ = false;  // learned from the server's first frame
  bool server_pump_done_ = true;
  std::coroutine_handle<> server_pump_waiter_;
  io::SleepOp* backoff_sleep_ = nullptr;
  io::SleepOp* drain_guard_ = nullptr;
  io::SleepOp* replay_watchdog_ = nullptr;
  io::ReadOp* signal_read_ = nullptr;
  io::Operation* bundle_watch_read_ = nullptr;
  io::SleepOp* request_timer_sleep_ = nullptr;
  bool request_timer_parked_ = false;  // sleeping with nothing in flight: a request wakes it

  // Client requests awaiting the server's response, by raw id token.
  absl::flat_hash_map<std::string, Pending> client_in_flight_;
  // Server requests awaiting the client's response, by raw id token; ids of a dead server.
  absl::flat_hash_map<std::string, Pending> server_in_flight_;
  absl::flat_hash_set<std::string> orphaned_server_ids_;
  // Client requests mcpmw timed out and cancelled: the server's late answers to them are dropped.
  // Ids are not remapped, so a client that reuses such an id takes it off this set.
  absl::flat_hash_set<std::string> timed_out_ids_;

  // The client's handshake, replayed to every restarted server.
  std::string initialize_params_;  // minified params of the client's initialize, "" if none yet
  bool initialized_notified_ = false;
  std::string replay_id_;  // id of the replayed initialize awaiting its response

  // Client messages held while the server is not running (payload copies), with the raw id of
  // the request each holds (empty for other messages).
  struct HeldMessage {
    std::string request_id;
    std::string payload;
  };
  std::deque<HeldMessage> held_;
  size_t held_bytes_ = 0;

  io::TaskGroup tasks_;
};

// Best effort: the raw id token of a message whose start is in `prefix` (an oversized frame that
// was never parsed), when `"id"` appears as a top-level member before `"params"`. Empty if not.
std::string_view SniffId(std::string_view prefix);

}  // namespace mcpmw::proxy
