#include "src/telemetry/metrics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Metrics, ReturnsTheSameCounterForTheSameLabelsInAnyOrder) {
  Metrics m;
  Counter& a = m.counter("mcpmw_calls_total", {{"tenant", "acme"}, {"tool", "search"}});
  a.Add(2);
  Counter& b = m.counter("mcpmw_calls_total", {{"tool", "search"}, {"tenant", "acme"}});
  b.Increment();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(a.value(), 3u);
  EXPECT_EQ(m.series_count("mcpmw_calls_total"), 1u);
}

TEST(Metrics, KeepsReferencesValidWhileManySeriesAreAdded) {
  Metrics m;
  Counter& first = m.counter("mcpmw_calls_total", {{"user", "u0"}});
  first.Increment();
  for (int i = 1; i < 1000; ++i) {
    m.counter("mcpmw_calls_total", {{"user", absl::StrCat("u", i)}}).Increment();
  }
  first.Add(4);
  EXPECT_EQ(m.counter("mcpmw_calls_total", {{"user", "u0"}}).value(), 5u);
}

TEST(Metrics, RendersCountersAndSumsInTheExpositionFormat) {
  Metrics m;
  m.Describe("mcpmw_cost_usd_total", "Estimated upstream cost in US dollars, per tenant.");
  m.sum("mcpmw_cost_usd_total", {{"tenant", "acme"}}).Add(0.038);
  m.sum("mcpmw_cost_usd_total", {{"tenant", "beta"}}).Add(0.1);
  m.sum("mcpmw_cost_usd_total", {{"tenant", "beta"}}).Add(0.2);
  m.counter("mcpmw_tokens_total", {{"tenant", "acme"}, {"direction", "input"}}).Add(120);
  m.counter("mcpmw_up").Increment();
  EXPECT_EQ(m.RenderPrometheus(),
            "# HELP mcpmw_cost_usd_total Estimated upstream cost in US dollars, per tenant.\n"
            "# TYPE mcpmw_cost_usd_total counter\n"
            "mcpmw_cost_usd_total{tenant=\"acme\"} 0.038\n"
            "mcpmw_cost_usd_total{tenant=\"beta\"} 0.30000000000000004\n"
            "# TYPE mcpmw_tokens_total counter\n"
            "mcpmw_tokens_total{direction=\"input\",tenant=\"acme\"} 120\n"
            "# TYPE mcpmw_up counter\n"
            "mcpmw_up 1\n");
}

TEST(Metrics, EscapesLabelValuesAndHelpText) {
  Metrics m;
  m.Describe("mcpmw_x_total", "a \\ b\nc \"d\"");
  m.counter("mcpmw_x_total", {{"tool", "a\"b\\c\nd"}}).Increment();
  EXPECT_EQ(m.RenderPrometheus(),
            "# HELP mcpmw_x_total a \\\\ b\\nc \"d\"\n"
            "# TYPE mcpmw_x_total counter\n"
            "mcpmw_x_total{tool=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Metrics, RendersHistogramBucketsCumulativelyWithSumAndCount) {
  Metrics m;
  Histogram& h = m.histogram("mcpmw_stage_latency_microseconds", {{"stage", "auth"}});
  h.Observe(50);          // le=50 (bounds are inclusive)
  h.Observe(51);          // le=100
  h.Observe(3'000);       // le=5000
  h.Observe(20'000'000);  // +Inf
  std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE mcpmw_stage_latency_microseconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"50\"} "
                              "1\n"
                              "mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"100\"} "
                              "2\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"2500\"} 2\n"
                        "mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"5000\"} 3\n"));
  EXPECT_THAT(
      text, HasSubstr("mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"10000000\"} 3\n"
                      "mcpmw_stage_latency_microseconds_bucket{stage=\"auth\",le=\"+Inf\"} 4\n"
                      "mcpmw_stage_latency_microseconds_sum{stage=\"auth\"} 20003101\n"
                      "mcpmw_stage_latency_microseconds_count{stage=\"auth\"} 4\n"));
}

TEST(Metrics, RendersAHistogramWithoutLabels) {
  Metrics m;
  m.histogram("mcpmw_frame_microseconds").Observe(10);
  std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_frame_microseconds_bucket{le=\"50\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_frame_microseconds_sum 10\nmcpmw_frame_microseconds_count 1\n"));
}

TEST(Metrics, MergeAddsEveryKindOfSeries) {
  Metrics a;
  Metrics b;
  a.counter("mcpmw_calls_total", {{"tenant", "acme"}}).Add(2);
  b.counter("mcpmw_calls_total", {{"tenant", "acme"}}).Add(3);
  b.counter("mcpmw_calls_total", {{"tenant", "beta"}}).Add(1);
  a.sum("mcpmw_cost_usd_total", {{"tenant", "acme"}}).Add(0.5);
  b.sum("mcpmw_cost_usd_total", {{"tenant", "acme"}}).Add(0.25);
  b.Describe("mcpmw_cost_usd_total", "Cost.");
  a.histogram("mcpmw_latency_microseconds").Observe(60);
  b.histogram("mcpmw_latency_microseconds").Observe(70);
  b.histogram("mcpmw_latency_microseconds").Observe(700);

  a.Merge(b);
  EXPECT_EQ(a.counter("mcpmw_calls_total", {{"tenant", "acme"}}).value(), 5u);
  EXPECT_EQ(a.counter("mcpmw_calls_total", {{"tenant", "beta"}}).value(), 1u);
  EXPECT_EQ(a.sum("mcpmw_cost_usd_total", {{"tenant", "acme"}}).value(), 0.75);
  const Histogram& h = a.histogram("mcpmw_latency_microseconds");
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.sum_micros(), 830u);
  EXPECT_EQ(h.bucket(1), 2u);  // le=100
  EXPECT_EQ(h.bucket(4), 1u);  // le=1000
  EXPECT_THAT(a.RenderPrometheus(), HasSubstr("# HELP mcpmw_cost_usd_total Cost.\n"));
  // The source is left as it was.
  EXPECT_EQ(b.counter("mcpmw_calls_total", {{"tenant", "acme"}}).value(), 3u);
}

TEST(Metrics, FoldsLabelSetsPastTheCapIntoOneOverflowSeries) {
  Metrics m(/*max_series_per_family=*/3);
  for (int i = 0; i < 100; ++i) {
    m.counter("mcpmw_calls_total", {{"tool", absl::StrCat("t", i)}, {"tenant", "acme"}})
        .Increment();
  }
  EXPECT_EQ(m.series_count("mcpmw_calls_total"), 4u);
  EXPECT_EQ(m.counter("mcpmw_calls_total", {{"tool", "t1"}, {"tenant", "acme"}}).value(), 1u);
  EXPECT_THAT(m.RenderPrometheus(),
              HasSubstr("mcpmw_calls_total{tenant=\"__overflow__\",tool=\"__overflow__\"} 97\n"));
}

TEST(Metrics, MergeFoldsSeriesPastTheCapIntoTheOverflowSeries) {
  Metrics a(/*max_series_per_family=*/1);
  Metrics b;
  a.counter("mcpmw_calls_total", {{"tool", "x"}}).Add(1);
  b.counter("mcpmw_calls_total", {{"tool", "y"}}).Add(2);
  b.counter("mcpmw_calls_total", {{"tool", "z\"q"}}).Add(3);
  a.Merge(b);
  EXPECT_EQ(a.RenderPrometheus(),
            "# TYPE mcpmw_calls_total counter\n"
            "mcpmw_calls_total{tool=\"__overflow__\"} 5\n"
            "mcpmw_calls_total{tool=\"x\"} 1\n");
}

TEST(Metrics, ANameUsedAsTwoKindsKeepsTheFirstAndDropsTheSecond) {
  Metrics m;
  m.counter("mcpmw_calls_total").Add(2);
  m.sum("mcpmw_calls_total").Add(5.5);
  EXPECT_EQ(m.RenderPrometheus(), "# TYPE mcpmw_calls_total counter\nmcpmw_calls_total 2\n");
}

TEST(Metrics, SumIgnoresNegativeAndNanAmounts) {
  Metrics m;
  Sum& s = m.sum("mcpmw_cost_usd_total");
  s.Add(1.5);
  s.Add(-1);
  s.Add(std::nan(""));
  EXPECT_EQ(s.value(), 1.5);
}

TEST(Metrics, DescribedButUnusedFamiliesAreNotRendered) {
  Metrics m;
  m.Describe("mcpmw_unused_total", "Never incremented.");
  EXPECT_EQ(m.RenderPrometheus(), "");
  EXPECT_THAT(m.RenderPrometheus(), Not(HasSubstr("mcpmw_unused_total")));
}

}  // namespace
}  // namespace mcpmw::telemetry
