#include "src/middleware/chain.h"

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::middleware {

FactSet Facts(std::initializer_list<Fact> facts) {
  FactSet set;
  for (Fact f : facts) {
    set.set(static_cast<size_t>(f));
  }
  return set;
}

std::string_view FactName(Fact fact) {
  switch (fact) {
    case Fact::kEnvelope:
      return "envelope";
    case Fact::kInvocation:
      return "invocation";
    case Fact::kPrincipal:
      return "principal";
    case Fact::kPolicyDecision:
      return "policy decision";
    case Fact::kToolVisibility:
      return "tool visibility";
    case Fact::kRateDecision:
      return "rate decision";
    case Fact::kRequestRewrite:
      return "request rewrite";
    case Fact::kUpstreamResult:
      return "upstream result";
    case Fact::kResponseRewrite:
      return "response rewrite";
    case Fact::kTrace:
      return "trace";
    case Fact::kCost:
      return "cost";
    case Fact::kCount:
      break;
  }
  return "unknown";
}

std::string MessageContext::DecisionId(std::string_view stage) const {
  return absl::StrCat(invocation_id, ":", Sv(stage));
}

absl::StatusOr<Chain> Chain::Build(std::vector<Entry> entries) {
  FactSet provided = Facts({Fact::kEnvelope});
  for (const Entry& e : entries) {
    if (e.stage == nullptr) {
      return absl::InvalidArgumentError("a chain entry has no stage");
    }
    FactSet missing = e.stage->reads() & ~provided;
    for (size_t i = 0; i < missing.size(); ++i) {
      if (missing.test(i)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage `", Sv(e.stage->name()), "` reads ", Sv(FactName(static_cast<Fact>(i))),
            ", which no earlier stage writes; put the stage that writes it first"));
      }
    }
    provided |= e.stage->writes();
  }
  return Chain(std::move(entries));
}

Chain::Chain(std::vector<Entry> entries)
    : entries_(std::move(entries)), counters_(entries_.size()) {
  writes_.reserve(entries_.size());
  hooks_.reserve(entries_.size());
  for (const Entry& e : entries_) {
    writes_.push_back(e.stage->writes());
    hooks_.push_back(e.stage->hooks());
  }
}

template <typename Hook>
Verdict Chain::Run(MessageContext& ctx, uint8_t hook_bit, Hook hook) {
  ctx.facts.set(static_cast<size_t>(Fact::kEnvelope));
  if (ctx.decisions.capacity() == 0) {
    ctx.decisions.reserve(entries_.size());  // at most about a row per stage: one allocation
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    StageCounters& c = counters_[i];
    ++c.evaluated;
    if ((hooks_[i] & hook_bit) == 0) {  // the default hook: Continue, nothing changed
      ctx.facts |= writes_[i];
      continue;
    }
    if (e.mode == Mode::kEnforce) {
      Verdict v = hook(*e.stage, ctx);
      ctx.facts |= writes_[i];
      if (!v.IsContinue()) {
        ++c.rejected;
        ctx.outcome = v;
        ctx.stopped_by = e.stage->name();
        return v;
      }
      continue;
    }
    // Observe mode: an observed stage must not change what is forwarded, nor stop the chain.
    std::optional<std::string> rewrite_before = ctx.rewritten;
    size_t decisions_before = ctx.decisions.size();
    Verdict v = hook(*e.stage, ctx);
    ctx.facts |= writes_[i];
    ctx.rewritten = std::move(rewrite_before);
    for (size_t d = decisions_before; d < ctx.decisions.size(); ++d) {
      ctx.decisions[d].enforced = false;
    }
    if (!v.IsContinue()) {
      ++c.observed;
    }
  }
  const Verdict& o = ctx.outcome;
  if (!o.IsContinue() || o.code != 0 || !o.message.empty() || !o.data_json.empty() ||
      !o.result_json.empty()) {
    ctx.outcome = Verdict::Continue();  // (already so after a request that went through)
  }
  return Verdict::Continue();
}

Verdict Chain::OnRequest(MessageContext& ctx) {
  return Run(ctx, Stage::kOnRequest, [](Stage& s, MessageContext& c) { return s.OnRequest(c); });
}

Verdict Chain::OnResponse(MessageContext& ctx) {
  return Run(ctx, Stage::kOnResponse, [](Stage& s, MessageContext& c) { return s.OnResponse(c); });
}

void Chain::OnComplete(MessageContext& ctx) {
  for (Entry& e : entries_) {
    e.stage->OnComplete(ctx);
  }
}

}  // namespace mcpmw::middleware
