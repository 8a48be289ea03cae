// mcpmw middleware: the stage contract.
//
// Every governed message runs through a chain of stages (ARCHITECTURE.md §4), in the
// prototype's order: normalize, auth, policy, tool_filter, rate_limit, request_redaction,
// dispatch, response_redaction, trace, cost, report. A stage is a small object with three hooks
// and do-nothing defaults:
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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/jsonrpc/envelope.h"

namespace mcpmw::middleware {

// What stages hand each other through the MessageContext.
enum class Fact : uint8_t {
  kEnvelope,         // the parsed envelope and raw payload (the chain provides it)
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
enum class Mode : uint8_t { kEnforce, kObserve };

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

// One row of the report: what a stage decided about this message.
struct Decision {
  std::string_view stage;
  std::string status;       // allow | deny | transform | observe-only
  std::string reason_code;  // e.g. policy-deny, rate-limit-exceeded
  std::string decision_id;
  bool enforced = true;  // false when the stage ran in observe mode
};

enum class Direction : uint8_t { kClientToServer, kServerToClient };

struct Principal {
  std::string tenant;
  std::string user;
  std::string agent;
  std::vector<std::string> roles;
  std::vector<std::string> scopes;
};

// The typed per-message context every stage sees (Pingora style). Owned by the session for the
// life of one message; views point into the frame being processed.
struct MessageContext {
  Direction direction = Direction::kClientToServer;
  const jsonrpc::Envelope* envelope = nullptr;
  std::string_view payload;  // the message as it arrived

  Principal principal;
  std::vector<Decision> decisions;
  // Set by a stage that rewrote the message; the session forwards this instead of `payload`.
  std::optional<std::string> rewritten;
  // The verdict the chain ended with (for OnComplete).
  Verdict outcome;
  // Facts written so far (maintained by the chain; stages may consult it).
  FactSet facts;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // The stage's name as bundles and reports spell it ("rate_limit").
  virtual std::string_view name() const = 0;
  virtual FactSet reads() const { return {}; }
  virtual FactSet writes() const { return {}; }

  virtual Verdict OnRequest(MessageContext& ctx) { return Verdict::Continue(); }
  virtual Verdict OnResponse(MessageContext& ctx) { return Verdict::Continue(); }
  virtual void OnComplete(MessageContext& ctx) {}
};

}  // namespace mcpmw::middleware
