// mcpmw telemetry: the per-reactor metrics registry.
//
// Place: ARCHITECTURE.md §2 and §8. Every reactor thread owns one Metrics; stages and sessions
// on that reactor update it without locks or atomics. A scrape (`/metrics`) asks each reactor
// for a copy — or Merge()s them on the reactor that serves the scrape, through an explicit
// cross-reactor message — and renders the sum in the Prometheus text exposition format (0.0.4):
//
//   # HELP mcpmw_cost_usd_total Estimated upstream cost in US dollars, per tenant.
//   # TYPE mcpmw_cost_usd_total counter
//   mcpmw_cost_usd_total{tenant="acme"} 0.038
//
// Three kinds of series, each in a family (one metric name, one kind, one HELP text):
//
//   Counter    a whole number that only goes up (calls, bytes, tokens)
//   Sum        a double that only goes up (US dollars); rendered as a Prometheus counter
//   Histogram  latencies in microseconds over fixed buckets (kLatencyBucketsMicros), rendered
//              as cumulative `_bucket{le=…}` series plus `_sum` and `_count`
//
// Lookups return references that stay valid for the registry's life, so a hot path with fixed
// labels looks its series up once and keeps the reference. Memory is bounded: a family holds at
// most `max_series_per_family` label sets; past that, new label sets all share one series whose
// label values are "__overflow__" (a client inventing tool names cannot grow the registry).
//
// Names used across mcpmw (the cost stage, src/middleware/cost.h):
//   mcpmw_cost_usd_total{tenant}                          Sum
//   mcpmw_cost_usd_by_user_total{tenant,user}             Sum
//   mcpmw_cost_usd_by_tool_total{tool}                    Sum
//   mcpmw_tokens_total{tenant,direction=input|output}     Counter
//   mcpmw_tokens_by_user_total{tenant,user,direction}     Counter
//   mcpmw_tokens_by_tool_total{tool,direction}            Counter
//   mcpmw_metered_calls_total{tenant,tool,dispatched=true|false}   Counter
//
// Threading: not thread-safe; one registry per reactor. Metric and label names are chosen by
// mcpmw's code (they must match [a-zA-Z_:][a-zA-Z0-9_:]*); label values may be anything (they
// are escaped when rendered).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mcpmw::telemetry {

// Label name/value pairs; their order does not matter ({a,b} and {b,a} are the same series).
using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Counter {
 public:
  void Increment() { ++value_; }
  void Add(uint64_t n) { value_ += n; }
  uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

class Sum {
 public:
  // `amount` must be 0 or more (a Prometheus counter never goes down); anything else, NaN
  // included, is ignored.
  void Add(double amount) {
    if (amount > 0) {
      value_ += amount;
    }
  }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

// Upper bounds (inclusive, microseconds) of the latency histogram buckets; +Inf is implicit.
inline constexpr std::array<uint64_t, 16> kLatencyBucketsMicros = {
    50,     100,    250,     500,     1'000,   2'500,     5'000,     10'000,
    25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 10'000'000};

class Histogram {
 public:
  void Observe(uint64_t micros);
  // Observations that fell in bucket `i` alone (not cumulative); i == kLatencyBucketsMicros
  // .size() is the +Inf bucket.
  uint64_t bucket(size_t i) const { return buckets_[i]; }
  uint64_t count() const { return count_; }
  uint64_t sum_micros() const { return sum_; }
  void Merge(const Histogram& other);

 private:
  std::array<uint64_t, kLatencyBucketsMicros.size() + 1> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

class Metrics {
 public:
  static constexpr size_t kDefaultMaxSeriesPerFamily = 10'000;
  explicit Metrics(size_t max_series_per_family = kDefaultMaxSeriesPerFamily);

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  Metrics(Metrics&&) = default;
  Metrics& operator=(Metrics&&) = default;

  // The series `name{labels}`, created at zero on first use. The reference stays valid for the
  // life of this registry. Asking for a name already registered as another kind is a bug in
  // the caller: it is logged once and a detached series (never rendered) is returned.
  Counter& counter(std::string_view name, Labels labels = {});
  Sum& sum(std::string_view name, Labels labels = {});
  Histogram& histogram(std::string_view name, Labels labels = {});

  // Sets the HELP text of family `name` (kept when the family is created later).
  void Describe(std::string_view name, std::string_view help);

  // Adds every series of `other` into this registry (the scrape-time aggregation). Families
  // whose kind differs between the two are skipped and logged.
  void Merge(const Metrics& other);

  // The whole registry in the Prometheus text exposition format, families sorted by name and
  // series by their rendered labels, so the output is stable.
  std::string RenderPrometheus() const;

  // How many series family `name` holds (0 when it does not exist).
  size_t series_count(std::string_view name) const;

 private:
  enum class Kind : uint8_t { kUndefined, kCounter, kSum, kHistogram };
  using Series = std::variant<Counter, Sum, Histogram>;
  struct Family {
    Kind kind = Kind::kUndefined;
    std::string help;
    bool conflict_logged = false;
    // Keyed by the rendered label set, `a="x",b="y"` sorted by label name; std::map nodes do
    // not move, which is what makes the returned references stable.
    std::map<std::string, Series, std::less<>> series;
  };

  Series& Lookup(std::string_view name, Kind kind, Labels labels);
  Family* FamilyFor(std::string_view name, Kind kind);

  size_t max_series_per_family_;
  std::map<std::string, Family, std::less<>> families_;
  std::string key_scratch_;  // reused by Lookup so a hit allocates nothing
  Series detached_;          // what a lookup with the wrong kind gets
};

}  // namespace mcpmw::telemetry
