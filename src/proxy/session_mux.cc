#include "src/proxy/session_mux.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::proxy {
namespace {

namespace od = simdjson::ondemand;
using jsonrpc::MessageKind;

// One rewrite: `part` is a view into the message, `replacement` its new bytes.
struct Edit {
  std::string_view part;
  std::string_view replacement;
};

// `json` with every edit applied (parts must not overlap). Applied from the last part to the
// first, so the offsets of the parts still to do are unchanged by the ones already done.
std::string ApplyEdits(std::string_view json, std::vector<Edit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.part.data() > b.part.data(); });
  std::string out(json);
  for (const Edit& e : edits) {
    size_t offset = e.part.data() - json.data();
    out =
        middleware::Splice(out, std::string_view(out).substr(offset, e.part.size()), e.replacement);
  }
  return out;
}

// Worker ids, worker progress tokens and per-session server request ids are JSON integers the
// mux wrote; anything else (a string, a negative number) is not one of them.
bool ParseCounter(std::string_view raw, uint64_t* out) {
  if (raw.empty() || raw[0] < '0' || raw[0] > '9') {
    return false;
  }
  return absl::SimpleAtoi(Sv(raw), out);
}

// The name of a member the mux rewrites that appears twice where the mux reads it, or empty.
// JSON parsers disagree on which duplicate wins; refusing them means the worker can only ever
// read the value the mux mapped. `json` must be followed by simdjson's padding.
std::string_view RepeatedRoutingMember(std::string_view json) {
  thread_local od::parser parser;
  od::document doc;
  od::object root;
  if (parser.iterate(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc) !=
          simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return {};
  }
  int ids = 0;
  int params = 0;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return {};
    }
    if (key == "id" && ++ids > 1) {
      return "id";
    }
    if (key != "params") {
      continue;
    }
    if (++params > 1) {
      return "params";
    }
    od::value value;
    od::object obj;
    if (field.value().get(value) != simdjson::SUCCESS ||
        value.get_object().get(obj) != simdjson::SUCCESS) {
      continue;
    }
    int request_ids = 0;
    int tokens = 0;
    int metas = 0;
    for (auto member : obj) {
      std::string_view name;
      if (member.unescaped_key().get(name) != simdjson::SUCCESS) {
        return {};
      }
      if (name == "requestId" && ++request_ids > 1) {
        return "requestId";
      }
      if (name == "progressToken" && ++tokens > 1) {
        return "progressToken";
      }
      if (name != "_meta") {
        continue;
      }
      if (++metas > 1) {
        return "_meta";
      }
      od::value meta_value;
      od::object meta;
      if (member.value().get(meta_value) != simdjson::SUCCESS ||
          meta_value.get_object().get(meta) != simdjson::SUCCESS) {
        continue;
      }
      int meta_tokens = 0;
      for (auto m : meta) {
        std::string_view meta_name;
        if (m.unescaped_key().get(meta_name) != simdjson::SUCCESS) {
          return {};
        }
        if (meta_name == "progressToken" && ++meta_tokens > 1) {
          return "progressToken";
        }
      }
    }
  }
  return {};
}

std::string ResultResponse(std::string_view id, std::string_view result_json) {
  return absl::StrCat(R"({"jsonrpc":"2.0","id":)", Sv(id), R"(,"result":)", Sv(result_json), "}");
}

}  // namespace

SessionMux::SessionMux(SessionMuxOptions options) : options_(options) {}

absl::Status SessionMux::SetCachedInitialize(std::string_view result_json) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(result_json.data(), result_json.size()).get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        "the cached initialize result must be the JSON object of the worker's `result`");
  }
  if (initialize_sent_) {
    return absl::FailedPreconditionError(
        "a session's initialize was already sent to the shared worker; a cached result can only "
        "be supplied before the first session initializes");
  }
  cached_initialize_.assign(result_json);
  handshake_ = Handshake::kDone;
  initialized_forwarded_ = true;  // the pool completed the whole handshake
  return absl::OkStatus();
}

SessionId SessionMux::OpenSession() {
  SessionId id = next_session_++;
  sessions_.try_emplace(id);
  return id;
}

std::string_view SessionMux::Load(std::string_view line) {
  buffer_.assign(line.data(), line.size());
  buffer_.append(simdjson::SIMDJSON_PADDING, '\0');
  std::string_view view(buffer_.data(), line.size());
  reader_.Read(view, &env_);
  return view;
}

// ---- client → worker ----------------------------------------------------------------------

MuxOutput SessionMux::FromClient(SessionId session, std::string_view line) {
  MuxOutput out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return out;
  }
  Session& s = it->second;
  std::string_view msg = Load(line);
  auto reply = [&out, session](std::string text) {
    out.to_clients.push_back({session, std::move(text)});
  };
  switch (env_.kind) {
    case MessageKind::kParseError:
      reply(jsonrpc::ErrorResponse({}, jsonrpc::kParseError, env_.problem));
      return out;
    case MessageKind::kInvalid:
      reply(jsonrpc::ErrorResponse(env_.id, jsonrpc::kInvalidRequest, env_.problem));
      return out;
    case MessageKind::kBatch:
      reply(jsonrpc::ErrorResponse(
          {}, jsonrpc::kInvalidRequest,
          "JSON-RPC batches are not supported on a shared MCP server; send each message alone"));
      return out;
    default:
      break;
  }
  if (std::string_view repeated = RepeatedRoutingMember(msg); !repeated.empty()) {
    if (env_.kind == MessageKind::kRequest) {
      reply(jsonrpc::ErrorResponse(
          env_.id, jsonrpc::kInvalidRequest,
          absl::StrCat("the message repeats the member \"", Sv(repeated),
                       "\", which a shared MCP server cannot route unambiguously")));
    }
    LogDebug("shared mux: dropped a client message that repeats \"", Sv(repeated), "\"");
    return out;
  }
  switch (env_.kind) {
    case MessageKind::kRequest:
      HandleClientRequest(session, s, msg, out);
      break;
    case MessageKind::kNotification:
      HandleClientNotification(session, s, msg, out);
      break;
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse:
      HandleClientResponse(s, msg, out);
      break;
    default:
      break;
  }
  return out;
}

void SessionMux::HandleClientRequest(SessionId sid, Session& s, std::string_view line,
                                     MuxOutput& out) {
  auto reply = [&out, sid](std::string text) { out.to_clients.push_back({sid, std::move(text)}); };
  if (worker_gone_) {
    reply(jsonrpc::ErrorResponse(env_.id, jsonrpc::kServerUnavailable,
                                 "The shared MCP server has exited; the request was not delivered",
                                 R"({"reason":"server-unavailable","retryable":true})"));
    return;
  }
  if (env_.method.starts_with("notifications/")) {
    reply(jsonrpc::ErrorResponse(
        env_.id, jsonrpc::kInvalidRequest,
        absl::StrCat(Sv(env_.method), " is a notification and carries no id")));
    return;
  }
  if (s.requests.contains(Sv(env_.id)) ||
      (s.waiting_initialize && *s.waiting_initialize == env_.id)) {
    reply(jsonrpc::ErrorResponse(
        env_.id, jsonrpc::kInvalidRequest,
        absl::StrCat("the id ", Sv(env_.id), " is already used by a request in flight")));
    return;
  }
  size_t in_flight = s.requests.size() + (s.waiting_initialize ? 1 : 0);
  if (in_flight >= options_.max_in_flight_per_session) {
    reply(jsonrpc::ErrorResponse(
        env_.id, kSharedInFlightLimit,
        absl::StrCat("This session already has ", in_flight,
                     " requests in flight on a shared MCP server (the limit); wait for answers "
                     "before sending more"),
        R"({"reason":"in-flight-limit","retryable":true})"));
    return;
  }
  if (env_.method == "initialize") {
    HandleInitialize(sid, s, line, out);
    return;
  }
  if (env_.method == "resources/subscribe" && !env_.resource_uri.empty()) {
    std::string uri(env_.resource_uri);
    if (s.subscriptions.contains(uri)) {
      Forward(sid, s, line, PendingKind::kPlain, {}, out);
      return;
    }
    if (s.subscriptions.size() >= options_.max_subscriptions_per_session) {
      reply(jsonrpc::ErrorResponse(
          env_.id, kSharedInFlightLimit,
          absl::StrCat("This session already holds ", s.subscriptions.size(),
                       " resource subscriptions on a shared MCP server (the limit); unsubscribe "
                       "from one first"),
          R"({"reason":"subscription-limit","retryable":false})"));
      return;
    }
    // Counted now, not on success: an unsubscribe from another session that the worker will
    // see after this subscribe must not release the uri.
    Subscribe(s, uri);
    Forward(sid, s, line, PendingKind::kSubscribe, uri, out);
    return;
  }
  if (env_.method == "resources/unsubscribe" && !env_.resource_uri.empty()) {
    std::string uri(env_.resource_uri);
    bool mine = s.subscriptions.contains(uri);
    auto holders = subscribers_.find(uri);
    size_t others = (holders == subscribers_.end() ? 0 : holders->second) - (mine ? 1 : 0);
    if (mine) {
      Unsubscribe(s, uri);
    }
    if (others > 0) {
      // The worker's subscription serves other sessions too: keep it.
      reply(ResultResponse(env_.id, "{}"));
      return;
    }
    Forward(sid, s, line, PendingKind::kPlain, {}, out);
    return;
  }
  Forward(sid, s, line, PendingKind::kPlain, {}, out);
}

void SessionMux::HandleInitialize(SessionId sid, Session& s, std::string_view line,
                                  MuxOutput& out) {
  if (s.sent_initialize) {
    out.to_clients.push_back(
        {sid, jsonrpc::ErrorResponse(env_.id, jsonrpc::kInvalidRequest,
                                     "initialize was already sent in this session")});
    return;
  }
  s.sent_initialize = true;
  switch (handshake_) {
    case Handshake::kDone:
      s.ready = true;
      out.to_clients.push_back({sid, ResultResponse(env_.id, cached_initialize_)});
      return;
    case Handshake::kInFlight:
      s.waiting_initialize.emplace(env_.id);
      initialize_waiters_.emplace_back(sid, std::string(line));
      return;
    case Handshake::kNone:
      handshake_ = Handshake::kInFlight;
      initialize_sent_ = true;
      Forward(sid, s, line, PendingKind::kInitialize, {}, out);
      return;
  }
}

void SessionMux::Forward(SessionId sid, Session& s, std::string_view line, PendingKind kind,
                         std::string_view uri, MuxOutput& out) {
  uint64_t worker_id = next_worker_id_++;
  std::string worker_text = absl::StrCat(worker_id);
  std::vector<Edit> edits = {{env_.id, worker_text}};
  if (!env_.progress_token.empty()) {
    // The worker id doubles as the progress token: unique across active requests.
    edits.push_back({env_.progress_token, worker_text});
  }
  out.to_worker.push_back(ApplyEdits(line, std::move(edits)));
  s.requests.emplace(std::string(env_.id), worker_id);
  pending_.emplace(worker_id, Pending{.session = sid,
                                      .client_id = std::string(env_.id),
                                      .client_token = std::string(env_.progress_token),
                                      .kind = kind,
                                      .uri = std::string(uri)});
}

void SessionMux::HandleClientNotification(SessionId sid, Session& s, std::string_view line,
                                          MuxOutput& out) {
  if (worker_gone_) {
    return;
  }
  if (env_.method == "notifications/initialized") {
    // The worker's handshake happens once; later sessions' notifications would be a protocol
    // error there.
    if (handshake_ == Handshake::kDone && !initialized_forwarded_) {
      initialized_forwarded_ = true;
      out.to_worker.emplace_back(line);
    }
    return;
  }
  if (env_.method == "notifications/cancelled") {
    auto it = s.requests.find(Sv(env_.request_id));
    if (it == s.requests.end()) {
      LogDebug("shared mux: session ", sid, " cancelled id ", Sv(env_.request_id),
               ", which is not in flight; dropped");
      return;
    }
    auto pending = pending_.find(it->second);
    if (pending != pending_.end() && pending->second.kind == PendingKind::kInitialize) {
      return;  // initialize cannot be cancelled
    }
    std::string worker_text = absl::StrCat(it->second);
    out.to_worker.push_back(middleware::Splice(line, env_.request_id, worker_text));
    if (pending != pending_.end()) {
      pending_.erase(pending);
    }
    s.requests.erase(it);
    return;
  }
  if (env_.method == "notifications/progress") {
    // Progress on a worker request this session is answering: only for tokens it was given.
    absl::StatusOr<std::optional<std::string_view>> token =
        middleware::FindMember(line, {"params", "progressToken"});
    if (!token.ok() || !token->has_value()) {
      return;
    }
    for (const auto& [local, request] : s.server_requests) {
      if (!request.progress_token.empty() && request.progress_token == **token) {
        out.to_worker.emplace_back(line);
        return;
      }
    }
    LogDebug("shared mux: session ", sid, " sent progress for a token it does not own; dropped");
    return;
  }
  out.to_worker.emplace_back(line);
}

void SessionMux::HandleClientResponse(Session& s, std::string_view line, MuxOutput& out) {
  uint64_t local = 0;
  if (worker_gone_ || !ParseCounter(env_.id, &local)) {
    return;
  }
  auto it = s.server_requests.find(local);
  if (it == s.server_requests.end()) {
    LogDebug("shared mux: a client answered id ", Sv(env_.id), ", which it was not asked; dropped");
    return;
  }
  out.to_worker.push_back(middleware::Splice(line, env_.id, it->second.worker_id));
  server_requests_.erase(it->second.worker_id);
  s.server_requests.erase(it);
}

// ---- worker → clients ---------------------------------------------------------------------

MuxOutput SessionMux::FromWorker(std::string_view line) {
  MuxOutput out;
  std::string_view msg = Load(line);
  switch (env_.kind) {
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse:
      HandleWorkerResponse(msg, out);
      break;
    case MessageKind::kRequest:
      HandleWorkerRequest(msg, out);
      break;
    case MessageKind::kNotification:
      HandleWorkerNotification(msg, out);
      break;
    default:
      LogError("the shared MCP server wrote a message that is not JSON-RPC (",
               Sv(env_.problem.empty() ? MessageKindName(env_.kind) : env_.problem), "); dropped");
      break;
  }
  return out;
}

void SessionMux::HandleWorkerResponse(std::string_view line, MuxOutput& out) {
  uint64_t worker_id = 0;
  auto it = ParseCounter(env_.id, &worker_id) ? pending_.find(worker_id) : pending_.end();
  if (it == pending_.end()) {
    LogDebug("shared mux: the worker answered id ", Sv(env_.id),
             ", which is not in flight (cancelled or its session closed); dropped");
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  Session* s = nullptr;
  if (auto sit = sessions_.find(p.session); p.session != 0 && sit != sessions_.end()) {
    s = &sit->second;
    s->requests.erase(p.client_id);
  }
  bool ok = env_.kind == MessageKind::kResponse;
  if (p.kind == PendingKind::kSubscribe && !ok && s != nullptr && !p.uri.empty()) {
    Unsubscribe(*s, p.uri);  // the worker refused: the hold counted at request time goes
  }
  if (p.kind == PendingKind::kInitialize && ok) {
    absl::StatusOr<std::optional<std::string_view>> result =
        middleware::FindMember(line, {"result"});
    if (result.ok() && result->has_value() && (*result)->starts_with('{')) {
      cached_initialize_.assign(**result);
      handshake_ = Handshake::kDone;
    } else {
      ok = false;
      LogError("the shared MCP server's initialize result is not a JSON object");
    }
  }
  if (s != nullptr) {
    if (p.kind == PendingKind::kInitialize && ok) {
      s->ready = true;
    }
    out.to_clients.push_back({p.session, middleware::Splice(line, env_.id, p.client_id)});
  }
  if (p.kind == PendingKind::kInitialize) {
    // Both reload the message buffer: `line` is not used after this point.
    if (handshake_ == Handshake::kDone) {
      AnswerWaiters(out);
    } else {
      handshake_ = Handshake::kNone;
      ForwardNextWaiter(out);
    }
  }
}

void SessionMux::AnswerWaiters(MuxOutput& out) {
  for (auto& [sid, message] : initialize_waiters_) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || !it->second.waiting_initialize) {
      continue;
    }
    Session& s = it->second;
    s.ready = true;
    out.to_clients.push_back({sid, ResultResponse(*s.waiting_initialize, cached_initialize_)});
    s.waiting_initialize.reset();
  }
  initialize_waiters_.clear();
}

void SessionMux::ForwardNextWaiter(MuxOutput& out) {
  while (!initialize_waiters_.empty()) {
    auto [sid, message] = std::move(initialize_waiters_.front());
    initialize_waiters_.pop_front();
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || !it->second.waiting_initialize) {
      continue;
    }
    it->second.waiting_initialize.reset();
    std::string_view msg = Load(message);
    handshake_ = Handshake::kInFlight;
    Forward(sid, it->second, msg, PendingKind::kInitialize, {}, out);
    return;
  }
}

void SessionMux::HandleWorkerRequest(std::string_view line, MuxOutput& out) {
  if (env_.method == "ping") {
    out.to_worker.push_back(ResultResponse(env_.id, "{}"));
    return;
  }
  if (server_requests_.contains(Sv(env_.id))) {
    out.to_worker.push_back(jsonrpc::ErrorResponse(
        env_.id, jsonrpc::kInvalidRequest, "the id is already used by a request in flight"));
    return;
  }
  std::optional<SessionId> target;
  uint64_t token = 0;
  if (ParseCounter(env_.progress_token, &token)) {
    if (auto it = pending_.find(token); it != pending_.end() && it->second.session != 0) {
      target = it->second.session;
    }
  }
  if (!target) {
    target = AttributeServerRequest();
  }
  auto sit = target ? sessions_.find(*target) : sessions_.end();
  if (sit == sessions_.end()) {
    std::string data = R"({"reason":"unattributable","method":)";
    jsonrpc::AppendJsonString(env_.method, &data);
    data.push_back('}');
    out.to_worker.push_back(jsonrpc::ErrorResponse(
        env_.id, kSharedNoSession,
        absl::StrCat("mcpmw runs this MCP server in shared mode and cannot attribute this ",
                     Sv(env_.method),
                     " request to a client session (no related request in flight is "
                     "identifiable); it was not delivered"),
        data));
    return;
  }
  Session& s = sit->second;
  if (s.server_requests.size() >= options_.max_in_flight_per_session) {
    out.to_worker.push_back(
        jsonrpc::ErrorResponse(env_.id, kSharedInFlightLimit,
                               "the client session already has too many server requests to answer",
                               R"({"reason":"in-flight-limit","retryable":true})"));
    return;
  }
  uint64_t local = s.next_local_id++;
  out.to_clients.push_back({*target, middleware::Splice(line, env_.id, absl::StrCat(local))});
  s.server_requests.emplace(local,
                            ServerRequest{.worker_id = std::string(env_.id),
                                          .progress_token = std::string(env_.progress_token)});
  server_requests_.emplace(std::string(env_.id),
                           RoutedServerRequest{.session = *target, .local_id = local});
}

std::optional<SessionId> SessionMux::AttributeServerRequest() const {
  std::optional<SessionId> only;
  for (const auto& [sid, s] : sessions_) {
    if (s.requests.empty()) {
      continue;
    }
    if (only) {
      return std::nullopt;  // several sessions are waiting on the worker: it could be any
    }
    only = sid;
  }
  return only;
}

void SessionMux::HandleWorkerNotification(std::string_view line, MuxOutput& out) {
  if (env_.method == "notifications/progress") {
    absl::StatusOr<std::optional<std::string_view>> token =
        middleware::FindMember(line, {"params", "progressToken"});
    uint64_t worker_id = 0;
    if (!token.ok() || !token->has_value() || !ParseCounter(**token, &worker_id)) {
      LogDebug("shared mux: progress without a token the mux issued; dropped");
      return;
    }
    auto it = pending_.find(worker_id);
    if (it == pending_.end() || it->second.session == 0 || it->second.client_token.empty()) {
      return;  // its request completed or was cancelled
    }
    out.to_clients.push_back(
        {it->second.session, middleware::Splice(line, **token, it->second.client_token)});
    return;
  }
  if (env_.method == "notifications/cancelled") {
    auto it = server_requests_.find(Sv(env_.request_id));
    if (it == server_requests_.end()) {
      return;
    }
    RoutedServerRequest routed = it->second;
    server_requests_.erase(it);
    if (auto sit = sessions_.find(routed.session); sit != sessions_.end()) {
      sit->second.server_requests.erase(routed.local_id);
      out.to_clients.push_back({routed.session, middleware::Splice(line, env_.request_id,
                                                                   absl::StrCat(routed.local_id))});
    }
    return;
  }
  if (env_.method == "notifications/resources/updated") {
    std::string uri(env_.resource_uri);
    for (const auto& [sid, s] : sessions_) {
      if (s.subscriptions.contains(uri)) {
        out.to_clients.push_back({sid, std::string(line)});
      }
    }
    return;
  }
  for (const auto& [sid, s] : sessions_) {
    if (s.ready) {
      out.to_clients.push_back({sid, std::string(line)});
    }
  }
}

// ---- session and worker lifecycle -----------------------------------------------------------

void SessionMux::Subscribe(Session& s, const std::string& uri) {
  if (s.subscriptions.insert(uri).second) {
    ++subscribers_[uri];
  }
}

void SessionMux::Unsubscribe(Session& s, const std::string& uri) {
  if (s.subscriptions.erase(uri) == 0) {
    return;
  }
  if (auto it = subscribers_.find(uri); it != subscribers_.end() && --it->second == 0) {
    subscribers_.erase(it);
  }
}

MuxOutput SessionMux::CloseSession(SessionId session) {
  MuxOutput out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return out;
  }
  Session& s = it->second;
  for (const auto& [client_id, worker_id] : s.requests) {
    auto pending = pending_.find(worker_id);
    if (pending == pending_.end()) {
      continue;
    }
    if (pending->second.kind == PendingKind::kInitialize) {
      pending->second.session = 0;  // its result still fills the cache for the others
      continue;
    }
    pending_.erase(pending);
    if (!worker_gone_) {
      out.to_worker.push_back(
          jsonrpc::CancelledNotification(absl::StrCat(worker_id), "the client session closed"));
    }
  }
  for (const auto& [local, request] : s.server_requests) {
    server_requests_.erase(request.worker_id);
    if (!worker_gone_) {
      out.to_worker.push_back(jsonrpc::ErrorResponse(
          request.worker_id, kSharedNoSession,
          "the client session this request was routed to closed before answering",
          R"({"reason":"session-closed"})"));
    }
  }
  for (const std::string& uri : s.subscriptions) {
    auto holders = subscribers_.find(uri);
    if (holders == subscribers_.end() || --holders->second > 0) {
      continue;
    }
    subscribers_.erase(holders);
    if (worker_gone_) {
      continue;
    }
    // A string id, which no client request ever gets on the worker: its answer is dropped
    // without the mux keeping any state for it.
    std::string request =
        absl::StrCat(R"({"jsonrpc":"2.0","id":"mcpmw-unsubscribe-)", next_internal_id_++,
                     R"(","method":"resources/unsubscribe","params":{"uri":)");
    jsonrpc::AppendJsonString(uri, &request);
    request.append("}}");
    out.to_worker.push_back(std::move(request));
  }
  if (s.waiting_initialize) {
    std::erase_if(initialize_waiters_, [session](const auto& w) { return w.first == session; });
  }
  sessions_.erase(it);
  return out;
}

MuxOutput SessionMux::WorkerExited(std::string_view how) {
  MuxOutput out;
  worker_gone_ = true;
  std::string data = R"({"reason":"server-exited","retryable":true,"detail":)";
  jsonrpc::AppendJsonString(how, &data);
  data.push_back('}');
  std::string message =
      absl::StrCat("The shared MCP server exited (", Sv(how),
                   ") while this request was in flight; it was not completed. Retry if the "
                   "call is idempotent");
  for (auto& [sid, s] : sessions_) {
    for (const auto& [client_id, worker_id] : s.requests) {
      out.to_clients.push_back(
          {sid, jsonrpc::ErrorResponse(client_id, jsonrpc::kServerExited, message, data)});
    }
    if (s.waiting_initialize) {
      out.to_clients.push_back(
          {sid,
           jsonrpc::ErrorResponse(*s.waiting_initialize, jsonrpc::kServerExited, message, data)});
    }
    s.requests.clear();
    s.server_requests.clear();
    s.subscriptions.clear();
    s.waiting_initialize.reset();
  }
  pending_.clear();
  server_requests_.clear();
  subscribers_.clear();
  initialize_waiters_.clear();
  return out;
}

// ---- counters -----------------------------------------------------------------------------

std::optional<SessionCounts> SessionMux::Counts(SessionId session) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return std::nullopt;
  }
  const Session& s = it->second;
  return SessionCounts{
      .requests_in_flight = s.requests.size() + (s.waiting_initialize ? 1 : 0),
      .server_requests_in_flight = s.server_requests.size(),
      .subscriptions = s.subscriptions.size(),
  };
}

size_t SessionMux::TotalInFlight() const {
  size_t total = 0;
  for (const auto& [sid, s] : sessions_) {
    total += s.requests.size() + (s.waiting_initialize ? 1 : 0);
  }
  return total;
}

size_t SessionMux::WorkerInFlight() const { return pending_.size(); }

}  // namespace mcpmw::proxy
