#include "src/telemetry/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "src/common/log.h"
#include "src/common/strings.h"

namespace mcpmw::telemetry {
namespace {

constexpr std::string_view kOverflowValue = "__overflow__";

// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
void AppendLabelValue(std::string_view value, std::string* out) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

// HELP text escapes only backslash and line feed.
void AppendHelp(std::string_view help, std::string* out) {
  for (char c : help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// The shortest text that reads back as the same double; Prometheus spells the specials
// "+Inf", "-Inf" and "NaN".
void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

// `a="x",b="y"`, sorted by label name so the caller's order does not create a second series.
// With `overflow`, every value is kOverflowValue.
void BuildKey(Labels labels, bool overflow, std::string* out) {
  out->clear();
  absl::InlinedVector<std::pair<std::string_view, std::string_view>, 8> sorted(labels.begin(),
                                                                               labels.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [name, value] : sorted) {
    if (!out->empty()) {
      out->push_back(',');
    }
    out->append(name);
    out->append("=\"");
    AppendLabelValue(overflow ? kOverflowValue : value, out);
    out->push_back('"');
  }
}

// `name{labels}` or `name{labels,extra}`; no braces when there is nothing inside.
void AppendSeriesName(std::string_view name, std::string_view suffix, std::string_view labels,
                      std::string_view extra, std::string* out) {
  out->append(name);
  out->append(suffix);
  if (labels.empty() && extra.empty()) {
    return;
  }
  out->push_back('{');
  out->append(labels);
  if (!labels.empty() && !extra.empty()) {
    out->push_back(',');
  }
  out->append(extra);
  out->push_back('}');
}

// `key` (a rendered label set) with every value replaced by kOverflowValue.
std::string OverflowKey(std::string_view key) {
  std::string out;
  size_t pos = 0;
  while (pos < key.size()) {
    size_t eq = key.find("=\"", pos);
    if (eq == std::string_view::npos) {
      break;
    }
    if (!out.empty()) {
      out.push_back(',');
    }
    out.append(key.substr(pos, eq - pos));
    out.append("=\"");
    out.append(kOverflowValue);
    out.push_back('"');
    // The escaped value ends at the first quote that is not escaped.
    size_t i = eq + 2;
    while (i < key.size() && key[i] != '"') {
      i += key[i] == '\\' ? 2 : 1;
    }
    pos = i + 2;  // past `",`
  }
  return out;
}

}  // namespace

void Histogram::Observe(uint64_t micros) {
  // Bounds are inclusive (`le`); the first bound not below the value is the bucket.
  auto it = std::lower_bound(kLatencyBucketsMicros.begin(), kLatencyBucketsMicros.end(), micros);
  ++buckets_[static_cast<size_t>(it - kLatencyBucketsMicros.begin())];
  ++count_;
  sum_ += micros;
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) {
    buckets_[i] += other.buckets_[i];
  }
  count_ += other.count_;
  sum_ += other.sum_;
}

Metrics::Metrics(size_t max_series_per_family)
    : max_series_per_family_(std::max<size_t>(max_series_per_family, 1)) {}

Metrics::Family* Metrics::FamilyFor(std::string_view name, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
  }
  Family& family = it->second;
  if (family.kind == Kind::kUndefined) {
    family.kind = kind;  // a family described before its first use
  }
  if (family.kind != kind) {
    if (!family.conflict_logged) {
      family.conflict_logged = true;
      LogError("metrics: ", Sv(name), " is used as two kinds of metric; the second use is dropped");
    }
    return nullptr;
  }
  return &family;
}

Metrics::Series& Metrics::Lookup(std::string_view name, Kind kind, Labels labels) {
  Family* family = FamilyFor(name, kind);
  if (family == nullptr) {
    switch (kind) {
      case Kind::kCounter:
        detached_.emplace<Counter>();
        break;
      case Kind::kSum:
        detached_.emplace<Sum>();
        break;
      default:
        detached_.emplace<Histogram>();
        break;
    }
    return detached_;
  }
  BuildKey(labels, /*overflow=*/false, &key_scratch_);
  if (auto it = family->series.find(key_scratch_); it != family->series.end()) {
    return it->second;
  }
  if (family->series.size() >= max_series_per_family_) {
    BuildKey(labels, /*overflow=*/true, &key_scratch_);
  }
  Series fresh = kind == Kind::kCounter ? Series(Counter{})
                 : kind == Kind::kSum   ? Series(Sum{})
                                        : Series(Histogram{});
  return family->series.try_emplace(key_scratch_, fresh).first->second;
}

Counter& Metrics::counter(std::string_view name, Labels labels) {
  return std::get<Counter>(Lookup(name, Kind::kCounter, labels));
}

Sum& Metrics::sum(std::string_view name, Labels labels) {
  return std::get<Sum>(Lookup(name, Kind::kSum, labels));
}

Histogram& Metrics::histogram(std::string_view name, Labels labels) {
  return std::get<Histogram>(Lookup(name, Kind::kHistogram, labels));
}

void Metrics::Describe(std::string_view name, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
  }
  it->second.help = std::string(help);
}

void Metrics::Merge(const Metrics& other) {
  if (&other == this) {
    return;
  }
  for (const auto& [name, theirs] : other.families_) {
    if (theirs.kind == Kind::kUndefined) {
      if (!theirs.help.empty()) {
        Describe(name, theirs.help);
      }
      continue;
    }
    Family* mine = FamilyFor(name, theirs.kind);
    if (mine == nullptr) {
      continue;
    }
    if (mine->help.empty()) {
      mine->help = theirs.help;
    }
    for (const auto& [key, series] : theirs.series) {
      auto it = mine->series.find(key);
      if (it == mine->series.end()) {
        std::string target = mine->series.size() < max_series_per_family_ ? key : OverflowKey(key);
        auto [slot, inserted] = mine->series.try_emplace(std::move(target), series);
        if (inserted) {
          continue;
        }
        it = slot;
      }
      std::visit(
          [&](auto& into) {
            using T = std::decay_t<decltype(into)>;
            const T& from = std::get<T>(series);
            if constexpr (std::is_same_v<T, Counter>) {
              into.Add(from.value());
            } else if constexpr (std::is_same_v<T, Sum>) {
              into.Add(from.value());
            } else {
              into.Merge(from);
            }
          },
          it->second);
    }
  }
}

size_t Metrics::series_count(std::string_view name) const {
  auto it = families_.find(name);
  return it == families_.end() ? 0 : it->second.series.size();
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  std::string le;
  for (const auto& [name, family] : families_) {
    if (family.kind == Kind::kUndefined) {
      continue;  // described, never used: nothing to expose
    }
    if (!family.help.empty()) {
      absl::StrAppend(&out, "# HELP ", name, " ");
      AppendHelp(family.help, &out);
      out.push_back('\n');
    }
    absl::StrAppend(&out, "# TYPE ", name,
                    family.kind == Kind::kHistogram ? " histogram\n" : " counter\n");
    for (const auto& [labels, series] : family.series) {
      if (const auto* c = std::get_if<Counter>(&series)) {
        AppendSeriesName(name, "", labels, "", &out);
        absl::StrAppend(&out, " ", c->value(), "\n");
      } else if (const auto* s = std::get_if<Sum>(&series)) {
        AppendSeriesName(name, "", labels, "", &out);
        out.push_back(' ');
        AppendDouble(s->value(), &out);
        out.push_back('\n');
      } else {
        const Histogram& h = std::get<Histogram>(series);
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= kLatencyBucketsMicros.size(); ++i) {
          cumulative += h.bucket(i);
          le = i < kLatencyBucketsMicros.size()
                   ? absl::StrCat("le=\"", kLatencyBucketsMicros[i], "\"")
                   : "le=\"+Inf\"";
          AppendSeriesName(name, "_bucket", labels, le, &out);
          absl::StrAppend(&out, " ", cumulative, "\n");
        }
        AppendSeriesName(name, "_sum", labels, "", &out);
        absl::StrAppend(&out, " ", h.sum_micros(), "\n");
        AppendSeriesName(name, "_count", labels, "", &out);
        absl::StrAppend(&out, " ", h.count(), "\n");
      }
    }
  }
  return out;
}

}  // namespace mcpmw::telemetry
