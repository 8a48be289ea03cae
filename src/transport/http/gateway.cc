#include "src/transport/http/gateway.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/framing/sse.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"
#include "src/proxy/aggregate.h"
#include "src/transport/http/mcp_headers.h"

namespace mcpmw::http {
namespace {

using jsonrpc::Envelope;
using jsonrpc::MessageKind;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kLatestSessionVersion = "2025-11-25";
constexpr std::string_view kSessionVersions[] = {"2025-03-26", "2025-06-18", "2025-11-25"};
constexpr std::string_view kInternalInitPrefix = "\"mcpmw-init-";

bool IsSessionVersion(std::string_view v) {
  return std::find(std::begin(kSessionVersions), std::end(kSessionVersions), v) !=
         std::end(kSessionVersions);
}

// 16 random bytes in hex: unguessable, visible ASCII (what Mcp-Session-Id must be).
std::string NewSessionId() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n <= 0 && errno != EINTR) {
      break;
    }
    got += n > 0 ? static_cast<size_t>(n) : 0;
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// Does the Accept header list `type` (or a wildcard covering it)?
bool Accepts(const std::string* accept, std::string_view type) {
  if (accept == nullptr) {
    return false;
  }
  std::string_view major = type.substr(0, type.find('/'));
  for (absl::string_view part : absl::StrSplit(*accept, ',')) {
    absl::string_view media = absl::StripAsciiWhitespace(part.substr(0, part.find(';')));
    if (absl::EqualsIgnoreCase(media, Sv(type)) || media == "*/*" ||
        absl::EqualsIgnoreCase(media, absl::StrCat(Sv(major), "/*"))) {
      return true;
    }
  }
  return false;
}

std::string HostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t end = host.find(']');
    return std::string(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
  }
  return std::string(host.substr(0, host.find(':')));
}

// {"current":"v2","versions":["v2","v1"],"generation":3} for the admin API.
std::string BundlesJson(const policy::BundleStore& store) {
  std::vector<std::string> versions = store.versions();
  std::string out = R"({"current":)";
  jsonrpc::AppendJsonString(versions.empty() ? "" : versions.front(), &out);
  out += R"(,"versions":[)";
  for (size_t i = 0; i < versions.size(); ++i) {
    if (i > 0) {
      out += ",";
    }
    jsonrpc::AppendJsonString(versions[i], &out);
  }
  absl::StrAppend(&out, R"(],"generation":)", store.generation(), "}");
  return out;
}

std::string ResultResponse(std::string_view id, std::string_view result) {
  return absl::StrCat(R"({"jsonrpc":"2.0","id":)", Sv(id), R"(,"result":)", Sv(result), "}");
}

}  // namespace

// ---- state ------------------------------------------------------------------------------------

struct Gateway::Server {
  std::string name;
  bool shared = false;
  std::shared_ptr<proxy::Upstream> upstream;  // shared isolation: the worker every session uses
  bool leasing = false;
  std::vector<std::weak_ptr<Binding>> waiting;  // bindings waiting for `upstream`
};

// One SSE (or JSON) answer channel of a session: a POST's answer or the session's GET stream.
struct Gateway::Stream {
  uint64_t number = 0;
  bool is_get = false;
  std::shared_ptr<ResponseStream> http;  // the live connection; null when detached
  bool sse = false;                      // answered as text/event-stream
  bool done = false;                     // a POST stream whose response went out
};

struct Gateway::Pending {
  enum class Kind : uint8_t { kCall, kInternalInit, kFanIn };
  Kind kind = Kind::kCall;
  std::string client_id;  // the raw id token the client sent
  std::string method;
  std::string progress_token;
  uint64_t stream = 0;
  Binding* binding = nullptr;
  std::unique_ptr<proxy::Exchange> exchange;
  TimePoint started{};
  TimePoint last_heard{};  // the last progress for it (requestTimeoutMs counts from the later of
                           // this and `started`)
  // kFanIn (an aggregated list): one answer per binding.
  size_t parts_waiting = 0;
  std::vector<std::pair<std::string, std::string>> parts;  // (server, result JSON)
  std::string fan_key;  // the key of the fan-in entry the parts report to
  size_t page = 1;      // a part: which page of its server's tools/list this request asks for
};

struct Gateway::Binding final : proxy::UpstreamPeer {
  Gateway* gateway = nullptr;
  Session* session = nullptr;
  Server* server = nullptr;
  size_t index = 0;  // in session->bindings
  std::shared_ptr<proxy::Upstream> upstream;
  proxy::SessionId mux = 0;
  bool ready = false;               // the worker session is initialized; lines flow
  bool synthetic_init = false;      // mcpmw does the handshake (stateless, aggregated, rebinds)
  bool dead = false;                // the session ended
  std::vector<std::string> queued;  // lines waiting for `ready`
  std::string init_result;          // the worker's initialize result, once known

  void OnUpstreamMessage(std::string_view line) override { gateway->FromUpstream(*this, line); }
  void OnUpstreamGone(std::string_view how) override { gateway->UpstreamGone(*this, how); }
};

struct Gateway::Session {
  struct Event {
    uint64_t id = 0;
    uint64_t stream = 0;
    std::string data;
    bool delivered = false;
  };
  std::string id;  // Mcp-Session-Id; for stateless sessions an internal name
  bool stateless = false;
  bool aggregated = false;
  Server* server = nullptr;  // null when aggregated
  middleware::Principal principal;
  std::string principal_key;  // the identity the session is bound to
  std::string tenant;         // as admitted (for the quota's Close)
  bool admitted = false;
  // The client's initialize params, for the handshakes mcpmw does on its behalf.
  std::string initialize_params = R"({"protocolVersion":"2025-06-18","capabilities":{},)"
                                  R"("clientInfo":{"name":"mcpmw-gateway","version":"0.1.0"}})";
  std::vector<std::shared_ptr<Binding>> bindings;
  std::vector<std::unique_ptr<Stream>> streams;
  std::deque<Event> events;
  uint64_t next_event = 1;
  uint64_t next_stream = 1;
  absl::flat_hash_map<std::string, std::unique_ptr<Pending>> pending;
  TimePoint last_active{};
  // Aggregated sessions: server-to-client request ids handed to the client → (binding, id).
  uint64_t next_s2c = 1;
  absl::flat_hash_map<std::string, std::pair<size_t, std::string>> s2c;
  std::unique_ptr<proxy::ToolDirectory> tools;
  // Stateless: the one request this session exists for.
  bool discover = false;  // answer server/discover once the binding is ready
  std::string discover_id;
  std::shared_ptr<ResponseStream> discover_stream;
};

namespace {
// An aggregated tools/list follows at most this many pages of one server (a server whose cursor
// never ends must not keep the client waiting for ever).
constexpr size_t kMaxToolPages = 64;

std::string PendingKey(size_t binding, std::string_view id) {
  return absl::StrCat(binding, "|", Sv(id));
}
}  // namespace

// ---- construction -----------------------------------------------------------------------------

Gateway::Gateway(const GatewayConfig& config, GatewayDeps deps)
    : config_(config), deps_(std::move(deps)), ring_(*deps_.ring), admin_handler_(*this) {
  broker_ = std::make_unique<proxy::LeaseBroker>(ring_, *deps_.pools);
  for (const pool::Profile& p : config_.servers) {
    auto s = std::make_unique<Server>();
    s->name = p.name;
    s->shared = p.isolation == pool::Isolation::kShared;
    servers_.push_back(std::move(s));
  }
}

Gateway::~Gateway() = default;

bool Gateway::ready() const {
  if (draining_) {
    return false;
  }
  for (const auto& s : servers_) {
    if (s->shared && (s->upstream == nullptr || !s->upstream->alive())) {
      return false;
    }
  }
  return true;
}

io::Task<void> Gateway::Run() {
  tasks_.Spawn(broker_->Run());
  for (auto& s : servers_) {
    if (s->shared) {
      tasks_.Spawn(LeaseShared(*s));
    }
  }
  tasks_.Spawn(KeepAlives());
  if (config_.request_timeout.count() > 0) {
    tasks_.Spawn(RequestTimeouts());
  }
  co_await tasks_.Join();
}

std::shared_ptr<proxy::Upstream> Gateway::StartUpstream(pool::WorkerLease lease, Server* shared) {
  auto up = std::make_shared<proxy::Upstream>(ring_, std::move(lease), proxy::SessionMuxOptions{},
                                              config_.listen.limits.max_body_bytes);
  // The worker is read until it exits (or is stopped); then its lease goes back, and a shared
  // profile whose current worker this was takes a new one.
  tasks_.Spawn([](Gateway& g, Server* s, std::shared_ptr<proxy::Upstream> u) -> io::Task<void> {
    co_await u->Run();
    g.deps_.pools->Release(u->lease(), u->requests());
    if (s != nullptr && s->upstream == u) {
      s->upstream.reset();
      if (!g.stopped_) {
        g.tasks_.Spawn(g.LeaseShared(*s));
      }
    }
  }(*this, shared, up));
  return up;
}

io::Task<void> Gateway::LeaseShared(Server& server) {
  if (server.leasing || stopped_) {
    co_return;
  }
  server.leasing = true;
  absl::StatusOr<pool::WorkerLease> lease = co_await broker_->Lease(server.name);
  server.leasing = false;
  if (!lease.ok()) {
    std::string why(Sv(lease.status().message()));
    LogError("gateway: no worker for server ", server.name, ": ", why);
    std::vector<std::weak_ptr<Binding>> waiting = std::exchange(server.waiting, {});
    for (auto& w : waiting) {
      if (auto b = w.lock(); b && !b->dead) {
        UpstreamGone(*b, why);
      }
    }
    co_return;
  }
  if (stopped_) {
    deps_.pools->Release(*lease, 0);
    co_return;
  }
  server.upstream = StartUpstream(*std::move(lease), &server);
  std::vector<std::weak_ptr<Binding>> waiting = std::exchange(server.waiting, {});
  for (auto& w : waiting) {
    if (auto b = w.lock(); b && !b->dead) {
      tasks_.Spawn(Bind(b));
    }
  }
}

// ---- admission and routing --------------------------------------------------------------------

bool Gateway::Admit(const Request& request, ResponseStream& stream) {
  if (const std::string* origin = request.Find("origin"); origin != nullptr) {
    bool allowed = std::find(config_.allowed_origins.begin(), config_.allowed_origins.end(),
                             *origin) != config_.allowed_origins.end();
    if (!allowed) {
      ReplyPlain(stream, 403,
                 absl::StrCat("Origin ", *origin,
                              " is not allowed (add it to allowedOrigins in the gateway config)"));
      return false;
    }
  }
  if (const std::string* host = request.Find("host"); host != nullptr) {
    std::string name = absl::AsciiStrToLower(HostWithoutPort(*host));
    bool allowed = false;
    if (config_.allowed_hosts.empty()) {
      allowed = name == "localhost" || name == "127.0.0.1" || name == "[::1]" ||
                !(config_.listen.address == "127.0.0.1" || config_.listen.address == "::1" ||
                  config_.listen.address == "localhost");
    } else {
      for (const std::string& h : config_.allowed_hosts) {
        allowed = allowed || absl::EqualsIgnoreCase(h, name);
      }
    }
    if (!allowed) {
      ReplyPlain(
          stream, 403,
          absl::StrCat("Host ", *host,
                       " is not served here (add it to allowedHosts in the gateway config)"));
      return false;
    }
  }
  return true;
}

void Gateway::OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) {
  ended_.clear();
  const std::string& path = request.path;
  if (path == "/healthz") {
    ReplyPlain(*stream, 200, "ok");
    return;
  }
  if (path == "/readyz") {
    ReplyPlain(*stream, ready() ? 200 : 503, ready() ? "ready" : "not ready");
    return;
  }
  if (path == "/metrics") {
    ServeMetrics(*stream);
    return;
  }
  if (path == "/.well-known/oauth-protected-resource" ||
      absl::StartsWith(path, "/.well-known/oauth-protected-resource/")) {
    stream->Respond(
        {.status = 200,
         .headers = {{"Content-Type", "application/json"}, {"Cache-Control", "max-age=300"}},
         .body = deps_.protected_resource_metadata});
    return;
  }
  Server* server = nullptr;
  if (path == "/mcp") {
    server = nullptr;
  } else if (absl::StartsWith(path, "/servers/") && absl::EndsWith(path, "/mcp")) {
    std::string_view name = std::string_view(path).substr(9, path.size() - 9 - 4);
    for (auto& s : servers_) {
      if (s->name == name) {
        server = s.get();
      }
    }
    if (server == nullptr) {
      ReplyPlain(*stream, 404, absl::StrCat("no server named \"", Sv(name), "\" on this gateway"));
      return;
    }
  } else {
    ReplyPlain(*stream, 404,
               "not found: MCP endpoints are /mcp and /servers/<name>/mcp; also /metrics, "
               "/healthz, /readyz");
    return;
  }
  ServeMcp(request, std::move(stream), server);
}

void Gateway::ServeMcp(Request& request, std::shared_ptr<ResponseStream> stream, Server* server) {
  if (!Admit(request, *stream)) {
    return;
  }
  AuthOutcome auth = deps_.authenticate(request);
  if (!auth.ok) {
    Headers h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
    if (!auth.www_authenticate.empty()) {
      h.emplace_back("WWW-Authenticate", auth.www_authenticate);
    }
    std::string body = R"({"error":)";
    jsonrpc::AppendJsonString(auth.error.empty() ? "unauthorized" : auth.error, &body);
    body += R"(,"error_description":)";
    jsonrpc::AppendJsonString(auth.message, &body);
    body += "}";
    stream->Respond({.status = auth.status, .headers = std::move(h), .body = std::move(body)});
    return;
  }
  const std::string* version = request.Find("mcp-protocol-version");
  if (version != nullptr && !IsStatelessEraVersion(*version) && !IsSessionVersion(*version)) {
    ReplyJsonRpcError(*stream, 400, "", jsonrpc::kUnsupportedProtocolVersion,
                      absl::StrCat("MCP-Protocol-Version ", *version,
                                   " is not supported; this gateway speaks 2025-03-26, "
                                   "2025-06-18, 2025-11-25 and 2026-07-28"));
    return;
  }
  const std::string* sid = request.Find("mcp-session-id");
  Session* session = nullptr;
  if (sid != nullptr) {
    auto it = sessions_.find(*sid);
    // Another principal's session is refused exactly like an unknown one: a session id is not
    // a credential, and its existence is not the caller's business.
    if (it == sessions_.end() || it->second->principal_key != auth.credential_id ||
        it->second->stateless) {
      ReplyJsonRpcError(*stream, 404, "", jsonrpc::kSessionNotFound,
                        "Session not found: it ended, expired, or belongs to someone else; "
                        "start a new one with initialize");
      return;
    }
    session = it->second.get();
    if ((session->server != server) || (server == nullptr && !session->aggregated)) {
      ReplyJsonRpcError(*stream, 404, "", jsonrpc::kSessionNotFound,
                        "Session not found on this endpoint (it was opened on another one)");
      return;
    }
    session->last_active = deps_.clock->Now();
  }
  if (request.method == "POST") {
    Envelope env;
    if (!ReadPost(request, *stream, &env)) {
      return;
    }
    if (sid == nullptr) {
      McpRequestHeaders mcp;
      for (const Header& h : request.headers) {
        mcp.Observe(h.name, h.value);
      }
      StatelessBody body = ReadStatelessBody(request.body);
      if (IsStatelessRequest(mcp, body)) {
        HandleStateless(request, std::move(stream), server, auth, env, mcp, body);
        return;
      }
    }
    HandlePost(request, std::move(stream), server, auth, env);
    return;
  }
  if (request.method == "GET") {
    if (!Accepts(request.Find("accept"), "text/event-stream")) {
      ReplyPlain(*stream, 406, "GET opens an SSE stream: send Accept: text/event-stream");
      return;
    }
    if (session == nullptr) {
      ReplyJsonRpcError(*stream, 400, "", jsonrpc::kInvalidRequest,
                        "GET needs an Mcp-Session-Id header (the 2026-07-28 protocol has no GET "
                        "stream)");
      return;
    }
    HandleGet(request, std::move(stream), *session);
    return;
  }
  if (request.method == "DELETE") {
    if (session == nullptr) {
      ReplyJsonRpcError(*stream, 400, "", jsonrpc::kInvalidRequest,
                        "DELETE needs an Mcp-Session-Id header");
      return;
    }
    HandleDelete(stream, *session);
    return;
  }
  ReplyPlain(*stream, 405, "use POST, GET or DELETE on an MCP endpoint",
             {{"Allow", "GET, POST, DELETE"}});
}

// ---- POST (2025 era) ----------------------------------------------------------------------------

bool Gateway::ReadPost(const Request& request, ResponseStream& stream, Envelope* env) {
  const std::string* accept = request.Find("accept");
  if (!Accepts(accept, "application/json") || !Accepts(accept, "text/event-stream")) {
    ReplyPlain(stream, 406,
               "POST must accept both application/json and text/event-stream (Accept header)");
    return false;
  }
  if (const std::string* ct = request.Find("content-type");
      ct != nullptr && !absl::StartsWithIgnoreCase(*ct, "application/json")) {
    ReplyPlain(stream, 415,
               "the body must be one JSON-RPC message (Content-Type: application/json)");
    return false;
  }
  reader_.Read(request.body, env);
  if (env->kind == MessageKind::kParseError || env->kind == MessageKind::kInvalid ||
      env->kind == MessageKind::kBatch) {
    int code =
        env->kind == MessageKind::kParseError ? jsonrpc::kParseError : jsonrpc::kInvalidRequest;
    std::string why = env->kind == MessageKind::kBatch
                          ? "batches are not accepted (one JSON-RPC message per POST since "
                            "2025-06-18)"
                          : absl::StrCat("not a JSON-RPC 2.0 message: ", Sv(env->problem));
    ReplyJsonRpcError(stream, 400, env->id, code, why);
    return false;
  }
  return true;
}

void Gateway::HandlePost(Request& request, std::shared_ptr<ResponseStream> stream, Server* server,
                         const AuthOutcome& auth, const Envelope& env) {
  const std::string* sid = request.Find("mcp-session-id");
  if (sid == nullptr) {
    if (env.kind != MessageKind::kRequest || env.method != "initialize") {
      ReplyJsonRpcError(*stream, 400, env.id, jsonrpc::kInvalidRequest,
                        "Bad Request: no Mcp-Session-Id header; send initialize first (or use "
                        "the stateless 2026-07-28 protocol with MCP-Protocol-Version: 2026-07-28)");
      return;
    }
    if (draining_) {
      ReplyPlain(*stream, 503, "mcpmw is draining; no new sessions", {{"Retry-After", "1"}});
      return;
    }
    if (sessions_.size() >= config_.max_sessions) {
      ReplyPlain(*stream, 503, "too many sessions on this gateway; try again later",
                 {{"Retry-After", "5"}});
      return;
    }
    Session* s = NewSession(auth, server, false);
    if (s == nullptr) {
      ReplyJsonRpcError(*stream, 429, env.id, jsonrpc::kTenantSessionLimit,
                        "your tenant has reached its quota of concurrent sessions; end one "
                        "(DELETE) or try again later");
      return;
    }
    if (absl::StatusOr<std::optional<std::string_view>> params =
            middleware::FindMember(request.body, {"params"});
        params.ok() && params->has_value()) {
      s->initialize_params = std::string(**params);
    }
    if (server != nullptr) {
      StartBinding(*s, *server);
    }
    ClientMessage(*s, std::move(stream), env, request.body);
    return;
  }
  Session& s = *sessions_.find(*sid)->second;
  if (env.kind == MessageKind::kRequest && env.method == "initialize") {
    ReplyJsonRpcError(*stream, 400, env.id, jsonrpc::kInvalidRequest,
                      "this session is already initialized; POST initialize without "
                      "Mcp-Session-Id to start another");
    return;
  }
  if (draining_ && env.kind == MessageKind::kRequest) {
    ReplyJsonRpcError(*stream, 503, env.id, jsonrpc::kServerUnavailable,
                      "mcpmw is draining; the request was not started",
                      R"({"reason":"draining","retryable":true})");
    return;
  }
  ClientMessage(s, std::move(stream), env, request.body);
}

Gateway::Session* Gateway::NewSession(const AuthOutcome& auth, Server* server, bool stateless) {
  auto s = std::make_unique<Session>();
  s->stateless = stateless;
  s->aggregated = server == nullptr;
  s->server = server;
  s->principal = auth.principal;
  s->principal_key = auth.credential_id;
  s->last_active = deps_.clock->Now();
  if (!stateless && deps_.admission.open) {
    s->tenant = auth.principal.tenant;
    if (absl::Status st = deps_.admission.open(s->tenant); !st.ok()) {
      LogDebug("gateway: session refused: ", st.message());
      return nullptr;
    }
    s->admitted = true;
  }
  if (stateless) {
    s->id = absl::StrCat("stateless-", ++stateless_sequence_);
  } else {
    do {
      s->id = NewSessionId();
    } while (sessions_.contains(s->id));
  }
  Session* raw = s.get();
  sessions_.emplace(raw->id, std::move(s));
  return raw;
}

void Gateway::StartBinding(Session& session, Server& server) {
  auto b = std::make_shared<Binding>();
  b->gateway = this;
  b->session = &session;
  b->server = &server;
  b->index = session.bindings.size();
  b->synthetic_init = session.stateless || session.aggregated;
  session.bindings.push_back(b);
  tasks_.Spawn(Bind(b));
}

Gateway::Binding* Gateway::BindingFor(Session& session, Server& server) {
  for (auto& b : session.bindings) {
    if (b->server == &server) {
      return b.get();
    }
  }
  return nullptr;
}

io::Task<void> Gateway::Bind(std::shared_ptr<Binding> b) {
  Server& server = *b->server;
  if (server.shared) {
    if (server.upstream == nullptr || !server.upstream->alive()) {
      server.waiting.push_back(b);
      if (!server.leasing) {
        tasks_.Spawn(LeaseShared(server));
      }
      co_return;
    }
    b->upstream = server.upstream;
  } else {
    absl::StatusOr<pool::WorkerLease> lease = co_await broker_->Lease(server.name);
    if (!lease.ok()) {
      if (!b->dead) {
        UpstreamGone(*b, Sv(lease.status().message()));
      }
      co_return;
    }
    if (b->dead || stopped_) {
      deps_.pools->Release(*lease, 0);
      co_return;
    }
    b->upstream = StartUpstream(*std::move(lease), nullptr);
  }
  if (b->dead) {
    co_return;
  }
  b->mux = b->upstream->Open(b.get());
  if (!b->synthetic_init) {
    b->ready = true;
  } else {
    // mcpmw holds the legacy session for this client: its own initialize (with the client's
    // capabilities when it sent any), answered from the worker's cached result when shared.
    Session& s = *b->session;
    Pending& p =
        *(s.pending[PendingKey(b->index, absl::StrCat(Sv(kInternalInitPrefix), b->mux, "\""))] =
              std::make_unique<Pending>());
    p.kind = Pending::Kind::kInternalInit;
    p.binding = b.get();
    b->upstream->Send(
        b->mux, absl::StrCat(R"({"jsonrpc":"2.0","id":)", Sv(kInternalInitPrefix), b->mux,
                             R"(","method":"initialize","params":)", s.initialize_params, "}"));
  }
  std::vector<std::string> queued = std::exchange(b->queued, {});
  if (b->ready) {
    for (std::string& line : queued) {
      b->upstream->Send(b->mux, line);
    }
  } else {
    b->queued = std::move(queued);
  }
}

void Gateway::SendToUpstream(Binding& b, std::string line) {
  if (b.ready && b.upstream != nullptr && b.upstream->alive()) {
    b.upstream->Send(b.mux, line);
  } else {
    b.queued.push_back(std::move(line));
  }
}

Gateway::Stream& Gateway::NewStream(Session& session, std::shared_ptr<ResponseStream> http,
                                    bool is_get) {
  auto st = std::make_unique<Stream>();
  st->number = session.next_stream++;
  st->is_get = is_get;
  Stream& ref = *st;
  session.streams.push_back(std::move(st));
  AttachStream(session, ref, std::move(http));
  return ref;
}

void Gateway::AttachStream(Session& session, Stream& stream, std::shared_ptr<ResponseStream> http) {
  stream.http = std::move(http);
  if (stream.http == nullptr) {
    return;
  }
  // A dropped connection detaches the stream. In the 2025 era the request goes on (its events
  // wait for a resume); a stateless request is cancelled.
  std::string sid = session.id;
  uint64_t number = stream.number;
  // Only this connection's departure detaches the stream: a client that resumed on a new GET
  // before the old connection's close was noticed keeps its new one.
  const ResponseStream* gone = stream.http.get();
  stream.http->OnClientGone([this, sid, number, gone] {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) {
      return;
    }
    Session& s = *it->second;
    for (auto& st : s.streams) {
      if (st->number == number && st->http.get() == gone) {
        st->http.reset();
      }
    }
    if (s.stateless) {
      EndSession(s, "the client closed the stream (cancelled)");
    }
  });
}

void Gateway::RespondJson(const Session& session, ResponseStream& stream, std::string body) {
  Headers h = {{"Content-Type", "application/json"}};
  if (!session.stateless) {
    h.emplace_back("Mcp-Session-Id", session.id);
  }
  stream.Respond({.status = 200, .headers = std::move(h), .body = std::move(body)});
}

void Gateway::StartCall(Session& session, std::shared_ptr<ResponseStream> stream, Binding& b,
                        const Envelope& env, std::string_view forwarded,
                        std::unique_ptr<proxy::Exchange> ex) {
  const middleware::Verdict& verdict = ex->ctx.outcome;
  if (verdict.kind == middleware::Verdict::Kind::kReject) {
    CountCall(session, env.method, "denied", b.server->name, Duration{});
    RespondJson(session, *stream,
                jsonrpc::ErrorResponse(env.id, verdict.code, verdict.message, verdict.data_json));
    if (session.stateless) {
      EndSession(session, "answered");
    }
    return;
  }
  std::string key = PendingKey(b.index, env.id);
  if (session.pending.contains(key)) {
    RespondJson(session, *stream,
                jsonrpc::ErrorResponse(env.id, jsonrpc::kInvalidRequest,
                                       "this request id is already in flight in this session"));
    deps_.governance->Abandon(*ex, jsonrpc::kInvalidRequest, "duplicate request id");
    return;
  }
  std::string line = ex->ctx.rewritten ? *std::move(ex->ctx.rewritten) : std::string(forwarded);
  auto p = std::make_unique<Pending>();
  p->client_id = std::string(env.id);
  p->method = std::string(env.method);
  p->progress_token = std::string(env.progress_token);
  p->binding = &b;
  p->exchange = std::move(ex);
  p->started = deps_.clock->Now();
  p->stream = NewStream(session, std::move(stream), false).number;
  session.pending.emplace(std::move(key), std::move(p));
  ++in_flight_;
  SendToUpstream(b, std::move(line));
}

void Gateway::ClientMessage(Session& session, std::shared_ptr<ResponseStream> stream,
                            const Envelope& env, std::string_view payload) {
  if (session.aggregated && !session.stateless) {
    AggregatedRequest(session, std::move(stream), env, payload);
    return;
  }
  Binding& b = *session.bindings.front();
  switch (env.kind) {
    case MessageKind::kRequest:
      StartCall(session, std::move(stream), b, env, payload,
                deps_.governance->Begin(env, payload, &session.principal, session.server->name));
      return;
    case MessageKind::kNotification:
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse:
      SendToUpstream(b, std::string(payload));
      ClientCancelled(session, env);
      stream->Respond({.status = 202, .headers = {}, .body = {}});
      return;
    default:
      ReplyJsonRpcError(*stream, 400, env.id, jsonrpc::kInvalidRequest, "not a JSON-RPC message");
      return;
  }
}

// ---- the aggregated endpoint (/mcp) -----------------------------------------------------------

void Gateway::AggregatedRequest(Session& session, std::shared_ptr<ResponseStream> stream,
                                const Envelope& env, std::string_view payload) {
  auto json_reply = [&](std::string body) { RespondJson(session, *stream, std::move(body)); };
  if (env.kind == MessageKind::kNotification) {
    // The bindings did their own handshakes; other notifications (cancellation, roots changed)
    // go to every server this session talks to.
    if (env.method != "notifications/initialized") {
      for (auto& b : session.bindings) {
        SendToUpstream(*b, std::string(payload));
      }
      ClientCancelled(session, env);
    }
    stream->Respond({.status = 202, .headers = {}, .body = {}});
    return;
  }
  if (env.kind == MessageKind::kResponse || env.kind == MessageKind::kErrorResponse) {
    // The client's answer to a server-to-client request: back to the server that asked, with
    // that server's id.
    auto it = session.s2c.find(Sv(env.id));
    if (it != session.s2c.end()) {
      auto [index, original] = it->second;
      session.s2c.erase(it);
      absl::StatusOr<std::optional<std::string_view>> id = middleware::FindMember(payload, {"id"});
      if (index < session.bindings.size() && id.ok() && id->has_value()) {
        SendToUpstream(*session.bindings[index], middleware::Splice(payload, **id, original));
      }
    }
    stream->Respond({.status = 202, .headers = {}, .body = {}});
    return;
  }
  if (env.method == "initialize") {
    std::string result = R"({"protocolVersion":)";
    absl::StatusOr<std::optional<std::string_view>> asked =
        middleware::FindMember(payload, {"params", "protocolVersion"});
    std::string version(kLatestSessionVersion);
    if (asked.ok() && asked->has_value() && (*asked)->size() > 2) {
      std::string v((*asked)->substr(1, (*asked)->size() - 2));
      if (IsSessionVersion(v)) {
        version = v;
      }
    }
    jsonrpc::AppendJsonString(version, &result);
    std::string names;
    for (auto& s : servers_) {
      absl::StrAppend(&names, names.empty() ? "" : ", ", s->name);
    }
    result += R"(,"capabilities":{"tools":{"listChanged":true},"logging":{}},)"
              R"("serverInfo":{"name":"mcpmw-gateway","version":"0.1.0"},"instructions":)";
    jsonrpc::AppendJsonString(
        absl::StrCat("Tools of the servers ", names, ", each named <server>__<tool>."), &result);
    result += "}";
    for (auto& s : servers_) {
      StartBinding(session, *s);
    }
    CountCall(session, "initialize", "ok", "*", Duration{});
    json_reply(ResultResponse(env.id, result));
    return;
  }
  if (env.method == "ping") {
    json_reply(ResultResponse(env.id, "{}"));
    return;
  }
  if (env.method == "tools/list") {
    // One governed exchange per server (visibility is decided per server), merged at the end.
    auto fan = std::make_unique<Pending>();
    fan->kind = Pending::Kind::kFanIn;
    fan->client_id = std::string(env.id);
    fan->method = "tools/list";
    fan->started = deps_.clock->Now();
    fan->stream = NewStream(session, std::move(stream), false).number;
    std::string fan_key = absl::StrCat("fan|", Sv(env.id));
    if (session.pending.contains(fan_key)) {
      Stream* st = session.streams.back().get();
      st->http->Respond(
          {.status = 200,
           .headers = {{"Content-Type", "application/json"}},
           .body = jsonrpc::ErrorResponse(env.id, jsonrpc::kInvalidRequest,
                                          "this request id is already in flight in this session")});
      return;
    }
    Pending* fan_raw = fan.get();
    session.pending.emplace(fan_key, std::move(fan));
    ++in_flight_;
    for (auto& b : session.bindings) {
      auto ex = deps_.governance->Begin(env, payload, &session.principal, b->server->name);
      if (!ex->ctx.outcome.IsContinue()) {
        continue;  // this server's tools are not for this caller
      }
      auto part = std::make_unique<Pending>();
      part->kind = Pending::Kind::kCall;
      part->client_id = std::string(env.id);
      part->method = "tools/list";
      part->binding = b.get();
      part->exchange = std::move(ex);
      part->started = deps_.clock->Now();
      part->stream = fan_raw->stream;
      part->fan_key = fan_key;
      session.pending.emplace(PendingKey(b->index, env.id), std::move(part));
      ++fan_raw->parts_waiting;
      SendToUpstream(*b, std::string(payload));
    }
    if (fan_raw->parts_waiting == 0) {
      FinishPending(session, *fan_raw, ResultResponse(env.id, R"({"tools":[]})"));
    }
    return;
  }
  if (env.method == "tools/call") {
    std::optional<proxy::ToolTarget> target;
    if (session.tools != nullptr) {
      target = session.tools->Resolve(env.tool_name);
    }
    if (!target) {
      // Not listed yet: the plain `<server>__<tool>` form still routes.
      size_t cut = env.tool_name.find("__");
      if (cut != std::string_view::npos) {
        for (auto& s : servers_) {
          if (s->name == env.tool_name.substr(0, cut)) {
            target = proxy::ToolTarget{s->name, std::string(env.tool_name.substr(cut + 2))};
          }
        }
      }
    }
    Binding* b = nullptr;
    if (target) {
      for (auto& s : servers_) {
        if (s->name == target->server) {
          b = BindingFor(session, *s);
        }
      }
    }
    if (b == nullptr) {
      json_reply(jsonrpc::ErrorResponse(
          env.id, jsonrpc::kInvalidParams,
          absl::StrCat("Unknown tool: ", Sv(env.tool_name),
                       " (tools on /mcp are named <server>__<tool>; call tools/list)")));
      return;
    }
    absl::StatusOr<std::string> rewritten = proxy::RewriteToolCallName(payload, target->tool);
    if (!rewritten.ok()) {
      json_reply(jsonrpc::ErrorResponse(env.id, jsonrpc::kInvalidParams,
                                        Sv(rewritten.status().message())));
      return;
    }
    // Govern the call as the server sees it: its own tool name, its server id.
    std::string padded = *std::move(rewritten);
    padded.reserve(padded.size() + simdjson::SIMDJSON_PADDING);
    Envelope inner;
    reader_.Read(padded, &inner);
    StartCall(session, std::move(stream), *b, env, padded,
              deps_.governance->Begin(inner, padded, &session.principal, b->server->name));
    return;
  }
  json_reply(jsonrpc::ErrorResponse(
      env.id, jsonrpc::kMethodNotFound,
      absl::StrCat(Sv(env.method),
                   " is not available on the aggregated endpoint /mcp (it serves initialize, "
                   "ping, tools/list and tools/call); use /servers/<name>/mcp")));
}

// ---- from the workers -------------------------------------------------------------------------

void Gateway::FromUpstream(Binding& b, std::string_view line) {
  Session& session = *b.session;
  scratch_.assign(line);
  scratch_.reserve(scratch_.size() + simdjson::SIMDJSON_PADDING);
  Envelope env;
  reader_.Read(scratch_, &env);
  std::string_view payload = scratch_;
  switch (env.kind) {
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse: {
      auto it = session.pending.find(PendingKey(b.index, env.id));
      if (it == session.pending.end()) {
        return;  // an answer nobody waits for any more (cancelled, timed out)
      }
      Pending& p = *it->second;
      if (p.kind == Pending::Kind::kInternalInit) {
        session.pending.erase(it);
        if (env.kind == MessageKind::kErrorResponse) {
          UpstreamGone(b, "the MCP server refused mcpmw's initialize");
          return;
        }
        if (absl::StatusOr<std::optional<std::string_view>> r =
                middleware::FindMember(payload, {"result"});
            r.ok() && r->has_value()) {
          b.init_result = std::string(**r);
        }
        b.ready = true;
        b.upstream->Send(b.mux, R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
        for (std::string& q : std::exchange(b.queued, {})) {
          b.upstream->Send(b.mux, q);
        }
        if (session.discover) {
          session.discover = false;
          absl::StatusOr<std::string> result = DiscoverResultFromInitialize(b.init_result);
          if (session.discover_stream != nullptr) {
            session.discover_stream->Respond(
                {.status = 200,
                 .headers = {{"Content-Type", "application/json"}},
                 .body = result.ok() ? ResultResponse(session.discover_id, *result)
                                     : jsonrpc::ErrorResponse(
                                           session.discover_id, jsonrpc::kInternalError,
                                           absl::StrCat("the server's initialize result is "
                                                        "unusable: ",
                                                        result.status().message()))});
          }
          EndSession(session, "answered");
        }
        return;
      }
      std::string out;
      if (p.exchange != nullptr) {
        deps_.governance->Respond(*p.exchange, env, payload);
        const middleware::Verdict& v = p.exchange->ctx.outcome;
        if (v.kind == middleware::Verdict::Kind::kReject) {
          out = jsonrpc::ErrorResponse(env.id, v.code, v.message, v.data_json);
        } else if (p.exchange->ctx.rewritten) {
          out = *std::move(p.exchange->ctx.rewritten);
        }
      }
      if (out.empty()) {
        out = std::string(payload);
      }
      if (!p.fan_key.empty()) {
        // One part of an aggregated tools/list.
        std::string fan_key = p.fan_key;
        size_t p_page = p.page;
        session.pending.erase(it);
        std::string result;
        if (absl::StatusOr<std::optional<std::string_view>> r =
                middleware::FindMember(out, {"result"}, false);
            r.ok() && r->has_value()) {
          result = std::string(**r);
        }
        // A server that pages its tools is asked for the next page (governed like the first,
        // so the tool filter sees every page) before its part counts as done.
        if (absl::StatusOr<std::optional<std::string_view>> next =
                middleware::FindMember(result, {"nextCursor"}, false);
            next.ok() && next->has_value() && (*next)->starts_with('"')) {
          if (p_page < kMaxToolPages) {
            std::string cursor(**next);
            AddPart(session, fan_key, b.server->name, std::move(result));
            if (FetchToolsPage(session, b, fan_key, cursor, p_page + 1)) {
              return;
            }
            PartDone(session, fan_key, b.server->name, {});
            return;
          }
          LogError("gateway: ", b.server->name, " pages its tools/list past ", kMaxToolPages,
                   " pages; the aggregated list stops there");
        }
        PartDone(session, fan_key, b.server->name, result);
        return;
      }
      CountCall(session, p.method, env.kind == MessageKind::kErrorResponse ? "error" : "ok",
                b.server->name, deps_.clock->Now() - p.started);
      FinishPending(session, p, out);
      return;
    }
    case MessageKind::kNotification:
    case MessageKind::kRequest: {
      std::string out(payload);
      if (env.kind == MessageKind::kRequest && session.aggregated) {
        std::string gid = absl::StrCat("\"s2c-", session.next_s2c++, "\"");
        session.s2c[gid] = {b.index, std::string(env.id)};
        absl::StatusOr<std::optional<std::string_view>> id =
            middleware::FindMember(payload, {"id"});
        if (id.ok() && id->has_value()) {
          out = middleware::Splice(payload, **id, gid);
        }
      }
      // Which stream: progress goes with the request that asked for it; anything else goes with
      // this binding's latest request still open, or else on the session's GET stream.
      Stream* target = nullptr;
      Pending* latest = nullptr;
      // notifications/progress names its request's token in params.progressToken (the envelope
      // reads only params._meta.progressToken, which requests carry).
      std::string_view token = env.progress_token;
      if (env.kind == MessageKind::kNotification && env.method == "notifications/progress") {
        if (absl::StatusOr<std::optional<std::string_view>> t =
                middleware::FindMember(payload, {"params", "progressToken"});
            t.ok() && t->has_value()) {
          token = **t;
        }
      }
      for (auto& [key, p] : session.pending) {
        if (p->binding != &b || p->kind == Pending::Kind::kInternalInit) {
          continue;
        }
        if (!token.empty() && p->progress_token == token) {
          latest = p.get();
          if (env.method == "notifications/progress") {
            p->last_heard = deps_.clock->Now();  // a request that reports progress is alive
          }
          break;
        }
        if (latest == nullptr || p->started > latest->started ||
            (p->started == latest->started && p->stream > latest->stream)) {
          latest = p.get();
        }
      }
      if (latest != nullptr) {
        for (auto& st : session.streams) {
          if (st->number == latest->stream) {
            target = st.get();
          }
        }
      }
      if (target == nullptr) {
        if (session.stateless) {
          return;  // no stream to carry it, and stateless sessions have no GET stream
        }
        for (auto& st : session.streams) {
          if (st->is_get) {
            target = st.get();
          }
        }
        if (target == nullptr) {
          target = &NewStream(session, nullptr, true);
        }
      }
      Emit(session, *target, std::move(out), false);
      return;
    }
    default:
      return;
  }
}

void Gateway::ClientCancelled(Session& session, const Envelope& env) {
  if (env.method != "notifications/cancelled" || env.request_id.empty()) {
    return;
  }
  // The worker forgets the request (the mux drops its late answer), so mcpmw must too: the
  // exchange is completed as cancelled and the request's stream ends.
  for (auto& b : session.bindings) {
    auto it = session.pending.find(PendingKey(b->index, env.request_id));
    if (it == session.pending.end() || it->second->kind != Pending::Kind::kCall ||
        !it->second->fan_key.empty()) {
      continue;
    }
    Pending& p = *it->second;
    if (p.exchange != nullptr) {
      deps_.governance->Abandon(*p.exchange, jsonrpc::kRequestCancelled, "cancelled by the client");
      p.exchange.reset();
    }
    CountCall(session, p.method, "cancelled", b->server->name, deps_.clock->Now() - p.started);
    FinishPending(session, p,
                  jsonrpc::ErrorResponse(p.client_id, jsonrpc::kRequestCancelled,
                                         "the request was cancelled by the client"));
    return;
  }
}

void Gateway::AddPart(Session& session, const std::string& fan_key, const std::string& server,
                      std::string result) {
  auto fit = session.pending.find(fan_key);
  if (fit != session.pending.end() && !result.empty()) {
    fit->second->parts.emplace_back(server, std::move(result));
  }
}

bool Gateway::FetchToolsPage(Session& session, Binding& b, const std::string& fan_key,
                             std::string_view cursor_json, size_t page) {
  auto fit = session.pending.find(fan_key);
  if (fit == session.pending.end() || b.dead) {
    return false;
  }
  std::string id = absl::StrCat("\"mcpmw-tools-page-", ++page_sequence_, "\"");
  std::string line =
      absl::StrCat(R"({"jsonrpc":"2.0","id":)", id, R"(,"method":"tools/list","params":{"cursor":)",
                   Sv(cursor_json), "}}");
  std::string padded = line;
  padded.reserve(padded.size() + simdjson::SIMDJSON_PADDING);
  Envelope env;
  reader_.Read(padded, &env);
  std::unique_ptr<proxy::Exchange> ex =
      deps_.governance->Begin(env, padded, &session.principal, b.server->name);
  if (!ex->ctx.outcome.IsContinue()) {
    return false;
  }
  auto part = std::make_unique<Pending>();
  part->kind = Pending::Kind::kCall;
  part->client_id = id;
  part->method = "tools/list";
  part->binding = &b;
  part->exchange = std::move(ex);
  part->started = deps_.clock->Now();
  part->stream = fit->second->stream;
  part->fan_key = fan_key;
  part->page = page;
  session.pending.emplace(PendingKey(b.index, id), std::move(part));
  SendToUpstream(b, std::move(line));
  return true;
}

void Gateway::PartDone(Session& session, const std::string& fan_key, const std::string& server,
                       std::string result) {
  AddPart(session, fan_key, server, std::move(result));
  auto fit = session.pending.find(fan_key);
  if (fit == session.pending.end()) {
    return;
  }
  Pending& fan = *fit->second;
  if (--fan.parts_waiting > 0) {
    return;
  }
  auto dir = std::make_unique<proxy::ToolDirectory>();
  for (auto& [name, part] : fan.parts) {
    // Every page of every server, in the order they came.
    if (absl::StatusOr<proxy::ToolDirectory::PageInfo> st = dir->Add(name, part); !st.ok()) {
      LogError("gateway: tools/list of ", name, ": ", st.status().message());
    }
  }
  std::string merged = ResultResponse(fan.client_id, dir->MergedResult());
  session.tools = std::move(dir);
  FinishPending(session, fan, merged);
}

void Gateway::FinishPending(Session& session, Pending& p, std::string_view json) {
  uint64_t number = p.stream;
  std::string key;
  for (auto& [k, v] : session.pending) {
    if (v.get() == &p) {
      key = k;
    }
  }
  Stream* stream = nullptr;
  for (auto& st : session.streams) {
    if (st->number == number) {
      stream = st.get();
    }
  }
  std::string copy(json);  // `json` may live in the pending entry erased here
  session.pending.erase(key);
  --in_flight_;
  if (stream != nullptr) {
    Emit(session, *stream, std::move(copy), true);
  }
  MaybeDestroyStateless(session);
}

void Gateway::Emit(Session& session, Stream& stream, std::string json, bool final) {
  std::shared_ptr<ResponseStream>& http = stream.http;
  bool live = http != nullptr && !http->finished();
  if (final && !stream.sse) {
    // The answer came first: one JSON body.
    stream.done = true;
    if (live) {
      Headers h = {{"Content-Type", "application/json"}};
      if (!session.stateless) {
        h.emplace_back("Mcp-Session-Id", session.id);
      }
      http->Respond({.status = 200, .headers = std::move(h), .body = std::move(json)});
    }
    http.reset();
    if (!stream.is_get) {
      std::erase_if(session.streams, [&](const auto& s) { return s.get() == &stream; });
    }
    return;
  }
  // An SSE event. Session events get ids and stay in the buffer for Last-Event-ID resumes.
  std::string id;
  if (!session.stateless) {
    Session::Event e;
    e.id = session.next_event++;
    e.stream = stream.number;
    e.data = std::string(json);
    e.delivered = live;
    id = absl::StrCat(e.id);
    session.events.push_back(std::move(e));
    while (session.events.size() > config_.resume_buffer_events) {
      session.events.pop_front();
    }
  }
  if (live) {
    std::string bytes;
    framing::AppendSseEvent(&bytes, id, json);
    if (!stream.sse) {
      stream.sse = true;
      Headers h = {{"Content-Type", "text/event-stream"},
                   {"Cache-Control", "no-cache"},
                   {"X-Accel-Buffering", "no"}};
      if (!session.stateless) {
        h.emplace_back("Mcp-Session-Id", session.id);
      }
      http->Begin({.status = 200, .headers = std::move(h), .body = std::move(bytes)});
    } else {
      http->Write(bytes);
    }
  } else {
    stream.sse = true;  // it will be resumed as a stream
  }
  if (final) {
    stream.done = true;
    if (live) {
      http->End();
    }
    http.reset();
  }
}

void Gateway::UpstreamGone(Binding& b, std::string_view how) {
  Session& session = *b.session;
  b.upstream.reset();
  b.ready = false;
  // Requests in flight were answered with errors by the mux. What still waits (an internal
  // handshake, queued lines, a discover) fails now.
  std::vector<std::string> failed;
  for (auto& [key, p] : session.pending) {
    if (p->binding == &b) {
      failed.push_back(key);
    }
  }
  for (const std::string& key : failed) {
    auto it = session.pending.find(key);
    if (it == session.pending.end()) {
      continue;
    }
    Pending& p = *it->second;
    if (p.kind == Pending::Kind::kInternalInit) {
      session.pending.erase(it);
      continue;
    }
    if (p.exchange != nullptr) {
      deps_.governance->Abandon(*p.exchange, jsonrpc::kServerExited, std::string(how));
      p.exchange.reset();
    }
    if (!p.fan_key.empty()) {
      std::string fan_key = p.fan_key;
      session.pending.erase(it);
      PartDone(session, fan_key, b.server->name, {});
      continue;
    }
    FinishPending(session, p,
                  jsonrpc::ErrorResponse(p.client_id, jsonrpc::kServerExited,
                                         absl::StrCat(Sv(how), "; the request was lost"),
                                         R"({"reason":"server-exited","retryable":true})"));
  }
  b.queued.clear();  // their requests were failed above
  if (session.discover) {
    session.discover = false;
    if (session.discover_stream != nullptr) {
      ReplyJsonRpcError(*session.discover_stream, 503, session.discover_id,
                        jsonrpc::kServerUnavailable, how);
    }
  }
  if (session.stateless) {
    EndSession(session, "the worker is gone");
    return;
  }
  // A 2025-era session keeps going on a new worker (mcpmw redoes the handshake for it).
  if (!b.dead && !stopped_ && !draining_) {
    b.synthetic_init = true;
    tasks_.Spawn(Bind(session.bindings[b.index]));
  }
}

void Gateway::MaybeDestroyStateless(Session& session) {
  if (session.stateless && session.pending.empty() && !session.discover) {
    EndSession(session, "answered");
  }
}

void Gateway::EndSession(Session& session, std::string_view why) {
  auto it = sessions_.find(session.id);
  if (it == sessions_.end()) {
    return;
  }
  std::unique_ptr<Session> owned = std::move(it->second);
  sessions_.erase(it);
  for (auto& [key, p] : owned->pending) {
    if (p->exchange != nullptr) {
      deps_.governance->Abandon(*p->exchange, jsonrpc::kServerUnavailable,
                                absl::StrCat("session ended: ", Sv(why)));
    }
    if (p->kind != Pending::Kind::kInternalInit && p->fan_key.empty()) {
      --in_flight_;
    }
  }
  owned->pending.clear();
  for (auto& b : owned->bindings) {
    b->dead = true;
    if (b->upstream != nullptr) {
      std::shared_ptr<proxy::Upstream> up = std::move(b->upstream);
      if (b->mux != 0) {
        up->Close(b->mux);
      }
      if (!b->server->shared) {
        // An exclusive worker ends with its session.
        tasks_.Spawn(
            [](std::shared_ptr<proxy::Upstream> u) -> io::Task<void> { co_await u->Stop(); }(up));
      }
    }
  }
  for (auto& st : owned->streams) {
    if (st->http != nullptr && !st->http->finished()) {
      if (st->sse) {
        st->http->End();
      } else {
        ReplyPlain(*st->http, 404, "the session ended");
      }
    }
  }
  if (owned->admitted && deps_.admission.close) {
    deps_.admission.close(owned->tenant);
  }
  // Callers up the stack (a worker's delivery, a failed binding) may still hold references into
  // the session: it is freed at the next request or keep-alive tick, never here.
  ended_.push_back(std::move(owned));
}

// ---- GET and DELETE -----------------------------------------------------------------------------

void Gateway::HandleGet(Request& request, std::shared_ptr<ResponseStream> http, Session& session) {
  const std::string* last = request.Find("last-event-id");
  Stream* stream = nullptr;
  uint64_t after = 0;
  if (last != nullptr) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(*last, &id)) {
      ReplyPlain(*http, 400, "Last-Event-ID must be an event id this session sent");
      return;
    }
    for (const auto& e : session.events) {
      if (e.id == id) {
        for (auto& st : session.streams) {
          if (st->number == e.stream) {
            stream = st.get();
          }
        }
      }
    }
    if (stream == nullptr) {
      ReplyPlain(*http, 404,
                 "cannot resume: that event is no longer buffered (or its stream is over)");
      return;
    }
    after = id;
  } else {
    for (auto& st : session.streams) {
      if (st->is_get) {
        stream = st.get();
      }
    }
    if (stream != nullptr && stream->http != nullptr && !stream->http->finished()) {
      ReplyPlain(*http, 409, "this session already has an open GET stream");
      return;
    }
    if (stream == nullptr) {
      stream = &NewStream(session, nullptr, true);
    }
  }
  // Replay what the client has not seen of this stream, then keep it open for what follows.
  std::string bytes;
  for (auto& e : session.events) {
    if (e.stream == stream->number && (last != nullptr ? e.id > after : !e.delivered)) {
      framing::AppendSseEvent(&bytes, absl::StrCat(e.id), e.data);
      e.delivered = true;
    }
  }
  framing::AppendSseComment(&bytes, "stream open");
  stream->sse = true;
  http->Begin({.status = 200,
               .headers = {{"Content-Type", "text/event-stream"},
                           {"Cache-Control", "no-cache"},
                           {"X-Accel-Buffering", "no"},
                           {"Mcp-Session-Id", session.id}},
               .body = std::move(bytes)});
  if (stream->done) {
    http->End();  // the request's response was in the replay
    return;
  }
  if (stream->http != nullptr && !stream->http->finished()) {
    // Resumed while the old connection still looked alive: the new one takes over, the old one
    // ends now (its close will not detach the new one).
    if (stream->sse) {
      stream->http->End();
    }
  }
  AttachStream(session, *stream, std::move(http));
}

void Gateway::HandleDelete(const std::shared_ptr<ResponseStream>& http, Session& session) {
  EndSession(session, "the client deleted it");
  http->Respond({.status = 204, .headers = {}, .body = {}});
}

// ---- POST (2026-07-28, stateless) ---------------------------------------------------------------

void Gateway::HandleStateless(const Request& request, std::shared_ptr<ResponseStream> stream,
                              Server* server, const AuthOutcome& auth, const Envelope& env,
                              const McpRequestHeaders& headers, const StatelessBody& body) {
  if (std::optional<StatelessCheck> bad = CheckStatelessHeaders(headers, body); bad.has_value()) {
    ReplyJsonRpcError(*stream, bad->http_status, env.id, bad->jsonrpc_code, bad->message,
                      bad->data_json);
    return;
  }
  if (env.kind != MessageKind::kRequest) {
    // Nothing to carry it to: in this era a notification or response stands alone.
    stream->Respond({.status = 202, .headers = {}, .body = {}});
    return;
  }
  if (draining_) {
    ReplyJsonRpcError(*stream, 503, env.id, jsonrpc::kServerUnavailable,
                      "mcpmw is draining; the request was not started",
                      R"({"reason":"draining","retryable":true})");
    return;
  }
  if (server == nullptr) {
    ReplyJsonRpcError(*stream, 404, env.id, jsonrpc::kMethodNotFound,
                      "the aggregated endpoint /mcp speaks the 2025 session protocols; use "
                      "/servers/<name>/mcp for 2026-07-28 stateless requests");
    return;
  }
  if (env.method == "initialize") {
    ReplyJsonRpcError(*stream, 400, env.id, jsonrpc::kInvalidRequest,
                      "2026-07-28 has no initialize; use server/discover");
    return;
  }
  Session* s = NewSession(auth, server, true);
  if (env.method == "server/discover") {
    // Answered from the worker's initialize result, once mcpmw's handshake with it is done.
    s->discover = true;
    s->discover_id = std::string(env.id);
    s->discover_stream = stream;
    AttachStream(*s, NewStream(*s, nullptr, false), stream);
    StartBinding(*s, *server);
    return;
  }
  StartBinding(*s, *server);
  if (sessions_.contains(s->id)) {
    ClientMessage(*s, std::move(stream), env, request.body);
  }
}

// ---- answers ----------------------------------------------------------------------------------

void Gateway::ReplyJsonRpcError(ResponseStream& stream, int http_status, std::string_view id,
                                int code, std::string_view message, std::string_view data_json) {
  stream.Respond({.status = http_status,
                  .headers = {{"Content-Type", "application/json"}},
                  .body = jsonrpc::ErrorResponse(id, code, message, data_json)});
}

void Gateway::ReplyPlain(ResponseStream& stream, int status, std::string_view message,
                         Headers headers) {
  headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  stream.Respond(
      {.status = status, .headers = std::move(headers), .body = absl::StrCat(Sv(message), "\n")});
}

void Gateway::CountCall(const Session& session, std::string_view method, std::string_view status,
                        std::string_view server, Duration latency) {
  CallSeries& series = SeriesFor(session.principal.tenant, method, status, server);
  series.calls->Increment();
  if (latency.count() > 0) {
    if (series.latency == nullptr) {
      series.latency = &deps_.governance->metrics().histogram(
          "mcpmw_gateway_call_latency_us", {{"method", method}, {"server", server}});
    }
    series.latency->Observe(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
  }
}

Gateway::CallSeries& Gateway::SeriesFor(std::string_view tenant, std::string_view method,
                                        std::string_view status, std::string_view server) {
  constexpr size_t kMaxCachedSeries = 4096;
  series_key_.clear();
  for (std::string_view part : {tenant, method, status, server}) {
    series_key_.append(part);
    series_key_.push_back('\0');
  }
  if (auto it = call_series_.find(series_key_); it != call_series_.end()) {
    return it->second;
  }
  CallSeries fresh{
      .calls = &deps_.governance->metrics().counter(
          "mcpmw_gateway_calls_total",
          {{"method", method}, {"status", status}, {"tenant", tenant}, {"server", server}})};
  if (call_series_.size() >= kMaxCachedSeries) {
    uncached_series_ = fresh;
    return uncached_series_;
  }
  return call_series_.try_emplace(series_key_, fresh).first->second;
}

void Gateway::ServeMetrics(ResponseStream& stream) {
  std::string body = deps_.governance->metrics().RenderPrometheus();
  body += deps_.pools->RenderPrometheus();
  absl::StrAppend(&body,
                  "# HELP mcpmw_gateway_sessions Open MCP sessions (2025 era).\n"
                  "# TYPE mcpmw_gateway_sessions gauge\n",
                  "mcpmw_gateway_sessions ", sessions_.size(), "\n",
                  "# HELP mcpmw_gateway_in_flight Client requests awaiting a server.\n"
                  "# TYPE mcpmw_gateway_in_flight gauge\n",
                  "mcpmw_gateway_in_flight ", in_flight_, "\n");
  if (std::optional<uint64_t> lag = deps_.governance->AuditLag(); lag.has_value()) {
    absl::StrAppend(&body,
                    "# HELP mcpmw_audit_lag_records Reports queued for the audit log and not "
                    "yet written.\n# TYPE mcpmw_audit_lag_records gauge\nmcpmw_audit_lag_records ",
                    *lag, "\n");
  }
  stream.Respond({.status = 200,
                  .headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                  .body = std::move(body)});
}

// ---- background -------------------------------------------------------------------------------

io::Task<bool> Gateway::Pause(Duration period, io::SleepOp** slot) {
  io::SleepOp sleep(ring_, period);
  *slot = &sleep;
  co_await sleep;
  *slot = nullptr;
  co_return !stopped_;
}

io::Task<void> Gateway::RequestTimeouts() {
  const Duration limit = config_.request_timeout;
  const Duration period =
      std::clamp<Duration>(limit / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
  const auto limit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit).count();
  while (!stopped_) {
    bool go_on = co_await Pause(period, &timeout_sleep_);
    if (!go_on) {
      break;
    }
    TimePoint now = deps_.clock->Now();
    // Collected first: answering may end a stateless session (and its pending map) at once.
    std::vector<std::pair<std::string, std::string>> late;  // (session id, pending key)
    for (auto& [id, s] : sessions_) {
      for (auto& [key, p] : s->pending) {
        if (p->kind == Pending::Kind::kCall && p->method != "initialize" &&
            (now - std::max(p->started, p->last_heard) >= limit ||
             now - p->started >= jsonrpc::kProgressCapFactor * limit)) {
          late.emplace_back(id, key);
        }
      }
    }
    for (const auto& [sid, key] : late) {
      auto sit = sessions_.find(sid);
      if (sit == sessions_.end()) {
        continue;
      }
      Session& session = *sit->second;
      auto pit = session.pending.find(key);
      if (pit == session.pending.end()) {
        continue;
      }
      Pending& p = *pit->second;
      // The worker is told to stop (the mux then drops its late answer), as for a client's own
      // cancellation; the client gets -32001 instead of waiting for ever.
      SendToUpstream(*p.binding,
                     jsonrpc::CancelledNotification(p.client_id, "mcpmw: request timeout"));
      if (p.exchange != nullptr) {
        deps_.governance->Abandon(*p.exchange, jsonrpc::kServerUnavailable, "request timeout");
        p.exchange.reset();
      }
      CountCall(session, p.method, "timeout", p.binding->server->name, now - p.started);
      if (!p.fan_key.empty()) {
        // One server of an aggregated tools/list: the list goes on without its tools.
        std::string fan_key = p.fan_key;
        std::string server = p.binding->server->name;
        LogError("gateway: ", server, " did not answer tools/list within ", limit_ms,
                 " ms; the aggregated list leaves its tools out");
        session.pending.erase(pit);
        PartDone(session, fan_key, server, {});
        continue;
      }
      // Past the hard maximum (progress kept extending it), or silent for the timeout.
      const bool capped = now - p.started >= jsonrpc::kProgressCapFactor * limit;
      const int64_t ms = capped ? jsonrpc::kProgressCapFactor * limit_ms : limit_ms;
      FinishPending(
          session, p,
          jsonrpc::ErrorResponse(
              p.client_id, jsonrpc::kServerUnavailable,
              absl::StrCat("the server did not answer within ", ms, " ms (",
                           capped ? absl::StrCat(jsonrpc::kProgressCapFactor,
                                                 "× requestTimeoutMs: progress notifications "
                                                 "extend a request that far at most")
                                  : std::string("requestTimeoutMs"),
                           "); mcpmw cancelled the request"),
              absl::StrCat(R"({"reason":"request-timeout","timeoutMs":)", ms, "}")));
    }
  }
}

io::Task<void> Gateway::KeepAlives() {
  Duration tick = config_.sse_keep_alive;
  if (tick.count() <= 0) {
    tick = std::chrono::seconds(15);
  }
  while (!stopped_) {
    bool go_on = co_await Pause(tick, &keepalive_sleep_);
    if (!go_on) {
      break;
    }
    ended_.clear();
    std::string comment;
    framing::AppendSseComment(&comment, "keep-alive");
    TimePoint now = deps_.clock->Now();
    std::vector<std::string> idle;
    for (auto& [id, s] : sessions_) {
      const std::deque<Session::Event>& events = s->events;
      std::erase_if(s->streams, [&events](const std::unique_ptr<Stream>& st) {
        if (st->is_get || !st->done || st->http != nullptr) {
          return false;
        }
        return std::none_of(events.begin(), events.end(),
                            [&](const Session::Event& e) { return e.stream == st->number; });
      });
      bool open = false;
      for (auto& st : s->streams) {
        if (st->sse && st->http != nullptr && !st->http->finished()) {
          st->http->Write(comment);
          open = true;
        }
      }
      if (!s->stateless && !open && s->pending.empty() &&
          now - s->last_active > config_.session_idle_timeout) {
        idle.push_back(id);
      }
    }
    for (const std::string& id : idle) {
      if (auto it = sessions_.find(id); it != sessions_.end()) {
        EndSession(*it->second, "idle timeout");
      }
    }
  }
}

io::Task<void> Gateway::Drain() {
  draining_ = true;
  TimePoint deadline = deps_.clock->Now() + config_.drain_timeout;
  while (in_flight_ > 0 && deps_.clock->Now() < deadline) {
    io::SleepOp nap(ring_, std::chrono::milliseconds(10));
    co_await nap;
  }
  if (in_flight_ > 0) {
    LogError("gateway: drain timeout with ", in_flight_,
             " request(s) still in flight; ending them");
  }
  stopped_ = true;
  std::vector<std::string> ids;
  for (auto& [id, s] : sessions_) {
    ids.push_back(id);
  }
  for (const std::string& id : ids) {
    if (auto it = sessions_.find(id); it != sessions_.end()) {
      EndSession(*it->second, "mcpmw is shutting down");
    }
  }
  for (auto& s : servers_) {
    if (s->upstream != nullptr) {
      std::shared_ptr<proxy::Upstream> up = std::move(s->upstream);
      co_await up->Stop();
    }
  }
  broker_->Stop();
  if (keepalive_sleep_ != nullptr) {
    ring_.Cancel(keepalive_sleep_);
  }
  if (timeout_sleep_ != nullptr) {
    ring_.Cancel(timeout_sleep_);
  }
}

// ---- admin ------------------------------------------------------------------------------------

void Gateway::AdminHandler::OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) {
  auto json = [&](int status, std::string body) {
    stream->Respond({.status = status,
                     .headers = {{"Content-Type", "application/json"}},
                     .body = std::move(body)});
  };
  proxy::Governance& gov = *g_.deps_.governance;
  if (request.path == "/admin/bundles" && request.method == "GET") {
    json(200, BundlesJson(gov.store()));
    return;
  }
  if (request.path == "/admin/rollback" && request.method == "POST") {
    if (absl::Status s = gov.Rollback(); !s.ok()) {
      std::string body = R"({"error":)";
      jsonrpc::AppendJsonString(Sv(s.message()), &body);
      json(409, body + "}");
      return;
    }
    json(200, BundlesJson(gov.store()));
    return;
  }
  if (request.path == "/admin/reload" && request.method == "POST") {
    absl::StatusOr<std::optional<std::string>> r = gov.Reload();
    if (!r.ok()) {
      std::string body = R"({"error":)";
      jsonrpc::AppendJsonString(Sv(r.status().message()), &body);
      json(422, body + "}");
      return;
    }
    json(200, BundlesJson(gov.store()));
    return;
  }
  if (request.path == "/admin/pools" && request.method == "GET") {
    std::string body = "[";
    bool first = true;
    for (const pool::ProfileStats& st : g_.deps_.pools->AllStats()) {
      absl::StrAppend(&body, first ? "" : ",", R"({"profile":)");
      jsonrpc::AppendJsonString(st.profile, &body);
      absl::StrAppend(&body, R"(,"starting":)", st.starting, R"(,"warm":)", st.warm,
                      R"(,"leased":)", st.leased, R"(,"draining":)", st.draining, R"(,"waiting":)",
                      st.waiting, R"(,"spawned":)", st.spawned_total, R"(,"failed":)",
                      st.failed_total, R"(,"breaker":")", Sv(pool::BreakerStateName(st.breaker)),
                      "\"}");
      first = false;
    }
    absl::StrAppend(&body, "]");
    json(200, body);
    return;
  }
  if (request.path == "/admin/sessions" && request.method == "GET") {
    json(200, absl::StrCat(R"({"sessions":)", g_.sessions_.size(), R"(,"inFlight":)", g_.in_flight_,
                           R"(,"draining":)", g_.draining_ ? "true" : "false", "}"));
    return;
  }
  if (request.path == "/admin/drain" && request.method == "POST") {
    json(202, R"({"draining":true})");
    if (g_.on_drain_requested) {
      g_.on_drain_requested();
    }
    return;
  }
  g_.ReplyPlain(*stream, 404,
                "admin endpoints: GET /admin/bundles, POST /admin/reload, POST /admin/rollback, "
                "GET /admin/pools, GET /admin/sessions, POST /admin/drain");
}

}  // namespace mcpmw::http
