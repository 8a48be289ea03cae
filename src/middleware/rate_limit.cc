#include "src/middleware/rate_limit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {
namespace {

using policy::RateAlgorithm;
using policy::RateDimension;
using policy::RateRule;

constexpr int64_t kNsPerMs = 1'000'000;
// GCRA intervals are clamped so that tat = now + tolerance + interval cannot overflow int64:
// a refill slower than one token in ~3 years, or a burst tolerance past ~31 years, is treated
// as that long (indistinguishable from "never" for a running proxy).
constexpr int64_t kMaxIntervalNs = 100'000'000'000'000'000;     // 1e17 ns
constexpr int64_t kMaxToleranceNs = 1'000'000'000'000'000'000;  // 1e18 ns

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Whole milliseconds covering `ns` (> 0), never less than 1.
uint64_t CeilMs(int64_t ns) {
  return std::max<uint64_t>(1, static_cast<uint64_t>((ns + kNsPerMs - 1) / kNsPerMs));
}

// The time one token takes to come back (the GCRA emission interval).
int64_t IntervalNs(const RateRule& rule) {
  double ns = 1e9 / rule.refill_per_second;
  if (!(ns < static_cast<double>(kMaxIntervalNs))) {  // also catches refill 0 / NaN
    return kMaxIntervalNs;
  }
  return std::max<int64_t>(1, std::llround(ns));
}

// How far ahead of now the theoretical arrival time may run: (capacity - 1) intervals.
int64_t ToleranceNs(const RateRule& rule, int64_t interval) {
  uint64_t extra = rule.limit - 1;  // limit >= 1 here
  if (extra > static_cast<uint64_t>(kMaxToleranceNs / interval)) {
    return kMaxToleranceNs;
  }
  return static_cast<int64_t>(extra) * interval;
}

std::string_view DefaultTemplate(RateDimension dimension) {
  switch (dimension) {
    case RateDimension::kUser:
      return "{tenant}:{user}";
    case RateDimension::kAgent:
      return "{tenant}:{agent}";
    case RateDimension::kTool:
      return "{tenant}:{tool}";
    case RateDimension::kTenant:
      return "{tenant}";
  }
  return "{tenant}:{user}";
}

// Substituted values escape '%' and ':' so that the template's own separators stay unambiguous.
void AppendKeyPart(std::string_view value, std::string* out) {
  size_t run = 0;  // start of the bytes not yet appended
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' || value[i] == ':') {
      out->append(value.substr(run, i - run));
      out->append(value[i] == '%' ? "%25" : "%3A");
      run = i + 1;
    }
  }
  out->append(value.substr(run));
}

bool Applies(const RateRule& rule, std::string_view method) {
  return std::find(rule.methods.begin(), rule.methods.end(), method) != rule.methods.end();
}

// "60 s", "0.5 s", "1.25 s".
std::string WindowText(uint64_t window_ms) {
  if (window_ms % 1000 == 0) {
    return absl::StrCat(window_ms / 1000, " s");
  }
  std::string frac = absl::StrCat(1000 + window_ms % 1000).substr(1);  // three digits
  while (frac.back() == '0') {
    frac.pop_back();
  }
  return absl::StrCat(window_ms / 1000, ".", frac, " s");
}

// "250 ms" below a second, else tenths of a second rounded up ("12.3 s", "60 s"): never tells a
// caller to come back before it would be admitted.
std::string RetryText(uint64_t ms) {
  if (ms < 1000) {
    return absl::StrCat(ms, " ms");
  }
  uint64_t tenths = (ms + 99) / 100;
  if (tenths % 10 == 0) {
    return absl::StrCat(tenths / 10, " s");
  }
  return absl::StrCat(tenths / 10, ".", tenths % 10, " s");
}

std::string LimitText(const RateRule& rule) {
  std::string_view calls = rule.limit == 1 ? " call" : " calls";
  if (rule.algorithm == RateAlgorithm::kFixedWindow) {
    return absl::StrCat(rule.limit, Sv(calls), " per ", WindowText(rule.window_ms));
  }
  return absl::StrCat(rule.limit, Sv(calls), " at once, refilling ", rule.refill_per_second,
                      " per second");
}

// Who was limited, as a person reads it: "user alice" for a rule on its dimension's default
// key, else the key itself.
std::string SubjectText(const RateRule& rule, const MessageContext& ctx, std::string_view key) {
  if (rule.key_template.empty()) {
    std::string_view value;
    switch (rule.dimension) {
      case RateDimension::kUser:
        value = ctx.principal.user;
        break;
      case RateDimension::kAgent:
        value = ctx.principal.agent;
        break;
      case RateDimension::kTool:
        value = ctx.tool_name;
        break;
      case RateDimension::kTenant:
        value = ctx.principal.tenant;
        break;
    }
    if (!value.empty()) {
      return absl::StrCat(Sv(policy::RateDimensionName(rule.dimension)), " ", Sv(value));
    }
  }
  return absl::StrCat("key \"", Sv(key), "\"");
}

}  // namespace

RateLimitState::RateLimitState(size_t sweep_threshold)
    : sweep_threshold_(std::max<size_t>(sweep_threshold, 1)), next_sweep_at_(sweep_threshold_) {}

void RateLimitState::MaybeSweep(int64_t now_ns) {
  if (entries_.size() < next_sweep_at_) {
    return;
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires_ns <= now_ns) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  // Doubling the mark keeps the sweep amortised O(1) per insertion even when every entry is
  // live (then the map is as big as it must be).
  next_sweep_at_ = std::max(sweep_threshold_, 2 * entries_.size());
}

RateLimitStage::RateLimitStage(const policy::Bundle& bundle, const Clock& clock,
                               RateLimitState* state)
    : bundle_(bundle), clock_(clock), state_(state) {
  keys_by_rule_.reserve(bundle_.rate_rules.size());
  for (const RateRule& rule : bundle_.rate_rules) {
    keys_by_rule_.push_back(CompileKey(rule));
  }
}

RateLimitStage::CompiledKey RateLimitStage::CompileKey(const RateRule& rule) {
  using Source = KeyPart::Source;
  CompiledKey key;
  // A length prefix keeps (rule "a", key "bc") and (rule "ab", key "c") apart.
  key.prefix = absl::StrCat(rule.id.size(), ":", rule.id);
  auto literal = [&key](std::string_view text) {
    if (text.empty()) {
      return;
    }
    if (key.parts.empty() || key.parts.back().source != Source::kLiteral) {
      key.parts.push_back({});
    }
    key.parts.back().literal.append(text);
  };
  std::string_view t = rule.key_template.empty() ? DefaultTemplate(rule.dimension)
                                                 : std::string_view(rule.key_template);
  while (!t.empty()) {
    size_t open = t.find('{');
    size_t close = open == std::string_view::npos ? open : t.find('}', open);
    if (close == std::string_view::npos) {
      literal(t);
      break;
    }
    literal(t.substr(0, open));
    std::string_view name = t.substr(open + 1, close - open - 1);
    Source source = name == "tenant"   ? Source::kTenant
                    : name == "user"   ? Source::kUser
                    : name == "agent"  ? Source::kAgent
                    : name == "tool"   ? Source::kTool
                    : name == "method" ? Source::kMethod
                                       : Source::kLiteral;
    if (source == Source::kLiteral) {
      literal(t.substr(open, close - open + 1));  // the bundle loader refuses these
    } else {
      key.parts.push_back({.source = source});
    }
    t.remove_prefix(close + 1);
  }
  return key;
}

void RateLimitStage::BuildKey(size_t index, const MessageContext& ctx, std::string* out,
                              size_t* key_offset) const {
  using Source = KeyPart::Source;
  const CompiledKey& key = keys_by_rule_[index];
  out->assign(key.prefix);
  *key_offset = out->size();
  for (const KeyPart& part : key.parts) {
    switch (part.source) {
      case Source::kLiteral:
        out->append(part.literal);
        break;
      case Source::kTenant:
        AppendKeyPart(ctx.principal.tenant, out);
        break;
      case Source::kUser:
        AppendKeyPart(ctx.principal.user, out);
        break;
      case Source::kAgent:
        AppendKeyPart(ctx.principal.agent, out);
        break;
      case Source::kTool:
        AppendKeyPart(ctx.tool_name, out);
        break;
      case Source::kMethod:
        AppendKeyPart(ctx.method, out);
        break;
    }
  }
}

RateLimitStage::Check RateLimitStage::Evaluate(const RateRule& rule, const std::string& map_key,
                                               int64_t now_ns) const {
  Check check{.rule = &rule};
  auto it = state_->entries_.find(map_key);
  if (it != state_->entries_.end()) {
    check.entry = &it->second;
  }
  const RateLimitState::Entry* entry =
      check.entry != nullptr && check.entry->algorithm == rule.algorithm ? check.entry : nullptr;
  if (rule.algorithm == RateAlgorithm::kFixedWindow) {
    int64_t window_ns = static_cast<int64_t>(rule.window_ms) * kNsPerMs;
    int64_t start = FloorDiv(now_ns, window_ns) * window_ns;
    uint64_t count = entry != nullptr && entry->mark_ns == start ? entry->count : 0;
    check.admitted = count < rule.limit;
    if (!check.admitted) {
      check.retry_after_ms = CeilMs(start + window_ns - now_ns);
    }
    return check;
  }
  int64_t interval = IntervalNs(rule);
  if (rule.limit == 0) {
    check.retry_after_ms = CeilMs(interval);
    return check;
  }
  int64_t tolerance = ToleranceNs(rule, interval);
  int64_t tat = entry != nullptr ? std::max(entry->mark_ns, now_ns) : now_ns;
  check.admitted = tat - now_ns <= tolerance;
  if (!check.admitted) {
    check.retry_after_ms = CeilMs(tat - tolerance - now_ns);
  }
  return check;
}

void RateLimitStage::Charge(const RateRule& rule, const std::string& map_key, int64_t now_ns,
                            RateLimitState::Entry* found) {
  bool inserted = false;
  if (found == nullptr) {
    auto [it, added] = state_->entries_.try_emplace(map_key);
    found = &it->second;
    inserted = added;
  }
  RateLimitState::Entry& entry = *found;
  if (inserted || entry.algorithm != rule.algorithm) {  // new, or the rule changed kind
    entry = {.algorithm = rule.algorithm, .mark_ns = std::numeric_limits<int64_t>::min()};
  }
  if (rule.algorithm == RateAlgorithm::kFixedWindow) {
    int64_t window_ns = static_cast<int64_t>(rule.window_ms) * kNsPerMs;
    int64_t start = FloorDiv(now_ns, window_ns) * window_ns;
    if (entry.mark_ns != start) {
      entry.mark_ns = start;
      entry.count = 0;
    }
    ++entry.count;
    entry.expires_ns = start + window_ns;
    return;
  }
  entry.mark_ns = std::max(entry.mark_ns, now_ns) + IntervalNs(rule);
  entry.expires_ns = entry.mark_ns;  // the bucket is full again then: same as no entry
}

Verdict RateLimitStage::Refuse(MessageContext& ctx, const Check& worst, std::string_view key) {
  const RateRule& rule = *worst.rule;
  ctx.rate = {.limited = true,
              .retry_after_ms = worst.retry_after_ms,
              .rule_id = rule.id,
              .key = std::string(key)};
  return Deny(
      ctx, name(), kCodeRateLimited,
      absl::StrCat("Rate limit exceeded for ", SubjectText(rule, ctx, key), ": ", LimitText(rule),
                   " (rule ", rule.id, "); retry in ", RetryText(worst.retry_after_ms), "."),
      "rate-limit-exceeded", rule.id, worst.retry_after_ms);
}

Verdict RateLimitStage::OnRequest(MessageContext& ctx) {
  if (ctx.direction != Direction::kClientToServer || ctx.envelope == nullptr ||
      ctx.envelope->kind != jsonrpc::MessageKind::kRequest) {
    return Verdict::Continue();
  }
  ctx.rate = {};
  // The message's arrival (when the chain started on it), else the clock, read once when the
  // first rule applies (no rule, no clock read).
  int64_t now_ns = 0;
  checks_.clear();
  for (size_t r = 0; r < bundle_.rate_rules.size(); ++r) {
    const RateRule& rule = bundle_.rate_rules[r];
    if (!Applies(rule, ctx.method)) {
      continue;
    }
    if (checks_.empty()) {
      const TimePoint now = ctx.started != TimePoint{} ? ctx.started : clock_.Now();
      now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    }
    size_t n = checks_.size();
    if (keys_.size() <= n) {
      keys_.emplace_back();
    }
    size_t key_offset = 0;
    BuildKey(r, ctx, &keys_[n], &key_offset);
    Check check = Evaluate(rule, keys_[n], now_ns);
    check.key_offset = key_offset;
    checks_.push_back(check);
  }
  if (checks_.empty()) {
    return Verdict::Continue();
  }

  // The rule that frees up last decides (ties: the first in bundle order).
  size_t worst = checks_.size();
  for (size_t i = 0; i < checks_.size(); ++i) {
    if (!checks_[i].admitted &&
        (worst == checks_.size() || checks_[i].retry_after_ms > checks_[worst].retry_after_ms)) {
      worst = i;
    }
  }
  if (worst != checks_.size()) {
    return Refuse(ctx, checks_[worst],
                  std::string_view(keys_[worst]).substr(checks_[worst].key_offset));
  }

  // The entries Evaluate found are still where it found them while the map is untouched: no
  // sweep dropped anything and no charge inserted (an insertion may move entries).
  const size_t size = state_->entries_.size();
  state_->MaybeSweep(now_ns);
  bool untouched = state_->entries_.size() == size;
  for (size_t i = 0; i < checks_.size(); ++i) {
    Charge(*checks_[i].rule, keys_[i], now_ns, untouched ? checks_[i].entry : nullptr);
    untouched = untouched && state_->entries_.size() == size;
  }
  ctx.decisions.push_back(
      {.stage = name(), .status = "allow", .reason_code = "rate-limit:allowed", .routine = true});
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
