#include "src/middleware/message_edit.h"

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::middleware {
namespace {

absl::StatusOr<std::optional<std::string_view>> Find(simdjson::ondemand::parser& parser,
                                                     simdjson::padded_string_view view,
                                                     std::initializer_list<std::string_view> path) {
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(view).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("the message is not a JSON object");
  }
  size_t depth = 0;
  for (std::string_view name : path) {
    ++depth;
    simdjson::ondemand::value value;
    if (obj.find_field_unordered(name).get(value) != simdjson::SUCCESS) {
      return std::optional<std::string_view>();
    }
    if (depth == path.size()) {
      simdjson::ondemand::json_type type;
      if (value.type().get(type) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("the message is not valid JSON");
      }
      std::string_view raw;
      simdjson::error_code err = simdjson::SUCCESS;
      if (type == simdjson::ondemand::json_type::object) {
        simdjson::ondemand::object o;
        err = value.get_object().get(o);
        if (!err) {
          err = o.raw_json().get(raw);
        }
      } else if (type == simdjson::ondemand::json_type::array) {
        simdjson::ondemand::array a;
        err = value.get_array().get(a);
        if (!err) {
          err = a.raw_json().get(raw);
        }
      } else {
        raw = value.raw_json_token();
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' ||
                                raw.back() == '\t')) {
          raw.remove_suffix(1);
        }
      }
      if (err != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("the message is not valid JSON");
      }
      return std::optional<std::string_view>(raw);
    }
    if (value.get_object().get(obj) != simdjson::SUCCESS) {
      return std::optional<std::string_view>();
    }
  }
  return std::optional<std::string_view>();
}

}  // namespace

absl::StatusOr<std::optional<std::string_view>> FindMember(
    std::string_view json, std::initializer_list<std::string_view> path, bool padded) {
  thread_local simdjson::ondemand::parser parser;
  if (padded) {
    return Find(parser,
                simdjson::padded_string_view(json.data(), json.size(),
                                             json.size() + simdjson::SIMDJSON_PADDING),
                path);
  }
  // A padded copy; views into it are translated back to `json`.
  simdjson::padded_string copy(json);
  absl::StatusOr<std::optional<std::string_view>> found = Find(parser, copy, path);
  if (!found.ok() || !found->has_value()) {
    return found;
  }
  size_t offset = (*found)->data() - copy.data();
  return std::optional<std::string_view>(json.substr(offset, (*found)->size()));
}

std::string Splice(std::string_view json, std::string_view part, std::string_view replacement) {
  size_t begin = part.data() - json.data();
  std::string out;
  out.reserve(json.size() - part.size() + replacement.size());
  out.append(json.substr(0, begin));
  out.append(replacement);
  out.append(json.substr(begin + part.size()));
  return out;
}

std::string ErrorData(std::string_view stage, std::string_view reason_code,
                      std::string_view decision_id, std::string_view rule_id,
                      std::optional<uint64_t> retry_after_ms) {
  std::string out = "{\"stage\":";
  jsonrpc::AppendJsonString(stage, &out);
  out += ",\"reasonCode\":";
  jsonrpc::AppendJsonString(reason_code, &out);
  out += ",\"decisionId\":";
  jsonrpc::AppendJsonString(decision_id, &out);
  if (!rule_id.empty()) {
    out += ",\"ruleId\":";
    jsonrpc::AppendJsonString(rule_id, &out);
  }
  if (retry_after_ms) {
    absl::StrAppend(&out, ",\"retryAfterMs\":", *retry_after_ms);
  }
  out += '}';
  return out;
}

Verdict Deny(MessageContext& ctx, std::string_view stage, int code, std::string message,
             std::string_view reason_code, std::string_view rule_id,
             std::optional<uint64_t> retry_after_ms) {
  std::string id = ctx.DecisionId(stage);
  std::string data = ErrorData(stage, reason_code, id, rule_id, retry_after_ms);
  ctx.decisions.push_back(
      {.stage = stage, .status = "deny", .reason_code = std::string(reason_code)});
  return Verdict::Reject(code, std::move(message), std::move(data));
}

}  // namespace mcpmw::middleware
