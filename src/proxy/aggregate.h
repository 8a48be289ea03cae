// mcpmw proxy: one tool namespace over several upstream servers (the gateway's `/mcp` endpoint).
//
//   tools/list of each server ─► ToolDirectory::Add ─► MergedResult() ─► client
//   client tools/call "echo__say" ─► Resolve ─► ("echo", "say") ─► RewriteToolCallName ─► echo
//
// The aggregated endpoint shows the client every tool of every upstream it may see, each under a
// name that says which server it belongs to, and sends each tools/call back to that server under
// the tool's original name. Everything here is pure (no I/O, no clock) and deterministic: the
// same upstream lists give the same names, byte for byte, on every run and every machine, so a
// client that cached a tool name keeps reaching the same tool across gateway restarts.
//
// Naming rule (NamespacedToolName), with charset C = [A-Za-z0-9_.-], the characters the MCP
// specification (2025-11-25, server/tools, "Tool Names") allows in a tool name:
//   1. readable = S(server) + "__" + S(tool), where S replaces every byte outside C by '_'
//      (a multi-byte UTF-8 character becomes one '_' per byte).
//   2. If server and tool are both non-empty, S changed nothing, and readable has at most 64
//      characters, the name is `readable`.
//   3. Otherwise the name is the first min(55, |readable|) characters of `readable`, then '_',
//      then the first 8 lowercase hex digits of SHA-256(server + "\0" + tool) over the original
//      bytes. That is at most 64 characters, always within C. ('~' would mark the short form
//      more visibly but is outside C, so the separator is '_'.)
// Two different pairs with the same readable prefix differ in the hash (2^-32 for a given pair).
// When every server name satisfies IsNamespaceSafeServerName(), names of different servers can
// never be equal (the first "__" of any name ends the server's name), so no upstream can choose
// a tool name that shadows another server's tool; collisions are then only possible within one
// server and ToolDirectory reports them.
//
// The 64-character cap is tighter than the specification's SHOULD of 128: common model APIs
// refuse function names over 64 characters.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "simdjson.h"

namespace mcpmw::proxy {

inline constexpr size_t kMaxAggregatedToolNameLength = 64;
// Hex digits of the SHA-256 suffix in a shortened name.
inline constexpr size_t kToolNameHashChars = 8;

// True when `c` may appear in a tool name (A-Z a-z 0-9 _ . -).
bool IsToolNameChar(char c);

// True for a server name that keeps namespaced names unambiguous: 1 to 32 characters, all
// IsToolNameChar, no "__" anywhere and no trailing '_'. The config loader should refuse other
// names for servers that take part in aggregation.
bool IsNamespaceSafeServerName(std::string_view server);

// The name the aggregated endpoint shows for tool `tool` of server `server`, by the rule in the
// banner. Always 1..64 characters from [A-Za-z0-9_.-]. Thread-safe.
std::string NamespacedToolName(std::string_view server, std::string_view tool);

// Where a namespaced tool lives.
struct ToolTarget {
  std::string server;
  std::string tool;  // the original name, unescaped, as the server listed it

  friend bool operator==(const ToolTarget&, const ToolTarget&) = default;
};

// A tool left out of the merged list, and why. The gateway logs these and counts them.
struct ToolDirectoryWarning {
  std::string server;
  std::string tool;  // the original name when known, else empty
  std::string message;
};

// The merged tools/list of several servers. Build it with Add (one call per page of each
// server), then serve MergedResult() and Resolve() from it; rebuild it to refresh (after a
// notifications/tools/list_changed). Add is single-threaded; once built, the const methods may
// be called from any number of threads.
//
// Pagination: only the pages given are merged, and the merged result never carries a
// `nextCursor`. The gateway fetches every page of every server (following the `next_cursor`
// Add returns) before it answers the client, so the client sees one complete list.
class ToolDirectory {
 public:
  struct PageInfo {
    size_t tools_added = 0;
    // The page's `nextCursor`: the gateway asks the server for the page after it.
    std::optional<std::string> next_cursor;
  };

  // Adds one page: `tools_list_result_json` is the `result` object of a tools/list response of
  // server `server`. Every tool object is kept byte for byte except its `name` value, which
  // becomes the namespaced name. A tool is dropped, with a warning, when it is not an object,
  // has no string `name`, has `name` more than once, or when its namespaced name is already
  // taken (by the same tool listed again, or by another pair mapping to the same name): the
  // first one added keeps the name. InvalidArgument, adding nothing, when the result is not
  // valid JSON, not an object, or has no `tools` array.
  absl::StatusOr<PageInfo> Add(std::string_view server, std::string_view tools_list_result_json);

  // The merged `result` object for the client: {"tools":[…]} with the tools in the order they
  // were added. `extra_members`, when not empty, is appended inside the object after a comma
  // (for example `"resultType":"complete","ttlMs":0,"cacheScope":"private"` for 2026-07-28
  // clients); it must be valid JSON members.
  std::string MergedResult(std::string_view extra_members = {}) const;

  // The server and original tool name behind a namespaced name; nullopt for a name this
  // directory did not hand out.
  std::optional<ToolTarget> Resolve(std::string_view namespaced_name) const;

  size_t size() const { return tools_.size(); }
  const std::vector<ToolDirectoryWarning>& warnings() const { return warnings_; }

 private:
  struct Entry {
    std::string name;
    ToolTarget target;
    std::string json;  // the tool object with the namespaced name
  };

  // Adds one tool object (its raw bytes), or records why not.
  void AddTool(std::string_view server, std::string_view tool_json, size_t index);

  std::vector<Entry> tools_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  std::vector<ToolDirectoryWarning> warnings_;
  simdjson::dom::parser validator_;
  simdjson::ondemand::parser page_parser_;
  simdjson::ondemand::parser tool_parser_;
};

// `request_json` (a JSON-RPC request, normally tools/call) with the value of `params.name`
// replaced by the JSON string `new_name`; every other byte is unchanged. Only the `name` member
// of the top-level `params` object counts: a "name" inside another string, inside
// `params.arguments` or anywhere else is left alone, and keys written with escapes
// ("na\u006de") are recognised. InvalidArgument when the request is not a JSON object, has no
// `params` object, has `params` or `params.name` more than once (a receiver could read either),
// or `params.name` is not a string.
absl::StatusOr<std::string> RewriteToolCallName(std::string_view request_json,
                                                std::string_view new_name);

}  // namespace mcpmw::proxy
