// mcpmw middleware: the `rate_limit` stage.
//
// Fifth in the chain (normalize, auth, policy, tool_filter, rate_limit, …): it runs on client
// requests whose method a rule lists (by default only tools/call) and refuses, with -32013, a
// call that would take a counter over its limit. data.retryAfterMs says when the same call would
// next be admitted.
//
// Each rule counts per key, the rule's keyTemplate filled from the principal and the call
// ({tenant} {user} {agent} {tool} {method}; an empty template is the dimension's default,
// src/policy/bundle.h). Substituted values have '%' and ':' percent-encoded, so tenant "a:b" with
// user "c" and tenant "a" with user "b:c" never share a counter.
//
//   fixed-window  windows are aligned to multiples of the window length on the clock's time axis
//                 (not to a key's first call); a call is admitted while the window's count is
//                 below `limit`. Refused: retry when the window ends, rounded up to a whole ms.
//   token-bucket  a bucket holds up to `limit` (burst) tokens and gains refillPerSecond tokens
//                 continuously; a call takes one. Refused: retry when one token is back.
//                 Implemented as GCRA (one "theoretical arrival time" per key, integer
//                 nanoseconds), which is the same bucket without floating-point drift: a caller
//                 who waits exactly retryAfterMs is admitted.
//   limit 0       refuses every call. Fixed window: the retry is the end of the current window
//                 (the limit may have been raised by then); token bucket: one refill interval
//                 (1 / refillPerSecond), for the same reason. The message says "0 calls".
//
// Every applicable rule is checked before any is charged: a call is admitted only if all rules
// admit it, and only an admitted call is counted, so a refused (or retried) call costs the caller
// nothing. With several refusing rules, the one that frees up last is reported (max retry).
//
// Decisions: a refused call adds {rate_limit, deny, rate-limit-exceeded}; an admitted call adds
// {rate_limit, allow, rate-limit:allowed} when at least one rule applied, and nothing otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "src/common/clock.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

// The counters of every rate rule, keyed by (rule id, counter key). Owned by the session (or by
// the reactor for sessions that share limits), not by the stage: a bundle reload builds a new
// chain and a new RateLimitStage over the same state, so nobody's limits reset. A rule whose id
// survives the reload keeps its counters; a rule whose algorithm changed starts afresh.
//
// Memory stays bounded by the keys that are live: an entry whose window has ended, or whose
// bucket is full again, carries no information and is dropped by a sweep. The sweep runs when
// the map reaches twice the size the previous sweep left (and at least the threshold), so its
// cost is amortised O(1) per call and no call ever scans the map on its own account.
//
// Threading: one per reactor (or per session); not thread-safe, no locks, no atomics.
class RateLimitState {
 public:
  static constexpr size_t kDefaultSweepThreshold = 4096;
  // No sweep runs while the map holds fewer than `sweep_threshold` entries.
  explicit RateLimitState(size_t sweep_threshold = kDefaultSweepThreshold);

  // Live counters (including expired ones the next sweep will drop).
  size_t size() const { return entries_.size(); }

 private:
  friend class RateLimitStage;

  struct Entry {
    policy::RateAlgorithm algorithm = policy::RateAlgorithm::kFixedWindow;
    // fixed-window: the start of the counted window; token-bucket: the GCRA theoretical arrival
    // time (the bucket is full again at that instant). Nanoseconds on the clock's axis.
    int64_t mark_ns = 0;
    uint64_t count = 0;      // fixed-window: calls admitted in the window
    int64_t expires_ns = 0;  // after this instant the entry is the same as no entry
  };

  // Drops expired entries when the map has grown past the sweep mark.
  void MaybeSweep(int64_t now_ns);

  absl::flat_hash_map<std::string, Entry> entries_;
  size_t sweep_threshold_;
  size_t next_sweep_at_;
};

class RateLimitStage final : public Stage {
 public:
  // `bundle`, `clock` and `state` must outlive the stage.
  RateLimitStage(const policy::Bundle& bundle, const Clock& clock, RateLimitState* state);

  std::string_view name() const override { return "rate_limit"; }
  FactSet reads() const override {
    return Facts({Fact::kInvocation, Fact::kPrincipal, Fact::kPolicyDecision});
  }
  FactSet writes() const override { return Facts({Fact::kRateDecision}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  // One applicable rule's verdict, between the check and the charge.
  struct Check {
    const policy::RateRule* rule = nullptr;
    size_t key_offset = 0;  // where the counter key starts in the map key
    bool admitted = false;
    uint64_t retry_after_ms = 0;
    // The counter Evaluate found (null: none). Still the entry to charge while the map is
    // untouched: nothing swept (which may drop it), nothing inserted (which may move it).
    RateLimitState::Entry* entry = nullptr;
  };

  // A rule's key template, split once when the stage is built.
  struct KeyPart {
    enum class Source : uint8_t { kLiteral, kTenant, kUser, kAgent, kTool, kMethod };
    Source source = Source::kLiteral;
    std::string literal;  // kLiteral
  };
  struct CompiledKey {
    std::string prefix;  // "<rule id length>:<rule id>"
    std::vector<KeyPart> parts;
  };
  static CompiledKey CompileKey(const policy::RateRule& rule);

  // The map key of rule `index` for this call: "<rule id length>:<rule id><counter key>".
  void BuildKey(size_t index, const MessageContext& ctx, std::string* out,
                size_t* key_offset) const;
  Check Evaluate(const policy::RateRule& rule, const std::string& map_key, int64_t now_ns) const;
  // Charges `rule`'s counter `map_key`; `entry`, when not null, is that counter in the map.
  void Charge(const policy::RateRule& rule, const std::string& map_key, int64_t now_ns,
              RateLimitState::Entry* entry);
  Verdict Refuse(MessageContext& ctx, const Check& worst, std::string_view key);

  const policy::Bundle& bundle_;
  const Clock& clock_;
  RateLimitState* state_;
  std::vector<CompiledKey> keys_by_rule_;  // parallel to bundle_.rate_rules
  // Reused across calls so a warm stage allocates nothing per request.
  std::vector<Check> checks_;
  std::vector<std::string> keys_;
};

}  // namespace mcpmw::middleware
