#include "src/middleware/redaction/json_redactor.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/sha256.h"
#include "src/common/status.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::redaction {
namespace {

// "sha256:<hex>" of salt + value. An empty digest (OpenSSL broken) still replaces the value.
std::string SaltedHash(std::string_view salt, std::string_view value) {
  std::string hex = Sha256Hex({salt, value});
  return "sha256:" + (hex.empty() ? std::string("unavailable") : hex);
}

// Appends `token` to an RFC 6901 pointer.
void AppendPointerToken(std::string_view token, std::string* pointer) {
  pointer->push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer->append("~0");
    } else if (c == '/') {
      pointer->append("~1");
    } else {
      pointer->push_back(c);
    }
  }
}

bool ValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

}  // namespace

std::string_view PathActionName(PathRule::Action action) {
  switch (action) {
    case PathRule::kMask:
      return "mask";
    case PathRule::kDrop:
      return "drop";
    case PathRule::kHash:
      return "hash";
  }
  return "mask";
}

// One Redact call: the planning walk (decides every change and its events without writing) and,
// only when something changed, the rendering walk. Both number nodes in the same pre-order and
// skip the inside of nodes a rule decided, so an edit is found again by its node number.
class JsonRedactorWalk {
 private:
  struct State {
    uint32_t rule;
    uint32_t step;
    // The rule's step `step` (what the next level must match), or null when the path ends here.
    const JsonRedactor::Step* next;
  };
  struct Edit {
    size_t node;
    bool drop;
    std::string text;  // the replacement string value when !drop
  };
  // One step of the path to a node: a member name (a view into the document) or an index.
  struct PathToken {
    std::string_view key;
    size_t index = 0;
    bool is_index = false;
  };

 public:
  // What a walk builds as it goes, kept per thread between calls so a warm walk allocates
  // nothing it does not hand back.
  struct Scratch {
    std::vector<State> states;  // a stack: each level's states follow its parent's
    // The path to the node being visited; turned into a pointer only for an event.
    std::vector<PathToken> path;
    std::vector<Edit> edits;  // in node order
    std::vector<Match> matches;
    std::vector<size_t> counts;
  };

  JsonRedactorWalk(const JsonRedactor& redactor, std::vector<RedactionEvent>* events,
                   Scratch* scratch)
      : r_(redactor),
        events_(events),
        states_(scratch->states),
        path_(scratch->path),
        edits_(scratch->edits),
        matches_(scratch->matches),
        counts_(scratch->counts) {
    states_.clear();
    path_.clear();
    edits_.clear();
  }

  void Plan(simdjson::dom::element root) {
    for (uint32_t rule = 0; rule < r_.rules_.size(); ++rule) {
      AddState(0, rule, 0);
    }
    Visit(root, 0, states_.size());
  }

  bool changed() const { return !edits_.empty(); }

  std::string Render(simdjson::dom::element root, size_t size_hint) {
    std::string out;
    out.reserve(size_hint);
    next_id_ = 0;
    next_edit_ = 0;
    Write(root, &out);
    return out;
  }

 private:
  using Step = JsonRedactor::Step;

  // The RFC 6901 pointer of the node being visited.
  std::string Pointer() const {
    std::string pointer;
    for (const PathToken& token : path_) {
      if (token.is_index) {
        absl::StrAppend(&pointer, "/", token.index);  // digits need no escaping
      } else {
        AppendPointerToken(token.key, &pointer);
      }
    }
    return pointer;
  }

  // Adds (rule, step) to the states from `level_begin` on, with its closure: a descend step may
  // also match nothing, so the step after it is active too.
  void AddState(size_t level_begin, uint32_t rule, uint32_t step) {
    for (size_t k = level_begin; k < states_.size(); ++k) {
      if (states_[k].rule == rule && states_[k].step == step) {
        return;
      }
    }
    const std::vector<Step>& steps = r_.rules_[rule].steps;
    const Step* next = step < steps.size() ? &steps[step] : nullptr;
    states_.push_back({rule, step, next});
    if (next != nullptr && next->type == Step::kDescend) {
      AddState(level_begin, rule, step + 1);
    }
  }

  // The states of a child (member `key`, or element `index` when key is null) from its parent's
  // states [begin, end), appended from states_.size() on.
  void Advance(size_t begin, size_t end, const std::string_view* key, size_t index) {
    const size_t level = states_.size();
    for (size_t k = begin; k < end; ++k) {
      State s = states_[k];
      if (s.next == nullptr) {
        continue;
      }
      const Step& step = *s.next;
      switch (step.type) {
        case Step::kKey:
          if (key != nullptr && *key == step.key) {
            AddState(level, s.rule, s.step + 1);
          }
          break;
        case Step::kIndex:
          if (key == nullptr && index == step.index) {
            AddState(level, s.rule, s.step + 1);
          }
          break;
        case Step::kAny:
          AddState(level, s.rule, s.step + 1);
          break;
        case Step::kDescend:
          AddState(level, s.rule, s.step);
          break;
      }
    }
  }

  // The first rule (configuration order) whose path ends at this node, or -1.
  int MatchedRule(size_t begin, size_t end) const {
    int best = -1;
    for (size_t k = begin; k < end; ++k) {
      const State& s = states_[k];
      if (s.next == nullptr && (best < 0 || s.rule < static_cast<uint32_t>(best))) {
        best = static_cast<int>(s.rule);
      }
    }
    return best;
  }

  void Visit(simdjson::dom::element el, size_t begin, size_t end) {
    const size_t id = next_id_++;
    if (int rule = MatchedRule(begin, end); rule >= 0) {
      Apply(r_.rules_[rule].rule, el, id);
      return;
    }
    switch (el.type()) {
      case simdjson::dom::element_type::OBJECT: {
        simdjson::dom::object obj;
        if (el.get_object().get(obj) != simdjson::SUCCESS) {
          return;
        }
        for (simdjson::dom::key_value_pair field : obj) {
          path_.push_back({.key = field.key});
          const size_t level = states_.size();
          Advance(begin, end, &field.key, 0);
          Visit(field.value, level, states_.size());
          states_.resize(level);
          path_.pop_back();
        }
        return;
      }
      case simdjson::dom::element_type::ARRAY: {
        simdjson::dom::array arr;
        if (el.get_array().get(arr) != simdjson::SUCCESS) {
          return;
        }
        size_t index = 0;
        for (simdjson::dom::element child : arr) {
          path_.push_back({.index = index, .is_index = true});
          const size_t level = states_.size();
          Advance(begin, end, nullptr, index);
          Visit(child, level, states_.size());
          states_.resize(level);
          path_.pop_back();
          ++index;
        }
        return;
      }
      case simdjson::dom::element_type::STRING: {
        std::string_view text;
        if (r_.detectors_.empty() || el.get_string().get(text) != simdjson::SUCCESS) {
          return;
        }
        matches_.clear();
        std::string redacted;
        if (!r_.detectors_.Redact(text, &redacted, &matches_)) {
          return;
        }
        edits_.push_back({id, false, std::move(redacted)});
        if (events_ == nullptr) {
          return;
        }
        counts_.assign(r_.detectors_.size(), 0);
        for (const Match& m : matches_) {
          ++counts_[m.detector];
        }
        for (size_t d = 0; d < counts_.size(); ++d) {
          if (counts_[d] != 0) {
            const DetectorSpec& spec = r_.detectors_.spec(d);
            events_->push_back({spec.id, Pointer(), "redact",
                                std::string(DetectorKindName(spec.kind)), counts_[d]});
          }
        }
        return;
      }
      default:
        return;
    }
  }

  void Apply(const PathRule& rule, simdjson::dom::element el, size_t id) {
    switch (rule.action) {
      case PathRule::kMask:
        edits_.push_back({id, false, rule.mask});
        break;
      case PathRule::kDrop:
        edits_.push_back({id, true, {}});
        break;
      case PathRule::kHash: {
        std::string_view text;
        std::string compact;
        if (el.get_string().get(text) != simdjson::SUCCESS) {
          compact = simdjson::minify(el);
          text = compact;
        }
        edits_.push_back({id, false, SaltedHash(r_.hash_salt_, text)});
        break;
      }
    }
    if (events_ != nullptr) {
      events_->push_back({rule.id, Pointer(), std::string(PathActionName(rule.action)), "", 1});
    }
  }

  // True (and the edit consumed) when the node about to be numbered next is dropped.
  bool SkipDropped() {
    if (next_edit_ < edits_.size() && edits_[next_edit_].node == next_id_ &&
        edits_[next_edit_].drop) {
      ++next_edit_;
      ++next_id_;
      return true;
    }
    return false;
  }

  void Write(simdjson::dom::element el, std::string* out) {
    const size_t id = next_id_++;
    if (next_edit_ < edits_.size() && edits_[next_edit_].node == id) {
      jsonrpc::AppendJsonString(edits_[next_edit_++].text, out);
      return;
    }
    switch (el.type()) {
      case simdjson::dom::element_type::OBJECT: {
        simdjson::dom::object obj = el.get_object().value_unsafe();
        out->push_back('{');
        bool first = true;
        for (simdjson::dom::key_value_pair field : obj) {
          if (SkipDropped()) {
            continue;
          }
          if (!first) {
            out->push_back(',');
          }
          first = false;
          jsonrpc::AppendJsonString(field.key, out);
          out->push_back(':');
          Write(field.value, out);
        }
        out->push_back('}');
        return;
      }
      case simdjson::dom::element_type::ARRAY: {
        simdjson::dom::array arr = el.get_array().value_unsafe();
        out->push_back('[');
        bool first = true;
        for (simdjson::dom::element child : arr) {
          if (SkipDropped()) {
            continue;
          }
          if (!first) {
            out->push_back(',');
          }
          first = false;
          Write(child, out);
        }
        out->push_back(']');
        return;
      }
      case simdjson::dom::element_type::STRING: {
        jsonrpc::AppendJsonString(el.get_string().value_unsafe(), out);
        return;
      }
      case simdjson::dom::element_type::INT64: {
        absl::StrAppend(out, el.get_int64().value_unsafe());
        return;
      }
      case simdjson::dom::element_type::UINT64: {
        absl::StrAppend(out, el.get_uint64().value_unsafe());
        return;
      }
      case simdjson::dom::element_type::DOUBLE:
        out->append(simdjson::minify(el));
        return;
      case simdjson::dom::element_type::BOOL:
        out->append(el.get_bool().value_unsafe() ? "true" : "false");
        return;
      case simdjson::dom::element_type::NULL_VALUE:
        out->append("null");
        return;
    }
  }

  const JsonRedactor& r_;
  std::vector<RedactionEvent>* events_;
  std::vector<State>& states_;
  std::vector<PathToken>& path_;
  std::vector<Edit>& edits_;
  std::vector<Match>& matches_;
  std::vector<size_t>& counts_;
  size_t next_id_ = 0;
  size_t next_edit_ = 0;
};

namespace {

absl::Status PathError(std::string_view id, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("redaction rule \"", Sv(id), "\": ", Sv(why)));
}

}  // namespace

absl::Status JsonRedactor::ParsePath(std::string_view id, std::string_view path,
                                     std::vector<Step>* steps) {
  if (path.empty() || path[0] != '$') {
    return PathError(id, "path must start with $");
  }
  size_t i = 1;
  auto name = [&]() -> absl::Status {
    if (i < path.size() && path[i] == '*') {
      steps->push_back({Step::kAny, {}});
      ++i;
      return absl::OkStatus();
    }
    size_t start = i;
    while (i < path.size() && path[i] != '.' && path[i] != '[' && path[i] != ']') {
      ++i;
    }
    if (i == start) {
      return PathError(id, absl::StrCat("empty member name at offset ", start));
    }
    steps->push_back({Step::kKey, std::string(path.substr(start, i - start))});
    return absl::OkStatus();
  };
  auto bracket = [&]() -> absl::Status {
    size_t start = i;
    ++i;  // '['
    if (i < path.size() && path[i] == '*') {
      ++i;
      steps->push_back({Step::kAny, {}});
    } else if (i < path.size() && (path[i] == '\'' || path[i] == '"')) {
      char quote = path[i++];
      size_t close = path.find(quote, i);
      if (close == std::string_view::npos) {
        return PathError(id, absl::StrCat("unterminated quoted member at offset ", start));
      }
      steps->push_back({Step::kKey, std::string(path.substr(i, close - i))});
      i = close + 1;
    } else {
      size_t index = 0;
      size_t digits = 0;
      constexpr size_t kMaxDigits = 9;
      while (i < path.size() && path[i] >= '0' && path[i] <= '9' && digits < kMaxDigits) {
        index = index * 10 + static_cast<size_t>(path[i] - '0');
        ++i;
        ++digits;
      }
      if (digits == 0) {
        return PathError(id,
                         absl::StrCat("expected *, an index or a quoted member at offset ", start));
      }
      steps->push_back({Step::kIndex, {}, index});
    }
    if (i >= path.size() || path[i] != ']') {
      return PathError(id, absl::StrCat("expected ] at offset ", i));
    }
    ++i;
    return absl::OkStatus();
  };
  while (i < path.size()) {
    if (path[i] == '[') {
      MCPMW_RETURN_IF_ERROR(bracket());
    } else if (path[i] == '.') {
      ++i;
      if (i < path.size() && path[i] == '.') {
        ++i;
        steps->push_back({Step::kDescend, {}});
        if (i < path.size() && path[i] == '[') {
          MCPMW_RETURN_IF_ERROR(bracket());
          continue;
        }
      }
      MCPMW_RETURN_IF_ERROR(name());
    } else {
      return PathError(id, absl::StrCat("unexpected character at offset ", i));
    }
  }
  if (steps->empty()) {
    return PathError(id, "path needs at least one step after $");
  }
  return absl::OkStatus();
}

absl::StatusOr<JsonRedactor> JsonRedactor::Create(std::vector<PathRule> rules,
                                                  DetectorSet detectors, std::string hash_salt) {
  JsonRedactor r;
  r.rules_.reserve(rules.size());
  for (PathRule& rule : rules) {
    if (rule.id.empty()) {
      rule.id = rule.path;
    }
    CompiledRule compiled;
    MCPMW_RETURN_IF_ERROR(ParsePath(rule.id, rule.path, &compiled.steps));
    if (rule.action == PathRule::kMask && !ValidUtf8(rule.mask)) {
      return PathError(rule.id, "mask is not valid UTF-8");
    }
    for (const Step& step : compiled.steps) {
      if (step.type == Step::kKey) {
        compiled.member_names.push_back(step.key);
      }
    }
    r.raw_decidable_ = r.raw_decidable_ && !compiled.member_names.empty();
    compiled.rule = std::move(rule);
    r.rules_.push_back(std::move(compiled));
  }
  for (size_t d = 0; d < detectors.size(); ++d) {
    if (!ValidUtf8(detectors.spec(d).replacement)) {
      return absl::InvalidArgumentError(
          absl::StrCat("detector \"", detectors.spec(d).id, "\": replacement is not valid UTF-8"));
    }
  }
  r.raw_decidable_ = r.raw_decidable_ && !detectors.has_custom();
  r.detectors_ = std::move(detectors);
  r.hash_salt_ = std::move(hash_salt);
  return r;
}

bool JsonRedactor::LeavesUnchanged(std::string_view text) const {
  if (!raw_decidable_ || text.find('\\') != std::string_view::npos) {
    return false;
  }
  for (const CompiledRule& compiled : rules_) {
    // The name's rarer letters lead the search better than the quote before it.
    if (std::none_of(compiled.member_names.begin(), compiled.member_names.end(),
                     [text](const std::string& name) {
                       return text.find(name) == std::string_view::npos;
                     })) {
      return false;  // every member the rule names is there
    }
  }
  return !detectors_.FindsAny(text);
}

absl::StatusOr<std::optional<std::string>> JsonRedactor::Redact(
    std::string_view json, std::vector<RedactionEvent>* events) const {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (simdjson::error_code error = parser.parse(json.data(), json.size()).get(root);
      error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("redaction: not a valid JSON document: ", simdjson::error_message(error)));
  }
  return RedactParsed(root, events, json.size());
}

std::optional<std::string> JsonRedactor::RedactParsed(simdjson::dom::element root,
                                                      std::vector<RedactionEvent>* events,
                                                      size_t size_hint) const {
  if (rules_.empty() && detectors_.empty()) {
    return std::nullopt;
  }
  thread_local JsonRedactorWalk::Scratch scratch;
  JsonRedactorWalk walk(*this, events, &scratch);
  walk.Plan(root);
  if (!walk.changed()) {
    return std::nullopt;
  }
  return walk.Render(root, size_hint);
}

}  // namespace mcpmw::redaction
