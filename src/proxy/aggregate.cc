#include "src/proxy/aggregate.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/sha256.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::proxy {
namespace {

namespace od = simdjson::ondemand;

// Where the readable part of a shortened name ends: 55 + '_' + 8 hex digits = 64.
constexpr size_t kShortPrefixLength = kMaxAggregatedToolNameLength - 1 - kToolNameHashChars;
constexpr size_t kMaxServerNameLength = 32;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Appends `in` with every byte outside the tool-name charset replaced by '_'; false when it
// replaced anything.
bool AppendSanitized(std::string_view in, std::string* out) {
  bool clean = true;
  for (char c : in) {
    if (IsToolNameChar(c)) {
      out->push_back(c);
    } else {
      out->push_back('_');
      clean = false;
    }
  }
  return clean;
}

// A location inside a padded copy of the input, as offsets into the original bytes.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

Span SpanOf(std::string_view token, const simdjson::padded_string& doc) {
  auto begin = static_cast<size_t>(token.data() - doc.data());
  return {begin, begin + token.size()};
}

// Finds the `name` member of the object `obj`: its raw token (quotes included) and unescaped
// value. Returns the number of `name` members seen (0, 1 or more); `*is_string` tells whether
// the first one was a string.
simdjson::error_code FindName(od::object obj, const simdjson::padded_string& doc, Span* span,
                              std::string* value, bool* is_string, int* count) {
  *count = 0;
  *is_string = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key); error != simdjson::SUCCESS) {
      return error;
    }
    if (key != "name") {
      continue;  // the value is skipped by the iterator
    }
    ++*count;
    if (*count > 1) {
      continue;
    }
    od::value v;
    if (auto error = field.value().get(v); error != simdjson::SUCCESS) {
      return error;
    }
    od::json_type type;
    if (auto error = v.type().get(type); error != simdjson::SUCCESS) {
      return error;
    }
    if (type != od::json_type::string) {
      continue;
    }
    std::string_view token = TrimRight(v.raw_json_token());
    std::string_view unescaped;
    if (auto error = v.get_string().get(unescaped); error != simdjson::SUCCESS) {
      return error;
    }
    *is_string = true;
    *span = SpanOf(token, doc);
    value->assign(unescaped);
  }
  return simdjson::SUCCESS;
}

}  // namespace

bool IsToolNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool IsNamespaceSafeServerName(std::string_view server) {
  if (server.empty() || server.size() > kMaxServerNameLength || server.back() == '_' ||
      server.find("__") != std::string_view::npos) {
    return false;
  }
  for (char c : server) {
    if (!IsToolNameChar(c)) {
      return false;
    }
  }
  return true;
}

std::string NamespacedToolName(std::string_view server, std::string_view tool) {
  std::string name;
  name.reserve(server.size() + 2 + tool.size());
  bool clean = AppendSanitized(server, &name);
  name.append("__");
  clean = AppendSanitized(tool, &name) && clean;
  if (clean && !server.empty() && !tool.empty() && name.size() <= kMaxAggregatedToolNameLength) {
    return name;
  }
  std::string digest = Sha256Hex({server, std::string_view("\0", 1), tool});
  // Sha256Hex is empty only when OpenSSL has no SHA-256 at all; the zero suffix then makes
  // shortened names collide visibly (ToolDirectory reports it) instead of being fragile.
  digest.resize(kToolNameHashChars, '0');
  if (name.size() > kShortPrefixLength) {
    name.resize(kShortPrefixLength);
  }
  name.push_back('_');
  name.append(digest, 0, kToolNameHashChars);
  return name;
}

absl::StatusOr<ToolDirectory::PageInfo> ToolDirectory::Add(
    std::string_view server, std::string_view tools_list_result_json) {
  auto bad = [server](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("tools/list result of server \"", Sv(server), "\": ", Sv(what)));
  };
  // On-Demand skips what it is not asked for without validating it; the DOM pass first makes
  // sure every byte copied into the merged list is valid JSON.
  simdjson::padded_string doc_bytes(tools_list_result_json);
  if (validator_.parse(doc_bytes).error() != simdjson::SUCCESS) {
    return bad("not valid JSON");
  }
  od::document doc;
  od::object top;
  if (page_parser_.iterate(doc_bytes).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(top) != simdjson::SUCCESS) {
    return bad("not a JSON object");
  }
  PageInfo info;
  std::vector<std::string_view> tool_objects;
  bool saw_tools = false;
  size_t index = 0;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return bad("malformed member name");
    }
    if (key == "tools") {
      if (saw_tools) {
        return bad("`tools` appears more than once");
      }
      saw_tools = true;
      od::array tools;
      if (field.value().get_array().get(tools) != simdjson::SUCCESS) {
        return bad("`tools` is not an array");
      }
      for (auto element : tools) {
        od::value v;
        od::json_type type;
        if (element.get(v) != simdjson::SUCCESS || v.type().get(type) != simdjson::SUCCESS) {
          return bad("malformed `tools` array");
        }
        if (type != od::json_type::object) {
          tool_objects.emplace_back();  // reported below, in list order
          ++index;
          continue;
        }
        od::object obj;
        std::string_view raw;
        if (v.get_object().get(obj) != simdjson::SUCCESS ||
            obj.raw_json().get(raw) != simdjson::SUCCESS) {
          return bad("malformed tool object");
        }
        tool_objects.push_back(TrimRight(raw));
        ++index;
      }
    } else if (key == "nextCursor") {
      std::string_view cursor;
      if (field.value().get_string().get(cursor) == simdjson::SUCCESS) {
        info.next_cursor.emplace(cursor);
      }
    }
  }
  if (!saw_tools) {
    return bad("no `tools` array");
  }
  size_t before = tools_.size();
  for (size_t i = 0; i < tool_objects.size(); ++i) {
    if (tool_objects[i].empty()) {
      warnings_.push_back(
          {std::string(server), "", absl::StrCat("tools[", i, "] is not an object")});
      continue;
    }
    AddTool(server, tool_objects[i], i);
  }
  info.tools_added = tools_.size() - before;
  return info;
}

void ToolDirectory::AddTool(std::string_view server, std::string_view tool_json, size_t index) {
  auto warn = [&](std::string tool, std::string message) {
    warnings_.push_back({std::string(server), std::move(tool), std::move(message)});
  };
  simdjson::padded_string bytes(tool_json);
  od::document doc;
  od::object obj;
  Span span;
  std::string original;
  bool is_string = false;
  int count = 0;
  if (tool_parser_.iterate(bytes).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS ||
      FindName(obj, bytes, &span, &original, &is_string, &count) != simdjson::SUCCESS) {
    warn("", absl::StrCat("tools[", index, "] could not be read"));
    return;
  }
  if (count == 0 || !is_string) {
    warn("", absl::StrCat("tools[", index, "] has no string `name`"));
    return;
  }
  if (count > 1) {
    warn(original, absl::StrCat("tools[", index, "] has `name` more than once"));
    return;
  }
  std::string name = NamespacedToolName(server, original);
  ToolTarget target{std::string(server), original};
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    const ToolTarget& holder = tools_[it->second].target;
    warn(original, holder == target
                       ? std::string("listed more than once; the first definition is kept")
                       : absl::StrCat("its name \"", name, "\" is already used by tool \"",
                                      holder.tool, "\" of server \"", holder.server, "\""));
    return;
  }
  std::string json;
  json.reserve(tool_json.size() + name.size());
  json.append(tool_json.substr(0, span.begin));
  jsonrpc::AppendJsonString(name, &json);
  json.append(tool_json.substr(span.end));
  by_name_.emplace(name, tools_.size());
  tools_.push_back({std::move(name), std::move(target), std::move(json)});
}

std::string ToolDirectory::MergedResult(std::string_view extra_members) const {
  size_t total = 16 + extra_members.size();
  for (const Entry& e : tools_) {
    total += e.json.size() + 1;
  }
  std::string out;
  out.reserve(total);
  out.append("{\"tools\":[");
  for (size_t i = 0; i < tools_.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    out.append(tools_[i].json);
  }
  out.push_back(']');
  if (!extra_members.empty()) {
    out.push_back(',');
    out.append(extra_members);
  }
  out.push_back('}');
  return out;
}

std::optional<ToolTarget> ToolDirectory::Resolve(std::string_view namespaced_name) const {
  auto it = by_name_.find(Sv(namespaced_name));
  if (it == by_name_.end()) {
    return std::nullopt;
  }
  return tools_[it->second].target;
}

absl::StatusOr<std::string> RewriteToolCallName(std::string_view request_json,
                                                std::string_view new_name) {
  simdjson::padded_string bytes(request_json);
  // One parser per thread, reused (it keeps its buffers between messages).
  thread_local od::parser parser;
  od::document doc;
  od::object top;
  if (parser.iterate(bytes).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(top) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("cannot rename the tool: the request is not a JSON object");
  }
  int params_count = 0;
  int name_count = 0;
  bool is_string = false;
  Span span;
  std::string ignored;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("cannot rename the tool: the request is malformed JSON");
    }
    if (key != "params") {
      continue;
    }
    if (++params_count > 1) {
      continue;
    }
    od::object params;
    if (field.value().get_object().get(params) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("cannot rename the tool: `params` is not an object");
    }
    if (FindName(params, bytes, &span, &ignored, &is_string, &name_count) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("cannot rename the tool: `params` is malformed JSON");
    }
  }
  // Past the last token, current_location() reports OUT_OF_BOUNDS: nothing follows the object.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return absl::InvalidArgumentError("cannot rename the tool: bytes follow the request object");
  }
  if (params_count != 1) {
    return absl::InvalidArgumentError(params_count == 0
                                          ? "cannot rename the tool: the request has no `params`"
                                          : "cannot rename the tool: `params` appears twice");
  }
  if (name_count != 1 || !is_string) {
    return absl::InvalidArgumentError(
        name_count > 1 ? "cannot rename the tool: `params.name` appears twice"
                       : "cannot rename the tool: `params.name` is missing or not a string");
  }
  std::string out;
  out.reserve(request_json.size() + new_name.size());
  out.append(request_json.substr(0, span.begin));
  jsonrpc::AppendJsonString(new_name, &out);
  out.append(request_json.substr(span.end));
  return out;
}

}  // namespace mcpmw::proxy
