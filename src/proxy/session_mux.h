// mcpmw proxy: many client sessions on one MCP server process ("shared" isolation).
//
//   client A ─┐                                                               ┌─► client A
//   client B ─┼─► FromClient ─► worker stdin  ·  worker stdout ─► FromWorker ─┼─► client B
//   client C ─┘   (ids and tokens remapped)        (ids and tokens restored)  └─► client C
//
// The pool hands one worker to many sessions; this multiplexer makes sure no session can see or
// answer another's traffic. It is pure: no I/O, no clock, single-threaded. The caller owns the
// pipes, feeds it one complete JSON-RPC message (one line, no framing) at a time and writes
// what it returns; every returned line is a complete message without its trailing newline.
//
// Ids and tokens on the worker side:
//   - Every client request forwarded to the worker gets a fresh worker id, a JSON integer from a
//     per-mux counter (1, 2, 3, …), so ids from different sessions can never collide there.
//     The mux's own requests (the unsubscribe of a closing session) get string ids
//     ("mcpmw-unsubscribe-N") that no client request ever has; their answers are dropped.
//   - A request's `params._meta.progressToken` becomes that request's worker id (an integer):
//     unique across active requests because ids are. `notifications/progress` from the worker is
//     delivered only to the session that owns the token, with the original token restored byte
//     for byte; progress that arrives after its request completed is dropped.
//   - A response from the worker goes only to the session whose request it answers, with the
//     client's original id token restored byte for byte (`1` and `"1"` stay distinct).
//   - `notifications/cancelled` from a client is forwarded with the worker id of that session's
//     request, and the request is forgotten at once (the spec lets the sender ignore a late
//     answer, and servers often send none): its late response is dropped. A cancel naming an id
//     the session has not in flight is dropped. `initialize` cannot be cancelled.
//   - Server-to-client requests get a per-session id (an integer counter per session) so one
//     session cannot answer a request routed to another; the client's answer goes back to the
//     worker with the worker's original id. A client response naming an id it was not given is
//     dropped.
//
// Handshake: the worker is initialized once. The first session's `initialize` goes to the worker
// (its capabilities and clientInfo are what the worker sees); sessions that ask while it is in
// flight wait for it; once answered, every later session's `initialize` is answered locally
// from the cached result with its own id. `SetCachedInitialize()` supplies that result for a
// worker the pool initialized ahead. A later client asking for a different protocolVersion gets
// the worker's negotiated version in the cached result — what a server may answer per spec; a
// client that cannot speak it disconnects. `notifications/initialized` reaches the worker once.
// If the worker rejects the first initialize, that session gets the error and the next waiting
// session's own initialize is forwarded.
//
// Worker notifications: `notifications/progress` and `notifications/cancelled` are routed as
// above; `notifications/resources/updated` goes to the sessions subscribed to that uri; every
// other notification (`notifications/message`, `notifications/*/list_changed`, …) is broadcast
// to every session whose initialize has been answered. Shared mode therefore suits servers
// whose log messages and list changes are not private to one caller; `logging/setLevel` and
// the subscription set are properties of the worker, shared by all sessions.
//
// Subscriptions are reference-counted per uri: every `resources/subscribe` is forwarded and
// counted at once (undone if the worker refuses it), so the count always covers what the worker
// will have seen; `resources/unsubscribe` is answered locally while another session still holds
// the uri, forwarded otherwise; a closing session's last holds are released with an internal
// `resources/unsubscribe`.
//
// Server-to-client requests (sampling/createMessage, elicitation/create, roots/list): routed to
// the session that owns the request they relate to, found by `params._meta.progressToken` when it
// is a worker token of a request in flight, or else to the only session with requests in flight.
// Otherwise the mux answers the worker itself with error kSharedNoSession ("cannot be attributed
// to a client session in shared mode"), never guessing. `ping` from the worker is answered by the
// mux itself (it is the worker's peer, and alive).
//
// Bounds: all per-request state is erased on completion, cancellation or CloseSession. A session
// may have at most `max_in_flight_per_session` requests in flight (beyond: error
// kSharedInFlightLimit) and `max_subscriptions_per_session` subscriptions; a message that repeats
// a member the mux rewrites (`id`, `params`, `requestId`, `_meta`, `progressToken`) is refused,
// so a worker can never read a value the mux did not map. Batches (2025-03-26 only) are refused
// with -32600.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "src/jsonrpc/envelope.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::proxy {

// The shared mode's error codes are jsonrpc::kSharedInFlightLimit and kSharedNoSession.
using jsonrpc::kSharedInFlightLimit;
using jsonrpc::kSharedNoSession;

using SessionId = uint64_t;

// One message for one client session.
struct Delivery {
  SessionId session = 0;
  std::string line;
};

// What the caller must write after one call. Lines to the worker go out in order, as do lines to
// each session.
struct MuxOutput {
  std::vector<std::string> to_worker;
  std::vector<Delivery> to_clients;
};

struct SessionMuxOptions {
  size_t max_in_flight_per_session = 256;
  size_t max_subscriptions_per_session = 256;
};

struct SessionCounts {
  size_t requests_in_flight = 0;         // client requests awaiting the worker (or the handshake)
  size_t server_requests_in_flight = 0;  // worker requests awaiting this client's answer
  size_t subscriptions = 0;
};

// Not thread-safe: one mux per worker, driven from the thread that owns the worker's pipes.
class SessionMux {
 public:
  explicit SessionMux(SessionMuxOptions options = {});
  SessionMux(const SessionMux&) = delete;
  SessionMux& operator=(const SessionMux&) = delete;

  // Supplies the worker's initialize result (the JSON object of `result`) for a worker whose
  // whole handshake, including `notifications/initialized`, was done ahead by the pool. Every
  // session's initialize is then answered from it. InvalidArgument when `result_json` is not a
  // JSON object; FailedPrecondition once a session's initialize has been forwarded.
  absl::Status SetCachedInitialize(std::string_view result_json);

  // A new session, with no traffic yet. Ids are never reused.
  SessionId OpenSession();

  // One message from `session`'s client. Input for an unknown or closed session is ignored
  // (empty output): a transport may still be draining it.
  MuxOutput FromClient(SessionId session, std::string_view line);

  // One message from the worker.
  MuxOutput FromWorker(std::string_view line);

  // Ends `session`: `notifications/cancelled` for each of its requests still in flight, an error
  // answer for each worker request it had not answered, and the release of subscriptions no
  // other session holds — all for the worker. Its state is forgotten; late answers are dropped.
  // An initialize in flight is not cancelled (the spec forbids it): its result still fills the
  // cache. Unknown session: empty output.
  MuxOutput CloseSession(SessionId session);

  // The worker exited: every client request in flight is answered with -32000 (retryable), and
  // the mux refuses new requests with -32001 from then on. Sessions stay open until closed; the
  // caller binds the survivors to a new worker with a new mux.
  MuxOutput WorkerExited(std::string_view how);

  // Counters. Counts() is nullopt for an unknown session.
  std::optional<SessionCounts> Counts(SessionId session) const;
  size_t TotalInFlight() const;   // client requests in flight, all sessions
  size_t WorkerInFlight() const;  // requests sent to the worker and not yet answered by it
  size_t SessionCount() const { return sessions_.size(); }
  // The worker's initialize result (a JSON object), once known; empty before.
  std::string_view CachedInitialize() const { return cached_initialize_; }

 private:
  enum class PendingKind : uint8_t { kPlain, kInitialize, kSubscribe };
  // A request sent to the worker, by worker id.
  struct Pending {
    SessionId session = 0;     // 0: its session closed (an orphaned initialize)
    std::string client_id;     // raw id token as the client sent it
    std::string client_token;  // raw progress token, or empty
    PendingKind kind = PendingKind::kPlain;
    std::string uri;  // kSubscribe: the uri whose hold this request added (undone on error)
  };
  // A worker request routed to a session, as that session knows it.
  struct ServerRequest {
    std::string worker_id;       // raw id token as the worker sent it
    std::string progress_token;  // raw params._meta.progressToken, or empty
  };
  struct RoutedServerRequest {
    SessionId session = 0;
    uint64_t local_id = 0;
  };
  struct Session {
    absl::flat_hash_map<std::string, uint64_t> requests;           // client raw id → worker id
    absl::flat_hash_map<uint64_t, ServerRequest> server_requests;  // local id → worker's
    uint64_t next_local_id = 1;
    absl::flat_hash_set<std::string> subscriptions;
    std::optional<std::string> waiting_initialize;  // raw id of an initialize held for the cache
    bool sent_initialize = false;
    bool ready = false;  // its initialize was answered: it receives broadcasts
  };
  enum class Handshake : uint8_t { kNone, kInFlight, kDone };

  void HandleClientRequest(SessionId sid, Session& s, std::string_view line, MuxOutput& out);
  void HandleClientNotification(SessionId sid, Session& s, std::string_view line, MuxOutput& out);
  void HandleClientResponse(Session& s, std::string_view line, MuxOutput& out);
  void HandleInitialize(SessionId sid, Session& s, std::string_view line, MuxOutput& out);
  // Sends the request in `env_` (read from `line`) to the worker under a fresh worker id.
  void Forward(SessionId sid, Session& s, std::string_view line, PendingKind kind,
               std::string_view uri, MuxOutput& out);
  void HandleWorkerResponse(std::string_view line, MuxOutput& out);
  void HandleWorkerRequest(std::string_view line, MuxOutput& out);
  void HandleWorkerNotification(std::string_view line, MuxOutput& out);
  // Answers every session waiting on the handshake from the cache.
  void AnswerWaiters(MuxOutput& out);
  // Forwards the initialize of the next waiting session (after the worker rejected one).
  void ForwardNextWaiter(MuxOutput& out);
  void Subscribe(Session& s, const std::string& uri);
  void Unsubscribe(Session& s, const std::string& uri);
  std::optional<SessionId> AttributeServerRequest() const;
  // Copies `line` into the padded buffer and reads its envelope into env_; returns the view of
  // the copy that env_'s views point into.
  std::string_view Load(std::string_view line);

  SessionMuxOptions options_;
  jsonrpc::EnvelopeReader reader_;
  jsonrpc::Envelope env_;
  std::string buffer_;  // the message being handled, followed by simdjson's padding

  SessionId next_session_ = 1;
  uint64_t next_worker_id_ = 1;
  uint64_t next_internal_id_ = 1;
  absl::flat_hash_map<SessionId, Session> sessions_;
  absl::flat_hash_map<uint64_t, Pending> pending_;                         // by worker id
  absl::flat_hash_map<std::string, RoutedServerRequest> server_requests_;  // by worker raw id
  absl::flat_hash_map<std::string, size_t> subscribers_;  // uri → sessions holding it

  Handshake handshake_ = Handshake::kNone;
  std::string cached_initialize_;  // the worker's initialize result (a JSON object)
  bool initialize_sent_ = false;   // a session's initialize went to the worker
  bool initialized_forwarded_ = false;
  std::deque<std::pair<SessionId, std::string>> initialize_waiters_;  // session, its message
  bool worker_gone_ = false;
};

}  // namespace mcpmw::proxy
