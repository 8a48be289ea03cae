// mcpmw transport/http: the shared gateway — Streamable HTTP in front of pooled MCP servers.
//
//   HTTP request ─► admission (Host, Origin) ─► identity ─► route
//       /servers/<name>/mcp   one upstream profile
//       /mcp                  every profile, tools named <server>__<tool>
//       /metrics /healthz /readyz /.well-known/oauth-protected-resource
//   POST (one JSON-RPC message) ─► era:
//       2025-06-18 / 2025-11-25   a session (Mcp-Session-Id, bound to the principal), answers as
//                                 JSON or as an SSE stream when the server speaks first
//                                 (progress, sampling, elicitation, logs); GET opens the
//                                 session's own stream; Last-Event-ID resumes a stream from the
//                                 session's bounded event buffer; DELETE ends the session
//       2026-07-28                stateless: every POST stands alone; mcpmw holds a legacy
//                                 session with the worker for it; closing the answer stream
//                                 cancels the request
//   ─► Governance (the policy chain, audit) ─► Upstream (a pooled worker, SessionMux) and back.
//
// Sessions live on the gateway's reactor; nothing here takes a lock. A dropped connection is not
// a cancellation in the 2025 era: the request keeps running and its events wait in the buffer
// for the client to resume. Sessions idle for longer than the configured timeout are ended.
//
// Threading: everything runs on the Ring's thread (the pool manager and the audit writer have
// their own). Drain() is the SIGTERM path.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "pool/pool_manager.h"
#include "src/common/clock.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/stage.h"
#include "src/proxy/governance.h"
#include "src/proxy/upstream.h"
#include "src/telemetry/metrics.h"
#include "src/transport/http/gateway_config.h"
#include "src/transport/http/mcp_headers.h"
#include "src/transport/http/server.h"

namespace mcpmw::http {

// What identity says about one request.
struct AuthOutcome {
  bool ok = false;
  middleware::Principal principal;
  std::string credential_id;     // for the log: an API key id, "jwt:<iss>/<sub>", "anonymous"
  int status = 401;              // 401 or 403 when !ok
  std::string www_authenticate;  // the WWW-Authenticate value when !ok
  std::string error;             // the OAuth error code ("invalid_token", …); empty: none
  std::string message;           // for the person reading the error
};
using Authenticate = std::function<AuthOutcome(const Request&)>;

// Optional admission of a new session for a tenant (tenant quotas); returns an error to refuse.
struct SessionAdmission {
  std::function<absl::Status(std::string_view tenant)> open;
  std::function<void(std::string_view tenant)> close;
};

struct GatewayDeps {
  io::Ring* ring = nullptr;
  pool::PoolManager* pools = nullptr;
  proxy::Governance* governance = nullptr;
  Authenticate authenticate;                // required
  std::string protected_resource_metadata;  // JSON served at the well-known path
  SessionAdmission admission;               // optional
  const Clock* clock = nullptr;
};

class Gateway final : public Handler {
 public:
  Gateway(const GatewayConfig& config, GatewayDeps deps);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds the shared profiles' workers and runs the background work (leases, keep-alives, idle
  // sessions) until Drain() finishes. Run it on the ring.
  io::Task<void> Run();

  void OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) override;

  // The admin listener's requests: GET /admin/bundles, POST /admin/rollback, GET /admin/pools,
  // POST /admin/drain.
  Handler& admin() { return admin_handler_; }

  // SIGTERM: refuse new sessions and requests (503), let in-flight calls finish (up to the
  // config's drainTimeout), then end every session and stop the upstreams. Completes when done.
  io::Task<void> Drain();
  bool draining() const { return draining_; }
  // Set by POST /admin/drain; the owner watches it.
  std::function<void()> on_drain_requested;

  // Counters for tests and /metrics.
  size_t session_count() const { return sessions_.size(); }
  size_t in_flight() const { return in_flight_; }
  bool ready() const;

  struct Session;
  struct Binding;
  struct Pending;
  struct Stream;
  struct Server;

 private:
  class AdminHandler final : public Handler {
   public:
    explicit AdminHandler(Gateway& g) : g_(g) {}
    void OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) override;

   private:
    Gateway& g_;
  };

  // Routing and admission.
  bool Admit(const Request& request, ResponseStream& stream);
  void ServeMcp(Request& request, std::shared_ptr<ResponseStream> stream, Server* server);
  void ServeMetrics(ResponseStream& stream);
  // Checks Accept and Content-Type and reads the body's envelope; answers (406, 415, 400) and
  // returns false when the POST cannot go on.
  bool ReadPost(const Request& request, ResponseStream& stream, jsonrpc::Envelope* env);
  void HandlePost(Request& request, std::shared_ptr<ResponseStream> stream, Server* server,
                  const AuthOutcome& auth, const jsonrpc::Envelope& env);
  void HandleGet(Request& request, std::shared_ptr<ResponseStream> stream, Session& session);
  void HandleDelete(const std::shared_ptr<ResponseStream>& stream, Session& session);
  void HandleStateless(const Request& request, std::shared_ptr<ResponseStream> stream,
                       Server* server, const AuthOutcome& auth, const jsonrpc::Envelope& env,
                       const McpRequestHeaders& headers, const StatelessBody& body);

  // Sessions.
  Session* NewSession(const AuthOutcome& auth, Server* server, bool stateless);
  void EndSession(Session& session, std::string_view why);
  Binding* BindingFor(Session& session, Server& server);
  void StartBinding(Session& session, Server& server);
  io::Task<void> Bind(std::shared_ptr<Binding> binding);
  void SendToUpstream(Binding& binding, std::string line);
  // Answers a call the chain refused, or forwards it (`forwarded`, unless a stage rewrote it) to
  // `binding` and tracks it until its answer.
  void StartCall(Session& session, std::shared_ptr<ResponseStream> stream, Binding& binding,
                 const jsonrpc::Envelope& env, std::string_view forwarded,
                 std::unique_ptr<proxy::Exchange> exchange);
  void ClientMessage(Session& session, std::shared_ptr<ResponseStream> stream,
                     const jsonrpc::Envelope& env, std::string_view payload);
  void AggregatedRequest(Session& session, std::shared_ptr<ResponseStream> stream,
                         const jsonrpc::Envelope& env, std::string_view payload);
  void FromUpstream(Binding& binding, std::string_view line);
  void UpstreamGone(Binding& binding, std::string_view how);
  void FinishPending(Session& session, Pending& pending, std::string_view json);
  // A client's notifications/cancelled: its request is complete (as cancelled) here too.
  void ClientCancelled(Session& session, const jsonrpc::Envelope& env);
  // One server's part of an aggregated tools/list arrived (`result` empty: none).
  void PartDone(Session& session, const std::string& fan_key, const std::string& server,
                std::string result);
  // One page of a server's part that has more pages after it.
  void AddPart(Session& session, const std::string& fan_key, const std::string& server,
               std::string result);
  // Asks `b`'s server for the tools/list page at `cursor_json` (a JSON string), through the
  // chain, as part of the fan-in `fan_key`. False when it could not be asked (the chain refused,
  // the binding or the fan-in is gone): the part is then done.
  bool FetchToolsPage(Session& session, Binding& b, const std::string& fan_key,
                      std::string_view cursor_json, size_t page);
  void Emit(Session& session, Stream& stream, std::string json, bool final);
  void AttachStream(Session& session, Stream& stream, std::shared_ptr<ResponseStream> http);
  Stream& NewStream(Session& session, std::shared_ptr<ResponseStream> http, bool is_get);
  void MaybeDestroyStateless(Session& session);

  // Answers.
  void ReplyJsonRpcError(ResponseStream& stream, int http_status, std::string_view id, int code,
                         std::string_view message, std::string_view data_json = {});
  // 200 application/json, with the session's Mcp-Session-Id unless it is stateless.
  void RespondJson(const Session& session, ResponseStream& stream, std::string body);
  void ReplyPlain(ResponseStream& stream, int status, std::string_view message,
                  std::vector<std::pair<std::string, std::string>> headers = {});

  // Background.
  // Sleeps `period`; *slot holds the sleep meanwhile, so Drain can cancel it. False once the
  // gateway stopped.
  io::Task<bool> Pause(Duration period, io::SleepOp** slot);
  io::Task<void> KeepAlives();
  // With config.request_timeout: answers -32001 to each call its worker has not answered (nor
  // reported progress for) within the timeout, and cancels it at the worker.
  io::Task<void> RequestTimeouts();
  io::Task<void> LeaseShared(Server& server);
  // Wraps a lease in an Upstream and reads it in the background; `shared` (or null for an
  // exclusive worker) is the profile that re-leases when this worker, its current one, exits.
  std::shared_ptr<proxy::Upstream> StartUpstream(pool::WorkerLease lease, Server* shared);
  void CountCall(const Session& session, std::string_view method, std::string_view status,
                 std::string_view server, Duration latency);
  // The series CountCall updates for one (tenant, method, status, server), looked up in the
  // registry once and kept (the registry's references are stable): building and sorting the
  // label key on every call cost more than the rest of the accounting.
  struct CallSeries {
    telemetry::Counter* calls = nullptr;
    telemetry::Histogram* latency = nullptr;  // created at the first call with a latency
  };
  CallSeries& SeriesFor(std::string_view tenant, std::string_view method, std::string_view status,
                        std::string_view server);

  const GatewayConfig& config_;
  GatewayDeps deps_;
  io::Ring& ring_;
  AdminHandler admin_handler_;
  std::unique_ptr<proxy::LeaseBroker> broker_;
  io::TaskGroup tasks_;
  std::vector<std::unique_ptr<Server>> servers_;
  absl::flat_hash_map<std::string, std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<Session>> ended_;  // ended, freed at the next safe point
  jsonrpc::EnvelopeReader reader_;
  std::string scratch_;  // a padded copy of one message for the envelope reader
  size_t in_flight_ = 0;
  bool draining_ = false;
  bool stopped_ = false;
  io::SleepOp* keepalive_sleep_ = nullptr;
  io::SleepOp* timeout_sleep_ = nullptr;
  uint64_t stateless_sequence_ = 0;
  uint64_t page_sequence_ = 0;  // ids of the tools/list pages mcpmw asks for itself
  // SeriesFor's cache, keyed by the four label values joined with NULs; bounded, because method
  // names come from clients (past the bound every call looks its series up again).
  absl::flat_hash_map<std::string, CallSeries> call_series_;
  std::string series_key_;
  CallSeries uncached_series_;
};

}  // namespace mcpmw::http
