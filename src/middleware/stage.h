// mcpmw middleware: the stage contract.
//
// Every governed message runs through a chain of stages (ARCHITECTURE.md §4), in the
// prototype's order: normalize, auth, policy, tool_filter, rate_limit, request_redaction,
// dispatch, response_redaction, trace, cost, report — with mcpmw's `quota` after rate_limit (and
// its accounting half after cost, src/middleware/quota.h). A stage is a small object with three
// hooks and do-nothing defaults:
//
//   OnRequest   a message on its way to the server; may Reject it or Respond in its place
//   OnResponse  the answer on its way back; may Reject it (the client gets an error instead)
//   OnComplete  always runs, also for rejected and failed messages (trace, cost, audit)
//
// Stages return verdicts, never throw. Each declares the facts it reads and the facts it writes;
// a chain whose stage reads a fact no earlier stage writes is refused when it is built, so a
// bundle that leaves out `auth` cannot silently run `policy` on an empty principal.
//
// Threading: a chain (and its stages) belongs to one reactor; nothing here takes a lock.
#pragma once

#include <bitset>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/policy/bundle.h"

namespace mcpmw::middleware {

// What stages hand each other through the MessageContext.
enum class Fact : uint8_t {
  kEnvelope,         // the parsed envelope and raw payload (the chain provides it)
  kInvocation,       // invocation id, method, tool name, validated (normalize)
  kPrincipal,        // who is calling (auth)
  kPolicyDecision,   // allow / deny / transform (policy)
  kToolVisibility,   // which tools the caller may see (tool_filter)
  kRateDecision,     // rate limit outcome (rate_limit)
  kRequestRewrite,   // the request as it will be forwarded (request_redaction, policy transforms)
  kUpstreamResult,   // what the server answered (dispatch)
  kResponseRewrite,  // the answer as it will be returned (response_redaction, tool filtering)
  kTrace,            // spans and metrics (trace)
  kCost,             // the cost record (cost)
  kCount,
};
using FactSet = std::bitset<static_cast<size_t>(Fact::kCount)>;

// Builds a FactSet from a list: Facts({Fact::kPrincipal, Fact::kEnvelope}).
FactSet Facts(std::initializer_list<Fact> facts);
std::string_view FactName(Fact fact);

// enforce: verdicts take effect. observe: every decision is computed, recorded and counted, but
// a Reject or Respond is turned into Continue and rewrites are not applied.
using Mode = policy::Mode;

// JSON-RPC error codes mcpmw answers with (implementation-defined range, README "Error codes").
inline constexpr int kCodeUnauthenticated = -32010;  // auth: the caller's identity is incomplete
inline constexpr int kCodePolicyDenied = -32011;     // policy: a deny rule matched
inline constexpr int kCodeToolHidden = -32012;       // tool_filter: the tool is not visible
inline constexpr int kCodeRateLimited = -32013;      // rate_limit: data.retryAfterMs says when
inline constexpr int kCodeRedactionFailed = -32014;  // a redaction stage could not read the JSON
// quota: a tenant quota is used up. The rate_limit code on purpose, so clients that back off for
// data.retryAfterMs handle both; data.stage ("quota") and data.quota tell them apart.
inline constexpr int kCodeQuotaExceeded = kCodeRateLimited;

struct Verdict {
  enum class Kind : uint8_t { kContinue, kReject, kRespond };
  Kind kind = Kind::kContinue;
  int code = 0;             // kReject: the JSON-RPC error code
  std::string message;      // kReject: one sentence for the caller
  std::string data_json;    // kReject: the error's `data` (stage, reasonCode, decisionId, …)
  std::string result_json;  // kRespond: the `result` mcpmw answers with

  static Verdict Continue() { return {}; }
  static Verdict Reject(int code, std::string message, std::string data_json = {}) {
    return {.kind = Kind::kReject,
            .code = code,
            .message = std::move(message),
            .data_json = std::move(data_json)};
  }
  static Verdict Respond(std::string result_json) {
    return {.kind = Kind::kRespond, .result_json = std::move(result_json)};
  }
  bool IsContinue() const { return kind == Kind::kContinue; }
};

// A decision's reason code, read like a std::string_view: either a string literal the stage
// names (kept as a view, so the common "rate-limit:allowed" costs no allocation per message) or
// text it built or took from the bundle (owned, so it outlives both).
class ReasonCode {
 public:
  ReasonCode() = default;
  // A string literal, viewed (its storage is static). Pass anything shorter-lived as a
  // std::string.
  template <size_t N>
  ReasonCode(const char (&literal)[N])  // NOLINT(google-explicit-constructor)
      : literal_(literal), literal_size_(N - 1) {}
  ReasonCode(std::string owned)  // NOLINT(google-explicit-constructor)
      : owned_(std::move(owned)) {}

  std::string_view view() const {
    return literal_ != nullptr ? std::string_view(literal_, literal_size_)
                               : std::string_view(owned_);
  }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  bool empty() const { return view().empty(); }
  size_t size() const { return view().size(); }

  friend bool operator==(const ReasonCode& a, const ReasonCode& b) { return a.view() == b.view(); }
  friend bool operator==(const ReasonCode& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const ReasonCode& a, const char* b) { return a.view() == b; }
  friend bool operator==(const ReasonCode& a, const std::string& b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& os, const ReasonCode& r) { return os << r.view(); }

 private:
  const char* literal_ = nullptr;
  size_t literal_size_ = 0;
  std::string owned_;
};

// One row of the report: what a stage decided about this message.
struct Decision {
  std::string_view stage;
  std::string_view status;  // a literal: allow | deny | transform | observe-only
  ReasonCode reason_code;   // e.g. policy-deny, rate-limit-exceeded
  // Its id is always "<invocation_id>:<stage>" (MessageContext::DecisionId), so it is not stored.
  bool enforced = true;  // false when the stage ran in observe mode
  // A pass with nothing to note (dispatch:dispatched, rate-limit:allowed, …): the audit report
  // writes such a row as the stage's name alone.
  bool routine = false;
};

enum class Direction : uint8_t { kClientToServer, kServerToClient };

struct Principal {
  std::string tenant;
  std::string user;
  std::string agent;
  std::vector<std::string> roles;
  std::vector<std::string> scopes;  // trimmed, lowercased, unique, sorted (auth)

  bool operator==(const Principal&) const = default;
};

struct PolicyOutcome {
  policy::RuleStatus status = policy::RuleStatus::kAllow;
  std::string rule_id;  // the deciding rule (the first deny, else the first transform, …)
  std::string reason_code;
  std::vector<std::string> applied_transforms;  // ids of transform rules whose patches ran
};

struct RateOutcome {
  bool limited = false;
  uint64_t retry_after_ms = 0;  // limited: when the call would next be admitted
  std::string rule_id;          // limited: the rule that refused it
  std::string key;              // limited: the counter key
};

struct CostRecord {
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  double usd = 0;
};

// One change a redaction stage made (never the value it replaced).
struct RedactionNote {
  Direction direction = Direction::kClientToServer;
  std::string rule_id;
  std::string pointer;  // RFC 6901, into the redacted document (arguments or result)
  std::string action;   // mask | drop | hash | redact
};

// The typed per-exchange context every stage sees (Pingora style). A client request and its
// response share one context: the session creates it when the request arrives, keeps it in its
// in-flight table, and hands it back with the response (direction, envelope and payload then
// describe the response). A notification or a server-to-client message gets its own. Views
// point into the frame being processed and are only valid during one hook call.
struct MessageContext {
  Direction direction = Direction::kClientToServer;
  const jsonrpc::Envelope* envelope = nullptr;
  std::string_view payload;  // the message as it arrived (padded: a frame or padded_string)
  // The bundle snapshot this exchange runs under (the session pins it for the exchange).
  const policy::Bundle* bundle = nullptr;
  // The identity the transport claims (sidecar flags and variables; gateway tokens); auth
  // validates it into `principal`.
  const Principal* claimed = nullptr;
  std::string_view server_id;  // the upstream server's id (tool.server)
  TimePoint started{};         // when the request arrived
  TimePoint finished{};        // when the exchange completed (dispatch sets it)

  // normalize
  std::string invocation_id;
  // The request parsed once (DOM) by normalize for the stages that read inside it (policy's
  // args.* conditions). Valid during OnRequest only: the session clears it with the views.
  std::optional<simdjson::dom::element> request_document;
  // The kind of the message that opened the exchange (kept for OnComplete, where the envelope
  // is gone when mcpmw ended the exchange without an answer from the server).
  jsonrpc::MessageKind request_kind = jsonrpc::MessageKind::kRequest;
  std::string method;     // of the request (also while its response is processed)
  std::string tool_name;  // tools/call params.name
  // auth
  Principal principal;
  // policy
  PolicyOutcome policy;
  // rate_limit
  RateOutcome rate;
  // dispatch
  bool dispatched = false;
  bool upstream_error = false;  // the server answered with a JSON-RPC error
  std::string_view blocked_by;  // the stage that stopped the request, when not dispatched
  // request_redaction, response_redaction
  std::vector<RedactionNote> redactions;
  // cost
  CostRecord cost;
  uint64_t request_bytes = 0;   // the request as forwarded
  uint64_t response_bytes = 0;  // the response as returned

  std::vector<Decision> decisions;
  // Set by a stage that rewrote the message; the session forwards this instead of `payload`.
  std::optional<std::string> rewritten;
  // The verdict the chain ended with (for OnComplete), and the stage whose verdict took effect
  // (empty when every stage let the message through, or mcpmw ended the exchange itself).
  Verdict outcome;
  std::string_view stopped_by;
  // Facts written so far (maintained by the chain; stages may consult it).
  FactSet facts;

  // method == m. `m` is nearly always a literal: comparing with its length (a constant once
  // inlined) lets the compiler compare the bytes in place instead of calling memcmp.
  bool MethodIs(std::string_view m) const {
    return method.size() == m.size() && std::memcmp(method.data(), m.data(), m.size()) == 0;
  }
  // The message as it will be forwarded so far: the rewrite if a stage made one.
  std::string_view current() const { return rewritten ? std::string_view(*rewritten) : payload; }
  // "<invocation_id>:<stage>": joins an error's data.decisionId to the audit record.
  std::string DecisionId(std::string_view stage) const;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // The stage's name as bundles and reports spell it ("rate_limit").
  virtual std::string_view name() const = 0;
  // Fixed for the stage's life: the chain asks once, when it is built.
  virtual FactSet reads() const { return {}; }
  virtual FactSet writes() const { return {}; }
  // Which of OnRequest / OnResponse the stage overrides, also asked once: the chain does not call
  // a default hook (it would only answer Continue), though it still counts the stage as
  // evaluated. A stage that does not say is called for both.
  enum HookBits : uint8_t { kOnRequest = 1, kOnResponse = 2 };
  virtual uint8_t hooks() const { return kOnRequest | kOnResponse; }

  virtual Verdict OnRequest(MessageContext& ctx) { return Verdict::Continue(); }
  virtual Verdict OnResponse(MessageContext& ctx) { return Verdict::Continue(); }
  virtual void OnComplete(MessageContext& ctx) {}
};

}  // namespace mcpmw::middleware
