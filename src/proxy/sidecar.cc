#include "src/proxy/sidecar.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"

extern char** environ;

namespace mcpmw::proxy {
namespace {

using framing::FrameResult;
using framing::FrameStatus;
using jsonrpc::MessageKind;

// How much of an oversized frame's start is searched for its id.
constexpr size_t kSniffBytes = 4096;
// How long the pump may keep reading a dead server's stdout (a descendant outside its process
// group could hold the pipe open forever).
constexpr std::chrono::milliseconds kDrainGrace{500};
constexpr std::chrono::milliseconds kMaxBackoff{60000};
// How long the request timer sleeps while nothing is in flight; a new request wakes it earlier.
constexpr std::chrono::hours kTimerParked{1};
// Ids of timed-out requests remembered for dropping late answers; a server that never answers
// its cancelled requests must not grow the set without end.
constexpr size_t kMaxTimedOutIds = 4096;
// A read holding a long burst is forwarded in parts of this many frames, so that the peer starts
// on the first ones while the rest are still being handled (a governed frame takes microseconds)
// instead of the whole burst waiting for its last frame.
constexpr int kBurstFrames = 16;

std::string MinifiedParams(std::string_view payload) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(payload.data(), payload.size()).get(doc) != simdjson::SUCCESS) {
    return "{}";
  }
  simdjson::dom::element params;
  if (doc["params"].get(params) != simdjson::SUCCESS) {
    return "{}";
  }
  return simdjson::minify(params);
}

// An id (or progress token) read from a DOM, in its canonical spelling: a string as
// AppendJsonString writes it, anything else minified.
std::string IdToken(simdjson::dom::element id) {
  std::string_view text;
  if (id.get_string().get(text) == simdjson::SUCCESS) {
    std::string out;
    jsonrpc::AppendJsonString(text, &out);
    return out;
  }
  return simdjson::minify(id);
}

// Replaces a raw string token that holds escapes with its canonical spelling (kept in
// `storage`), so that `"\u0061"` and `"a"`, one id to every JSON reader, are one key in the
// in-flight tables: a server's SDK answers with its own spelling of the client's id.
void CanonicalizeToken(std::string_view* token, std::string* storage) {
  if (token->size() < 2 || token->front() != '"' || token->find('\\') == std::string_view::npos) {
    return;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element parsed;
  if (parser.parse(token->data(), token->size()).get(parsed) == simdjson::SUCCESS) {
    *storage = IdToken(parsed);
    *token = *storage;
  }
}

// What mcpmw needs of one member of a JSON-RPC batch.
struct BatchMember {
  bool is_request_or_notification = false;  // it has a method
  std::string id;                           // canonical, as IdToken spells it; "" when absent
};

// The members of the batch `payload` (followed by the read buffer's padding, as simdjson needs),
// or nothing when it is not valid JSON. A member that is not an object has neither.
std::optional<std::vector<BatchMember>> ReadBatch(std::string_view payload) {
  simdjson::dom::parser parser;
  simdjson::dom::array members;
  if (parser.parse(payload.data(), payload.size(), false).get_array().get(members) !=
      simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::vector<BatchMember> out;
  for (simdjson::dom::element member : members) {
    BatchMember& m = out.emplace_back();
    simdjson::dom::object object;
    if (member.get_object().get(object) != simdjson::SUCCESS) {
      continue;
    }
    m.is_request_or_notification = object["method"].error() == simdjson::SUCCESS;
    if (simdjson::dom::element id; object["id"].get(id) == simdjson::SUCCESS) {
      m.id = IdToken(id);
    }
  }
  return out;
}

// The token of params.progressToken of a notifications/progress, or "" when it has none.
std::string ProgressTokenOf(std::string_view payload) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(payload.data(), payload.size()).get(doc) != simdjson::SUCCESS) {
    return {};
  }
  simdjson::dom::element token;
  if (doc["params"]["progressToken"].get(token) != simdjson::SUCCESS) {
    return {};
  }
  return IdToken(token);  // the spelling the envelope reader keeps a request's token in
}

std::string ExitData(std::string_view reason, bool retryable, std::string_view detail) {
  std::string out = absl::StrCat(R"({"reason":")", Sv(reason), R"(","retryable":)",
                                 retryable ? "true" : "false", R"(,"detail":)");
  jsonrpc::AppendJsonString(detail, &out);
  out.push_back('}');
  return out;
}

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The id of the oversized frame `reader` just reported, when it can be read from the frame's
// start (the body follows the header in Content-Length framing).
std::string_view OversizedFrameId(const framing::FrameReader& reader, const FrameResult& r) {
  std::string_view start = reader.Buffered();
  if (reader.framing() == framing::Framing::kContentLength) {
    start.remove_prefix(r.consumed);
  }
  return SniffId(start.substr(0, kSniffBytes));
}

}  // namespace

std::string_view SniffId(std::string_view prefix) {
  int depth = 0;
  bool in_string = false;
  size_t string_start = 0;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = prefix[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        std::string_view key = prefix.substr(string_start, i + 1 - string_start);
        if (depth != 1 || (key != "\"id\"" && key != "\"params\"")) {
          continue;
        }
        size_t j = i + 1;
        while (j < prefix.size() && IsWs(prefix[j])) {
          ++j;
        }
        if (j >= prefix.size() || prefix[j] != ':') {
          continue;  // a string value, not a key
        }
        if (key == "\"params\"") {
          return {};  // the id, if any, comes after the payload we could not read
        }
        ++j;
        while (j < prefix.size() && IsWs(prefix[j])) {
          ++j;
        }
        size_t k = j;
        if (k < prefix.size() && prefix[k] == '"') {
          ++k;
          while (k < prefix.size() && prefix[k] != '"' && prefix[k] != '\\') {
            ++k;
          }
          if (k >= prefix.size() || prefix[k] != '"') {
            return {};
          }
          return prefix.substr(j, k + 1 - j);
        }
        if (k < prefix.size() && prefix[k] == '-') {
          ++k;
        }
        while (k < prefix.size() && prefix[k] >= '0' && prefix[k] <= '9') {
          ++k;
        }
        bool digits = k > j && prefix[k - 1] != '-';
        bool ends = k < prefix.size() && (IsWs(prefix[k]) || prefix[k] == ',' || prefix[k] == '}');
        return digits && ends ? prefix.substr(j, k - j) : std::string_view{};
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      string_start = i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return {};
}

Sidecar::Sidecar(io::Ring& ring, SidecarOptions options)
    : ring_(ring),
      options_(std::move(options)),
      client_reader_(ring, options_.client_in, options_.max_message_bytes,
                     framing::Framing::kUnknown),
      client_writer_(ring, options_.client_out, framing::Framing::kUnknown),
      server_reader_(ring, -1, options_.max_message_bytes, options_.server_framing),
      server_writer_(ring, -1,
                     options_.server_framing == framing::Framing::kUnknown &&
                             !options_.server_framing_mirrors_client
                         ? framing::Framing::kNdjson
                         : options_.server_framing),
      server_framing_known_(options_.server_framing != framing::Framing::kUnknown) {}

io::Task<int> Sidecar::Run() {
  tasks_.Spawn(ServerLoop());
  tasks_.Spawn(ClientPump());
  if (options_.signal_fd >= 0) {
    tasks_.Spawn(SignalWatch());
  }
  if (options_.governance != nullptr && !options_.governance->policy_path().empty()) {
    tasks_.Spawn(BundleWatch());
  }
  if (options_.request_timeout.count() > 0) {
    tasks_.Spawn(RequestTimer());
  }
  co_await tasks_.Join();
  // No write may outlive the session: its frames point into the session's buffers.
  co_await client_writer_.Flush();
  co_await server_writer_.Close();
  co_return exit_code_;
}

// ---- client → server ------------------------------------------------------------------------

io::Task<void> Sidecar::ClientPump() {
  while (!finished_) {
    // Frames forwarded to the server borrow the read buffer. The next read may run while they
    // are still being written (so the read and the writev go to the kernel in one submission)
    // as long as it appends after them; otherwise wait for the write first.
    bool keep_views = !server_writer_.Idle();
    if (keep_views && !client_reader_.CanFillKeepingViews()) {
      co_await server_writer_.Flush();
      keep_views = false;
    }
    int n = co_await client_reader_.Fill(keep_views);
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n <= 0) {
      if (!finished_) {
        if (size_t left = client_reader_.framer().PendingBytes(client_reader_.Buffered());
            left > 0) {
          LogError("the client's last ", left, " bytes were not a complete message; dropped");
        }
        BeginShutdown(n == 0 ? "the client closed stdin"
                             : absl::StrCat("reading stdin failed: ", ErrnoText(-n)));
      }
      break;
    }
    int frames = 0;
    while (true) {
      FrameResult r = client_reader_.Next();
      if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
        break;
      }
      if (r.status == FrameStatus::kFrame) {
        HandleClientFrame(r);
        if (++frames % kBurstFrames == 0) {
          server_writer_.FlushNow();
        }
      } else if (r.status == FrameStatus::kOversized) {
        std::string_view id = OversizedFrameId(client_reader_, r);
        LogError("a client message of ", r.frame_bytes, "+ bytes exceeds --max-message-bytes (",
                 options_.max_message_bytes, "); skipped");
        ReplyToClient(id, jsonrpc::kMessageTooLarge,
                      absl::StrCat("Message too large: over the ", options_.max_message_bytes,
                                   "-byte limit (--max-message-bytes); it was not delivered"),
                      R"({"reason":"message-too-large"})");
      } else if (r.status == FrameStatus::kMalformedHeader) {
        ReplyToClient({}, jsonrpc::kParseError,
                      "Parse error: unreadable Content-Length header block; it was skipped",
                      R"({"reason":"bad-frame-header"})");
      }
      client_reader_.Consume(r.consumed);
    }
    client_writer_.StartFlush();
    server_writer_.StartFlush();
    if (client_writer_.broken() && !shutting_down_) {
      BeginShutdown("the client closed stdout");  // nothing can be answered any more
    }
  }
  // The frames still queued borrow this pump's buffer, which outlives the session anyway; the
  // writers are flushed or closed by whoever ends the session.
}

void Sidecar::HandleClientFrame(const FrameResult& frame) {
  if (client_writer_.framing() == framing::Framing::kUnknown) {
    client_writer_.set_framing(client_reader_.framing());
    if (!server_framing_known_ && options_.server_framing_mirrors_client) {
      server_writer_.set_framing(client_reader_.framing());
    }
  }
  envelope_reader_.Read(frame.payload, &env_);
  CanonicalizeTokens();
  LogDebug("client → server ", Sv(jsonrpc::MessageKindName(env_.kind)), " ", Sv(env_.method),
           " id=", Sv(env_.id.empty() ? std::string_view("-") : env_.id),
           " bytes=", frame.payload.size());
  std::unique_ptr<Exchange> exchange;    // a governed request's exchange
  std::optional<std::string> rewritten;  // what a stage made of the request, if it changed it
  switch (env_.kind) {
    case MessageKind::kParseError:
      ReplyToClient({}, jsonrpc::kParseError, absl::StrCat("Parse error: ", Sv(env_.problem)),
                    R"({"reason":"parse-error"})");
      return;
    case MessageKind::kInvalid:
      if (env_.method.empty() && server_in_flight_.erase(Sv(env_.id)) > 0) {
        // A broken answer to the server's request with that id: the client's own requests may
        // use the same id, so the error goes to the server, which is waiting for an answer.
        LogError("the client's answer to the server's request ", Sv(env_.id),
                 " is not a valid JSON-RPC response (", Sv(env_.problem),
                 "); answered the server with an error instead");
        if (state_ == ServerState::kRunning) {
          server_writer_.EnqueueMessage(jsonrpc::ErrorResponse(
              env_.id, jsonrpc::kInternalError,
              absl::StrCat("The client's answer was not a valid JSON-RPC response (",
                           Sv(env_.problem), "); mcpmw did not forward it"),
              R"({"reason":"invalid-client-response"})"));
        }
        return;
      }
      ReplyToClient(env_.id, jsonrpc::kInvalidRequest,
                    absl::StrCat("Invalid Request: ", Sv(env_.problem)),
                    R"({"reason":"invalid-request"})");
      return;
    case MessageKind::kRequest:
      if (state_ == ServerState::kGone || shutting_down_) {
        ReplyToClient(env_.id, jsonrpc::kServerUnavailable,
                      "The MCP server is not running (mcpmw is shutting down or gave up "
                      "restarting it); the request was not delivered",
                      R"({"reason":"server-unavailable","retryable":false})");
        return;
      }
      if (client_in_flight_.contains(Sv(env_.id))) {
        // JSON-RPC ids must be unique among requests in flight: two answers with one id could
        // not be told apart, and the first request's exchange would be lost from the audit log.
        ReplyToClient(env_.id, jsonrpc::kInvalidRequest,
                      absl::StrCat("Invalid Request: the id ", Sv(env_.id),
                                   " is already used by a request in flight; give each request "
                                   "its own id. This one was not delivered"),
                      R"({"reason":"duplicate-id"})");
        return;
      }
      if (options_.governance != nullptr) {
        exchange = options_.governance->Begin(env_, frame.payload);
        const middleware::Verdict& verdict = exchange->ctx.outcome;
        if (verdict.kind == middleware::Verdict::Kind::kReject) {
          ReplyToClient(env_.id, verdict.code, verdict.message, verdict.data_json);
          return;
        }
        rewritten = std::move(exchange->ctx.rewritten);
      }
      if (env_.method == "initialize") {
        initialize_params_ = MinifiedParams(frame.payload);
      }
      {
        Pending& pending = client_in_flight_[std::string(env_.id)];
        pending = Pending{std::string(env_.method), std::move(exchange)};
        if (options_.request_timeout.count() > 0) {
          const TimePoint now = ring_.clock().Now();
          pending.deadline = now + options_.request_timeout;
          pending.hard_deadline = now + jsonrpc::kProgressCapFactor * options_.request_timeout;
          pending.progress_token = std::string(env_.progress_token);
          // The id is the client's again: an answer to it is no longer a late one.
          timed_out_ids_.erase(Sv(env_.id));
          if (request_timer_parked_ && request_timer_sleep_ != nullptr) {
            request_timer_parked_ = false;
            ring_.Cancel(request_timer_sleep_);
          }
        }
      }
      break;
    case MessageKind::kNotification:
      if (env_.method == "notifications/initialized") {
        initialized_notified_ = true;
      } else if (env_.method == "notifications/cancelled" && !env_.request_id.empty()) {
        // The client gave up on that request: if the server dies now, it expects no answer.
        AbandonInFlight(env_.request_id, jsonrpc::kRequestCancelled, "cancelled by the client");
      }
      break;
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse:
      if (orphaned_server_ids_.erase(Sv(env_.id)) > 0) {
        LogDebug("dropped the client's response to ", Sv(env_.id),
                 ": the server that asked has exited");
        return;
      }
      server_in_flight_.erase(Sv(env_.id));
      break;
    case MessageKind::kBatch:
      if (options_.governance != nullptr) {
        RefuseClientBatch(frame.payload);
        return;
      }
      break;  // forwarded as-is; batch members are not tracked
  }
  ForwardToServer(frame, std::move(rewritten), env_);
}

void Sidecar::CanonicalizeTokens() {
  CanonicalizeToken(&env_.id, &token_storage_[0]);
  CanonicalizeToken(&env_.request_id, &token_storage_[1]);
  CanonicalizeToken(&env_.progress_token, &token_storage_[2]);
}

void Sidecar::RefuseClientBatch(std::string_view payload) {
  std::optional<std::vector<BatchMember>> members = ReadBatch(payload);
  if (!members.has_value()) {
    ReplyToClient({}, jsonrpc::kParseError,
                  "Parse error: the JSON-RPC batch is not valid JSON; none of it was delivered",
                  R"({"reason":"parse-error"})");
    return;
  }
  std::string answer;
  for (const BatchMember& member : *members) {
    if (!member.is_request_or_notification || member.id.empty()) {
      continue;  // a notification or an answer: nothing to reply to
    }
    answer += answer.empty() ? '[' : ',';
    answer += jsonrpc::ErrorResponse(
        member.id, jsonrpc::kInvalidRequest,
        "Invalid Request: mcpmw governs each message on its own and does not take JSON-RPC "
        "batches (MCP has none after 2025-03-26); send this request by itself. Nothing in the "
        "batch was delivered",
        R"({"reason":"batch-not-governed"})");
  }
  LogError("refused a JSON-RPC batch of ", members->size(),
           " messages: with --policy every message is governed on its own");
  if (!answer.empty()) {
    answer += ']';
    client_writer_.EnqueueMessage(std::move(answer));
  }
}

void Sidecar::WithholdServerBatch(std::string_view payload) {
  std::vector<BatchMember> members = ReadBatch(payload).value_or(std::vector<BatchMember>{});
  for (const BatchMember& member : members) {
    if (member.is_request_or_notification || member.id.empty()) {
      continue;  // the server's own requests and notifications in it are dropped
    }
    if (AbandonInFlight(member.id, jsonrpc::kInternalError, "the server answered in a batch")) {
      ReplyToClient(member.id, jsonrpc::kInternalError,
                    "The MCP server answered this request inside a JSON-RPC batch, which mcpmw "
                    "cannot govern; the answer was withheld",
                    R"({"reason":"server-batch"})");
    }
  }
  LogError("the MCP server sent a JSON-RPC batch (", members.size(),
           " messages); with --policy it is not forwarded");
}

void Sidecar::ForwardToServer(const FrameResult& frame, std::optional<std::string> rewritten,
                              const jsonrpc::Envelope& env) {
  if (state_ == ServerState::kRunning) {
    if (rewritten) {
      server_writer_.EnqueueMessage(*std::move(rewritten));
    } else {
      server_writer_.EnqueueFrame(frame, client_reader_.framing());
    }
    return;
  }
  if (state_ == ServerState::kGone || shutting_down_) {
    return;  // requests were answered by the caller; nothing else can be delivered
  }
  size_t size = rewritten ? rewritten->size() : frame.payload.size();
  if (held_bytes_ + size > options_.restart_buffer_bytes) {
    LogError("the restart buffer (", options_.restart_buffer_bytes,
             " bytes) is full; a client message was not delivered");
    if (env.kind == MessageKind::kRequest) {
      AbandonInFlight(env.id, jsonrpc::kServerUnavailable, "restart buffer full");
      ReplyToClient(env.id, jsonrpc::kServerUnavailable,
                    "The MCP server is restarting and mcpmw's restart buffer is full; the "
                    "request was not delivered, retry it shortly",
                    R"({"reason":"restart-buffer-full","retryable":true})");
    }
    return;
  }
  held_bytes_ += size;
  held_.push_back({.request_id = env.kind == MessageKind::kRequest ? std::string(env.id) : "",
                   .payload = rewritten ? *std::move(rewritten) : std::string(frame.payload)});
}

bool Sidecar::AbandonInFlight(std::string_view id, int code, std::string_view message) {
  auto it = id.empty() ? client_in_flight_.end() : client_in_flight_.find(Sv(id));
  if (it == client_in_flight_.end()) {
    return false;
  }
  AbandonPending(it->second, code, message);
  client_in_flight_.erase(it);
  return true;
}

void Sidecar::AbandonPending(Pending& pending, int code, std::string_view message) {
  if (pending.exchange != nullptr && options_.governance != nullptr) {
    options_.governance->Abandon(*pending.exchange, code, message);
    pending.exchange.reset();
  }
}

void Sidecar::ReplyToClient(std::string_view id, int code, std::string_view message,
                            std::string_view data_json) {
  client_writer_.EnqueueMessage(jsonrpc::ErrorResponse(id, code, message, data_json));
}

// ---- server → client ------------------------------------------------------------------------

io::Task<void> Sidecar::ServerPump(uint64_t generation) {
  while (true) {
    bool keep_views = !client_writer_.Idle();
    if (keep_views && !server_reader_.CanFillKeepingViews()) {
      co_await client_writer_.Flush();
      keep_views = false;
    }
    int n = co_await server_reader_.Fill(keep_views);
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    int frames = 0;
    while (true) {
      FrameResult r = server_reader_.Next();
      if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
        break;
      }
      if (r.status == FrameStatus::kFrame) {
        HandleServerFrame(r);
        if (++frames % kBurstFrames == 0) {
          client_writer_.FlushNow();
        }
      } else if (r.status == FrameStatus::kOversized) {
        std::string_view id = OversizedFrameId(server_reader_, r);
        LogError("a server message of ", r.frame_bytes, "+ bytes exceeds --max-message-bytes (",
                 options_.max_message_bytes, "); skipped");
        if (AbandonInFlight(id, jsonrpc::kMessageTooLarge, "response too large")) {
          ReplyToClient(
              id, jsonrpc::kMessageTooLarge,
              absl::StrCat("The MCP server's response is over the ", options_.max_message_bytes,
                           "-byte limit (--max-message-bytes); it was dropped"),
              R"({"reason":"message-too-large"})");
        }
      } else if (r.status == FrameStatus::kMalformedHeader) {
        LogError("the MCP server wrote an unreadable Content-Length header block; skipped");
      }
      server_reader_.Consume(r.consumed);
    }
    client_writer_.StartFlush();
    server_writer_.StartFlush();  // a finished replay queues the client's held messages
    if (client_writer_.broken() && !shutting_down_) {
      BeginShutdown("the client closed stdout");
      client_reader_.CancelRead();
    }
  }
  // What this server wrote last must reach the client before the buffer is reused for the next
  // server's output.
  co_await client_writer_.Flush();
  if (generation == generation_ && !shutting_down_ && child_.pid > 0) {
    tasks_.Spawn(StopIfStdoutClosedButAlive(generation));
  }
  if (generation == generation_) {
    server_pump_done_ = true;
    if (drain_guard_ != nullptr) {
      ring_.Cancel(drain_guard_);
    }
    if (server_pump_waiter_) {
      std::exchange(server_pump_waiter_, {}).resume();
    }
  }
}

void Sidecar::HandleServerFrame(const FrameResult& frame) {
  if (!server_framing_known_) {
    server_framing_known_ = true;
    server_writer_.set_framing(server_reader_.framing());
  }
  envelope_reader_.Read(frame.payload, &env_);
  CanonicalizeTokens();
  LogDebug("server → client ", Sv(jsonrpc::MessageKindName(env_.kind)), " ", Sv(env_.method),
           " id=", Sv(env_.id.empty() ? std::string_view("-") : env_.id),
           " bytes=", frame.payload.size());
  switch (env_.kind) {
    case MessageKind::kParseError:
    case MessageKind::kInvalid: {
      LogError("the MCP server wrote something that is not a JSON-RPC message (", Sv(env_.problem),
               "); dropped");
      // Do not leave the client waiting on an answer that will never be readable.
      if (AbandonInFlight(env_.id, jsonrpc::kInternalError, "invalid server response")) {
        ReplyToClient(env_.id, jsonrpc::kInternalError,
                      absl::StrCat("The MCP server sent an invalid response: ", Sv(env_.problem)),
                      R"({"reason":"invalid-server-response"})");
      }
      return;
    }
    case MessageKind::kResponse:
    case MessageKind::kErrorResponse:
      if (!replay_id_.empty() && env_.id == replay_id_ && state_ != ServerState::kReplaying) {
        return;  // answered by a server that has exited since: mcpmw's own id, not the client's
      }
      if (state_ == ServerState::kReplaying && env_.id == replay_id_) {
        if (env_.kind == MessageKind::kErrorResponse) {
          LogError("the restarted MCP server rejected the replayed initialize; continuing");
        }
        state_ = ServerState::kRunning;
        if (replay_watchdog_ != nullptr) {
          ring_.Cancel(replay_watchdog_);
        }
        if (initialized_notified_) {
          server_writer_.EnqueueMessage(
              R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
        }
        DeliverHeld();
        return;
      }
      if (!timed_out_ids_.empty() && timed_out_ids_.erase(Sv(env_.id)) > 0) {
        LogDebug("dropped the server's late answer to ", Sv(env_.id),
                 ": mcpmw timed the request out and cancelled it");
        return;
      }
      if (auto it = client_in_flight_.find(Sv(env_.id)); it == client_in_flight_.end()) {
        if (options_.governance != nullptr) {
          // Cancelled by the client (which then ignores any answer) or never asked: the chain has
          // no exchange to redact it in, so it does not reach the client unseen.
          LogDebug("dropped the server's answer to id ", Sv(env_.id),
                   ": no request with that id is in flight");
          return;
        }
        LogDebug("the server answered id ", Sv(env_.id), ", which mcpmw was not tracking");
      } else {
        std::unique_ptr<Exchange> ex = std::move(it->second.exchange);
        client_in_flight_.erase(it);
        if (ex != nullptr && options_.governance != nullptr) {
          options_.governance->Respond(*ex, env_, frame.payload);
          const middleware::Verdict& verdict = ex->ctx.outcome;
          if (verdict.kind == middleware::Verdict::Kind::kReject) {
            ReplyToClient(env_.id, verdict.code, verdict.message, verdict.data_json);
            return;
          }
          if (ex->ctx.rewritten) {
            client_writer_.EnqueueMessage(*std::move(ex->ctx.rewritten));
            return;
          }
        }
      }
      break;
    case MessageKind::kRequest:
      server_in_flight_[std::string(env_.id)] = Pending{std::string(env_.method)};
      break;
    case MessageKind::kNotification:
      if (options_.request_timeout.count() > 0 && env_.method == "notifications/progress") {
        ExtendDeadlineOnProgress(frame.payload);
      }
      break;
    case MessageKind::kBatch:
      if (options_.governance != nullptr) {
        WithholdServerBatch(frame.payload);
        return;
      }
      break;
  }
  client_writer_.EnqueueFrame(frame, server_reader_.framing());
}

// ---- server lifecycle -----------------------------------------------------------------------

io::Task<bool> Sidecar::StartServer() {
  while (!shutting_down_) {
    absl::StatusOr<pool::Child> child = pool::Spawn({
        .argv = options_.server.argv,
        .env = pool::BuildEnvironment(options_.server, environ),
        .cwd = options_.server.cwd,
        .sandbox = options_.sandbox,
        .worker_name = absl::StrCat(options_.server.name, "-", generation_ + 1),
    });
    if (child.ok()) {
      child_ = *std::move(child);
      ++generation_;
      started_at_ = ring_.clock().Now();
      server_reader_.Reset(child_.stdout_fd.Get());
      server_writer_.Reopen(std::move(child_.stdin_fd));
      server_pump_done_ = false;
      LogDebug("started the MCP server (pid ", child_.pid, ", generation ", generation_, ")");
      if (!initialize_params_.empty()) {
        state_ = ServerState::kReplaying;
        replay_id_ = absl::StrCat("\"mcpmw-replay-", generation_, "\"");
        server_writer_.EnqueueMessage(absl::StrCat(R"({"jsonrpc":"2.0","id":)", replay_id_,
                                                   R"(,"method":"initialize","params":)",
                                                   initialize_params_, "}"));
        tasks_.Spawn(ReplayWatchdog(generation_));
      } else {
        state_ = ServerState::kRunning;
        DeliverHeld();
      }
      tasks_.Spawn(ServerPump(generation_));
      co_await server_writer_.Flush();
      co_return true;
    }
    LogError("cannot start the MCP server: ", child.status().message());
    bool permanent = absl::IsNotFound(child.status()) || absl::IsPermissionDenied(child.status());
    if (permanent || restarts_used_ >= options_.max_restarts) {
      co_return false;
    }
    ++restarts_used_;
    co_await Backoff();
  }
  co_return false;
}

io::Task<void> Sidecar::Backoff() {
  auto delay = options_.restart_backoff * (1LL << std::min(restarts_used_ - 1, 16));
  delay = std::min<std::chrono::milliseconds>(delay, kMaxBackoff);
  LogError("restarting the MCP server in ", delay.count(), " ms (restart ", restarts_used_, " of ",
           options_.max_restarts, ")");
  state_ = ServerState::kBackoff;
  io::SleepOp sleep(ring_, delay);
  backoff_sleep_ = &sleep;
  co_await sleep;
  backoff_sleep_ = nullptr;
}

io::Task<void> Sidecar::DrainGuard(uint64_t generation) {
  io::SleepOp sleep(ring_, kDrainGrace);
  drain_guard_ = &sleep;
  int rc = co_await sleep;
  drain_guard_ = nullptr;
  if (rc == -ETIME && generation == generation_ && !server_pump_done_) {
    LogError(
        "a process outside the MCP server's process group still holds its stdout; "
        "stopped reading it");
    server_reader_.CancelRead();
  }
}

io::Task<void> Sidecar::WaitServerPump() {
  if (server_pump_done_) {
    co_return;
  }
  tasks_.Spawn(DrainGuard(generation_));
  struct Awaiter {
    Sidecar& s;
    bool await_ready() const noexcept { return s.server_pump_done_; }
    void await_suspend(std::coroutine_handle<> h) noexcept { s.server_pump_waiter_ = h; }
    void await_resume() const noexcept {}
  };
  co_await Awaiter{*this};
}

io::Task<void> Sidecar::ServerLoop() {
  bool started = co_await StartServer();
  while (started) {
    co_await io::WaitPidfd(ring_, child_.pidfd.Get());
    // Not running any more: a client message that arrives while the pump drains and the writer
    // closes is held for the next server (or answered with the others below), not queued on a
    // writer that is closing, where it would be dropped unanswered.
    state_ = ServerState::kBackoff;
    absl::StatusOr<pool::ExitStatus> status = pool::Reap(child_);
    std::string how = status.ok() ? status->Describe() : std::string(status.status().message());
    // Deliver what the server wrote before it died, then stop writing to it.
    co_await WaitServerPump();
    co_await server_writer_.Close();
    child_ = pool::Child{};
    for (auto& [id, pending] : server_in_flight_) {
      orphaned_server_ids_.insert(id);
    }
    server_in_flight_.clear();
    timed_out_ids_.clear();  // the next server never heard of them

    if (shutting_down_) {
      LogDebug("the MCP server stopped (", how, ")");
      FailInFlight(jsonrpc::kServerExited,
                   "mcpmw is shutting down and the MCP server stopped before answering",
                   ExitData("shutdown", false, how));
      break;
    }
    LogError("the MCP server exited unexpectedly (", how, ")");
    FailInFlight(jsonrpc::kServerExited,
                 absl::StrCat("The MCP server exited (", how,
                              ") while this request was in flight; it was not completed. "
                              "mcpmw restarts the server; retry if the call is idempotent"),
                 ExitData("server-exited", true, how));
    if (status.ok() && status->exited && status->code == 0 &&
        forced_stop_generation_ != generation_) {
      LogError("the MCP server ended by itself with exit code 0; ending the session");
      exit_code_ = kExitOk;
      break;
    }
    if (ring_.clock().Now() - started_at_ >= options_.restart_budget_reset) {
      restarts_used_ = 0;  // it ran long enough: a fresh budget
    }
    if (restarts_used_ >= options_.max_restarts) {
      LogError("the MCP server keeps failing and the restart budget (", options_.max_restarts,
               ") is spent; giving up");
      exit_code_ = status.ok() && status->exited ? status->code : kExitFailure;
      break;
    }
    ++restarts_used_;
    co_await client_writer_.Flush();
    co_await Backoff();
    started = co_await StartServer();
  }
  if (!started && !shutting_down_) {
    exit_code_ = kExitFailure;
  }
  state_ = ServerState::kGone;
  held_.clear();
  held_bytes_ = 0;
  FailInFlight(jsonrpc::kServerUnavailable,
               "The MCP server is not running and mcpmw is ending the session; the request was "
               "not delivered",
               R"({"reason":"server-unavailable","retryable":false})");
  co_await client_writer_.Flush();
  Finish();
}

io::Task<void> Sidecar::StopServer() {
  // Let queued client messages reach the server, then close its stdin: the polite request.
  co_await server_writer_.Flush();
  co_await server_writer_.Close();
  int pidfd = child_.pidfd.Get();
  uint64_t generation = generation_;
  if (pidfd < 0) {
    co_return;
  }
  // Each co_await stands alone: GCC 12 miscompiles a co_await inside || or && (the resumed frame
  // jumps to an invalid state).
  bool exited = co_await io::WaitPidfdFor(ring_, pidfd, options_.kill_timeout);
  if (exited) {
    co_return;
  }
  if (generation != generation_) {
    co_return;
  }
  LogError("the MCP server did not exit within ", options_.kill_timeout.count(),
           " ms of stdin closing; sending SIGTERM");
  pool::SignalChild(child_, SIGTERM);
  exited = co_await io::WaitPidfdFor(ring_, pidfd, options_.kill_timeout);
  if (exited || generation != generation_) {
    co_return;
  }
  LogError("the MCP server ignored SIGTERM for ", options_.kill_timeout.count(),
           " ms; sending SIGKILL");
  pool::SignalChild(child_, SIGKILL);
}

io::Task<void> Sidecar::StopIfStdoutClosedButAlive(uint64_t generation) {
  // Usually stdout closes because the process died; give the exit a moment to show.
  bool exited = co_await io::WaitPidfdFor(ring_, child_.pidfd.Get(), kDrainGrace);
  if (exited || generation != generation_ || shutting_down_) {
    co_return;
  }
  // The process lives on with its stdout closed: nothing it does can reach the client any more,
  // so stop it as at shutdown and let the restart logic take over.
  LogError("the MCP server closed its stdout but keeps running; stopping it");
  forced_stop_generation_ = generation;  // its exit, even with code 0, is a failure to restart
  co_await StopServer();
}

io::Task<void> Sidecar::ReplayWatchdog(uint64_t generation) {
  io::SleepOp sleep(ring_, options_.replay_timeout);
  replay_watchdog_ = &sleep;
  int rc = co_await sleep;
  replay_watchdog_ = nullptr;
  if (rc == -ETIME && generation == generation_ && state_ == ServerState::kReplaying &&
      child_.pid > 0) {
    LogError("the restarted MCP server did not answer the replayed initialize within ",
             options_.replay_timeout.count(), " ms; killing it");
    forced_stop_generation_ = generation;
    pool::SignalChild(child_, SIGKILL);
  }
}

void Sidecar::BeginShutdown(std::string_view why) {
  if (shutting_down_) {
    return;
  }
  shutting_down_ = true;
  LogDebug("shutting down: ", Sv(why));
  if (backoff_sleep_ != nullptr) {
    ring_.Cancel(backoff_sleep_);
  }
  if (replay_watchdog_ != nullptr) {
    ring_.Cancel(replay_watchdog_);
  }
  if (child_.pid > 0) {
    tasks_.Spawn(StopServer());
  }
}

io::Task<void> Sidecar::SignalWatch() {
  while (!finished_) {
    signalfd_siginfo info{};
    io::ReadOp op(ring_, options_.signal_fd, {reinterpret_cast<char*>(&info), sizeof(info)});
    signal_read_ = &op;
    int n = co_await op;
    signal_read_ = nullptr;
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n != static_cast<int>(sizeof(info))) {
      break;
    }
    if (info.ssi_signo == SIGHUP && options_.governance != nullptr &&
        !options_.governance->policy_path().empty()) {
      ReloadBundle("SIGHUP");
      continue;
    }
    if (!shutting_down_) {
      LogError("received ", "SIG", sigabbrev_np(static_cast<int>(info.ssi_signo)),
               "; shutting down");
      BeginShutdown("signal");
      client_reader_.CancelRead();
    } else if (child_.pid > 0) {
      LogError("received a second signal; killing the MCP server now");
      pool::SignalChild(child_, SIGKILL);
    }
  }
}

void Sidecar::FailInFlight(int code, std::string_view message, std::string_view data_json) {
  for (auto& [id, pending] : client_in_flight_) {
    AbandonPending(pending, code, message);
    ReplyToClient(id, code, message, data_json);
  }
  client_in_flight_.clear();
  // Every held request was in flight (or timed out, and answered then): answered now, it must not
  // reach the next server, or a client that retries runs it twice.
  std::erase_if(held_, [this](const HeldMessage& held) {
    if (held.request_id.empty()) {
      return false;
    }
    held_bytes_ -= held.payload.size();
    return true;
  });
}

void Sidecar::DeliverHeld() {
  for (HeldMessage& held : held_) {
    server_writer_.EnqueueMessage(std::move(held.payload));
  }
  held_.clear();
  held_bytes_ = 0;
}

void Sidecar::Finish() {
  finished_ = true;
  client_reader_.CancelRead();
  if (signal_read_ != nullptr) {
    ring_.Cancel(signal_read_);
  }
  if (bundle_watch_read_ != nullptr) {
    ring_.Cancel(bundle_watch_read_);
  }
  if (request_timer_sleep_ != nullptr) {
    ring_.Cancel(request_timer_sleep_);
  }
}

// ---- request timeouts -------------------------------------------------------------------------

io::Task<void> Sidecar::RequestTimer() {
  // One timer, not one per request: a new request's deadline is never earlier than the one the
  // timer already sleeps towards (deadlines are now + the same timeout), so only a parked timer
  // has to be woken when a request arrives; progress only moves deadlines later.
  while (!finished_) {
    TimePoint now = ring_.clock().Now();
    TimeOutDueRequests(now);
    TimePoint next = TimePoint::max();
    for (const auto& [id, pending] : client_in_flight_) {
      next = std::min(next, pending.deadline);
    }
    request_timer_parked_ = next == TimePoint::max();
    Duration wait = request_timer_parked_ ? Duration(kTimerParked) : next - now;
    io::SleepOp sleep(ring_, wait);
    request_timer_sleep_ = &sleep;
    co_await sleep;
    request_timer_sleep_ = nullptr;
    request_timer_parked_ = false;
  }
}

void Sidecar::TimeOutDueRequests(TimePoint now) {
  std::vector<std::string> due;
  for (const auto& [id, pending] : client_in_flight_) {
    if (pending.deadline <= now) {
      due.push_back(id);
    }
  }
  if (due.empty()) {
    return;
  }
  for (const std::string& id : due) {
    auto it = client_in_flight_.find(id);
    Pending& pending = it->second;
    // Past the hard maximum (progress kept extending it), or plain silence for the timeout.
    const bool capped = pending.hard_deadline <= now;
    const int64_t ms =
        (capped ? jsonrpc::kProgressCapFactor : 1) * options_.request_timeout.count();
    // MCP: the client must not cancel initialize; the error alone ends the client's wait.
    bool cancel = pending.method != "initialize";
    LogError("the MCP server did not answer `", pending.method, "` (id ", id, ") within ", ms,
             " ms; ", cancel ? "cancelled it" : "stopped waiting for it");
    if (cancel && state_ != ServerState::kGone) {
      std::string note = jsonrpc::CancelledNotification(
          id, absl::StrCat("mcpmw: request timed out after ", ms, " ms"));
      if (state_ == ServerState::kRunning) {
        server_writer_.EnqueueMessage(std::move(note));
      } else if (!shutting_down_) {
        // The request itself is still held for the restarted server: the cancellation follows it.
        held_bytes_ += note.size();
        held_.push_back({.payload = std::move(note)});
      }
    }
    std::string message = absl::StrCat(
        "The server did not answer `", pending.method, "` within ", ms, " ms",
        capped ? absl::StrCat(" (progress notifications extend a request to ",
                              jsonrpc::kProgressCapFactor, "× --request-timeout-ms at most)")
               : "",
        cancel ? "; mcpmw cancelled the request."
               : "; mcpmw stopped waiting (initialize cannot be cancelled).");
    AbandonPending(pending, jsonrpc::kServerUnavailable, message);
    ReplyToClient(id, jsonrpc::kServerUnavailable, message,
                  absl::StrCat(R"({"reason":"request-timeout","timeoutMs":)", ms, "}"));
    if (timed_out_ids_.size() >= kMaxTimedOutIds) {
      LogError("over ", kMaxTimedOutIds,
               " timed-out requests still unanswered by the MCP server; their late answers, if "
               "any, will reach the client");
      timed_out_ids_.clear();
    }
    timed_out_ids_.insert(id);
    client_in_flight_.erase(it);
  }
  client_writer_.StartFlush();
  server_writer_.StartFlush();
}

void Sidecar::ExtendDeadlineOnProgress(std::string_view payload) {
  bool any = false;
  for (const auto& [id, pending] : client_in_flight_) {
    any |= !pending.progress_token.empty();
  }
  if (!any) {
    return;  // nothing to match: skip the parse
  }
  std::string token = ProgressTokenOf(payload);
  if (token.empty()) {
    return;
  }
  for (auto& [id, pending] : client_in_flight_) {
    if (pending.progress_token == token) {
      pending.deadline =
          std::min(ring_.clock().Now() + options_.request_timeout, pending.hard_deadline);
    }
  }
}

// ---- policy bundle reload ---------------------------------------------------------------------

void Sidecar::ReloadBundle(std::string_view why) {
  // Runs between two frames on the reactor: the next request is the first to see the new bundle;
  // requests in flight finish under the bundle they started with.
  absl::StatusOr<std::optional<std::string>> version = options_.governance->Reload();
  if (!version.ok()) {
    LogError("policy bundle not reloaded (", Sv(why), "); still running version ",
             options_.governance->store().current()->version, ": ", version.status().message());
  } else if (version->has_value()) {
    LogError("policy bundle reloaded (", Sv(why), "): now running version ", **version);
  } else {
    LogDebug("policy bundle unchanged (", Sv(why), ")");
  }
}

io::Task<void> Sidecar::BundleWatch() {
  // Watch the directory, not the file: editors and deploy tools replace a file by renaming a new
  // one over it, which a watch on the old inode would never see.
  const std::string& path = options_.governance->policy_path();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd.Valid() ||
      ::inotify_add_watch(fd.Get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    LogError("cannot watch ", dir, " for policy bundle changes (", ErrnoText(errno),
             "); send SIGHUP to reload");
    co_return;
  }
  alignas(inotify_event) char buf[4096];
  while (!finished_) {
    io::PollOp poll(ring_, fd.Get(), POLLIN);
    bundle_watch_read_ = &poll;
    int ready = co_await poll;
    bundle_watch_read_ = nullptr;
    if (finished_ || ready == -ECANCELED) {
      break;
    }
    ssize_t n = ::read(fd.Get(), buf, sizeof(buf));
    if (n <= 0) {
      continue;
    }
    bool ours = false;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      if (ev->len > 0 && base == ev->name) {
        ours |= (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
      }
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
    if (ours) {
      ReloadBundle("file changed");
    }
  }
}

}  // namespace mcpmw::proxy
