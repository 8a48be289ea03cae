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
    : entries_(std::move(entries)), counters_(entries_.size()) {}

template <typename Hook>
Verdict Chain::Run(MessageContext& ctx, Hook hook) {
  ctx.facts.set(static_cast<size_t>(Fact::kEnvelope));
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    StageCounters& c = counters_[i];
    ++c.evaluated;
    std::optional<std::string> rewrite_before;
    size_t decisions_before = ctx.decisions.size();
    if (e.mode == Mode::kObserve) {
      rewrite_before = ctx.rewritten;  // an observed stage must not change what is forwarded
    }
    Verdict v = hook(*e.stage, ctx);
    ctx.facts |= e.stage->writes();
    if (e.mode == Mode::kObserve) {
      ctx.rewritten = std::move(rewrite_before);
      for (size_t d = decisions_before; d < ctx.decisions.size(); ++d) {
        ctx.decisions[d].enforced = false;
      }
      if (!v.IsContinue()) {
        ++c.observed;
      }
      continue;
    }
    if (!v.IsContinue()) {
      ++c.rejected;
      ctx.outcome = v;
      ctx.stopped_by = e.stage->name();
      return v;
    }
  }
  ctx.outcome = Verdict::Continue();
  return Verdict::Continue();
}

Verdict Chain::OnRequest(MessageContext& ctx) {
  return Run(ctx, [](Stage& s, MessageContext& c) { return s.OnRequest(c); });
}

Verdict Chain::OnResponse(MessageContext& ctx) {
  return Run(ctx, [](Stage& s, MessageContext& c) { return s.OnResponse(c); });
}

void Chain::OnComplete(MessageContext& ctx) {
  for (Entry& e : entries_) {
    e.stage->OnComplete(ctx);
  }
}

}  // namespace mcpmw::middleware
