// mcpmw middleware: the chain that runs stages over one message.
//
//   session ─► Chain::OnRequest ─► (forward, or answer the verdict) ─► Chain::OnResponse ─►
//   client;  Chain::OnComplete always, whatever happened.
//
// The chain is built once per policy bundle snapshot and validated then: every fact a stage
// reads must be written by an earlier stage (or be the envelope, which the chain provides).
// Per-stage counters live in the chain (one chain per reactor: no atomics needed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

struct StageCounters {
  uint64_t evaluated = 0;  // OnRequest/OnResponse calls
  uint64_t rejected = 0;   // verdicts that took effect (Reject or Respond, enforce mode)
  uint64_t observed = 0;   // Reject/Respond verdicts computed in observe mode and not applied
};

class Chain {
 public:
  struct Entry {
    std::unique_ptr<Stage> stage;
    Mode mode = Mode::kEnforce;
  };

  // Validates the order: InvalidArgument naming the stage and the missing fact
  // ("stage `policy` reads principal, which no earlier stage writes; add `auth` before it").
  static absl::StatusOr<Chain> Build(std::vector<Entry> entries);

  // Runs OnRequest in order until a verdict other than Continue takes effect; that stage's
  // verdict is returned (and kept in ctx.outcome). Observe-mode stages never stop the chain.
  Verdict OnRequest(MessageContext& ctx);
  // The same for OnResponse, in the same order.
  Verdict OnResponse(MessageContext& ctx);
  // Runs every stage's OnComplete, in order, whatever happened before.
  void OnComplete(MessageContext& ctx);

  size_t size() const { return entries_.size(); }
  const StageCounters& counters(size_t index) const { return counters_[index]; }
  std::string_view stage_name(size_t index) const { return entries_[index].stage->name(); }

 private:
  explicit Chain(std::vector<Entry> entries);
  template <typename Hook>
  Verdict Run(MessageContext& ctx, uint8_t hook_bit, Hook hook);

  std::vector<Entry> entries_;
  std::vector<StageCounters> counters_;
  std::vector<FactSet> writes_;  // entries_[i].stage->writes(), asked once
  std::vector<uint8_t> hooks_;   // entries_[i].stage->hooks(), asked once
};

}  // namespace mcpmw::middleware
