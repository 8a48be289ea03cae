// A small, real MCP-ish server process for sidecar tests: newline-delimited JSON-RPC on stdio.
//
//   initialize      → a fixed result; counts how many it has seen
//   echo {text}     → {"text": text}
//   stats           → {"initializations": N, "pid": P}
//   crash           → exits with status 1 without answering
//   ask             → sends the client a sampling/createMessage request (id "srv-1") and answers
//                     the original request with the client's result once it arrives
//                     ({"sampled": result}), or with {"clientError": error} when the answer to
//                     "srv-1" is an error
//   batch-answer    → answers inside a one-member JSON-RPC batch: [{"id":…,"result":{…}}]
//   close-stdout    → closes its stdout and keeps reading stdin (exits 0 at EOF)
//   hang            → never answers, until a notifications/cancelled names it: then answers it
//                     anyway ({"late":true}), as a server that ignores cancellation would
//   progress {count, interval_ms} → sends `count` notifications/progress for the request's
//                     params._meta.progressToken, `interval_ms` apart, then answers {"done":true}
//   cancellations   → {"cancelled": [the params of every notifications/cancelled received]}
//   tools/list      → the tools below (FAKE_TOOL_PAGES=N: N pages, see the handler;
//                     FAKE_HANG_TOOLS_LIST=1: never answers it, like `hang`)
//   tools/call      → by params.name: `echo` {text} answers a text content holding `text`;
//                     `slow` {ms} answers "slept <ms>" after `ms` milliseconds; any other name
//                     is an -32602 error naming the tool
// FAKE_IGNORE_TERM=1: ignores SIGTERM and stdin EOF (waits to be killed).
// FAKE_INIT_ONCE=<path>: answers initialize only if <path> does not exist yet (and creates it),
//   so a restarted server stays silent on the replayed initialize.
// FAKE_CAPABILITIES=<json object>: the `capabilities` of the initialize result (default {}).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>

#include "simdjson.h"

namespace {

void Send(const std::string& line) {
  std::string out = line + "\n";
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(STDOUT_FILENO, out.data() + off, out.size() - off);
    if (n <= 0) {
      std::exit(2);
    }
    off += static_cast<size_t>(n);
  }
}

std::string Raw(simdjson::dom::element e) { return simdjson::minify(e); }

}  // namespace

int main() {
  bool ignore_term = std::getenv("FAKE_IGNORE_TERM") != nullptr;
  if (ignore_term) {
    ::signal(SIGTERM, SIG_IGN);
  }
  int initializations = 0;
  std::string pending_ask_id;
  std::set<std::string> hung_ids;
  std::string cancellations;  // the params of each notifications/cancelled, comma-separated
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(std::cin, line)) {
    simdjson::dom::element msg;
    if (parser.parse(line).get(msg) != simdjson::SUCCESS) {
      continue;
    }
    simdjson::dom::element id;
    bool has_id = msg["id"].get(id) == simdjson::SUCCESS;
    std::string_view method;
    if (msg["method"].get(method) != simdjson::SUCCESS) {
      // A response from the client: the answer to our "ask".
      simdjson::dom::element result;
      simdjson::dom::element error;
      if (has_id && Raw(id) == "\"srv-1\"" && msg["result"].get(result) == simdjson::SUCCESS) {
        Send(R"({"jsonrpc":"2.0","id":)" + pending_ask_id + R"(,"result":{"sampled":)" +
             Raw(result) + "}}");
      } else if (has_id && Raw(id) == "\"srv-1\"" && msg["error"].get(error) == simdjson::SUCCESS) {
        Send(R"({"jsonrpc":"2.0","id":)" + pending_ask_id + R"(,"result":{"clientError":)" +
             Raw(error) + "}}");
      }
      continue;
    }
    if (!has_id) {
      simdjson::dom::element params;
      if (method == "notifications/cancelled" && msg["params"].get(params) == simdjson::SUCCESS) {
        cancellations += (cancellations.empty() ? "" : ",") + Raw(params);
        simdjson::dom::element request_id;
        if (params["requestId"].get(request_id) == simdjson::SUCCESS &&
            hung_ids.erase(Raw(request_id)) > 0) {
          Send(R"({"jsonrpc":"2.0","id":)" + Raw(request_id) + R"(,"result":{"late":true}})");
        }
      }
      continue;  // notifications need no answer
    }
    std::string rid = Raw(id);
    if (method == "initialize") {
      if (const char* once = std::getenv("FAKE_INIT_ONCE"); once != nullptr) {
        int fd = ::open(once, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
          continue;  // not the first process: stay silent
        }
        ::close(fd);
      }
      ++initializations;
      const char* capabilities = std::getenv("FAKE_CAPABILITIES");
      Send(R"({"jsonrpc":"2.0","id":)" + rid +
           R"(,"result":{"protocolVersion":"2025-06-18","capabilities":)" +
           (capabilities != nullptr ? capabilities : "{}") +
           R"(,"serverInfo":{"name":"fake","version":"1"}}})");
    } else if (method == "echo") {
      std::string_view text;
      if (msg["params"]["text"].get(text) != simdjson::SUCCESS) {
        text = "";
      }
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"text":")" + std::string(text) +
           "\"}}");
    } else if (method == "stats") {
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"initializations":)" +
           std::to_string(initializations) + R"(,"pid":)" + std::to_string(::getpid()) + "}}");
    } else if (method == "close-stdout") {
      ::close(STDOUT_FILENO);
    } else if (method == "hang") {
      hung_ids.insert(rid);
    } else if (method == "progress") {
      int64_t count = 0;
      int64_t interval_ms = 0;
      simdjson::dom::element token;
      if (msg["params"]["count"].get(count) != simdjson::SUCCESS ||
          msg["params"]["interval_ms"].get(interval_ms) != simdjson::SUCCESS ||
          msg["params"]["_meta"]["progressToken"].get(token) != simdjson::SUCCESS) {
        Send(
            R"({"jsonrpc":"2.0","id":)" + rid +
            R"(,"error":{"code":-32602,"message":"progress needs count, interval_ms and a progressToken"}})");
        continue;
      }
      for (int64_t i = 1; i <= count; ++i) {
        ::usleep(static_cast<useconds_t>(interval_ms * 1000));
        Send(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":)" +
             Raw(token) + R"(,"progress":)" + std::to_string(i) + "}}");
      }
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"done":true}})");
    } else if (method == "tools/list" && std::getenv("FAKE_HANG_TOOLS_LIST") != nullptr) {
      hung_ids.insert(rid);
    } else if (method == "tools/list") {
      // Page 1 is echo and slow; page k > 1 (cursor "page-k") is one tool, "page<k>_tool".
      int64_t pages = 1;
      if (const char* p = std::getenv("FAKE_TOOL_PAGES"); p != nullptr) {
        pages = std::max<int64_t>(1, std::atoll(p));
      }
      int64_t page = 1;
      std::string_view cursor;
      if (msg["params"]["cursor"].get(cursor) == simdjson::SUCCESS && cursor.starts_with("page-")) {
        page = std::atoll(std::string(cursor.substr(5)).c_str());
      }
      std::string tools = page <= 1 ? R"({"name":"echo","inputSchema":{"type":"object"}},)"
                                      R"({"name":"slow","inputSchema":{"type":"object"}})"
                                    : R"({"name":"page)" + std::to_string(page) +
                                          R"(_tool","inputSchema":{"type":"object"}})";
      std::string next =
          page < pages ? R"(,"nextCursor":"page-)" + std::to_string(page + 1) + "\"" : "";
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"tools":[)" + tools + "]" + next +
           "}}");
    } else if (method == "tools/call") {
      std::string_view tool;
      if (msg["params"]["name"].get(tool) != simdjson::SUCCESS) {
        tool = "";
      }
      std::string text;
      if (tool == "echo") {
        std::string_view arg;
        text = msg["params"]["arguments"]["text"].get(arg) == simdjson::SUCCESS ? std::string(arg)
                                                                                : "";
      } else if (tool == "slow") {
        int64_t ms = 0;
        if (msg["params"]["arguments"]["ms"].get(ms) != simdjson::SUCCESS || ms < 0) {
          ms = 0;
        }
        ::usleep(static_cast<useconds_t>(ms * 1000));
        text = "slept " + std::to_string(ms);
      } else {
        Send(R"({"jsonrpc":"2.0","id":)" + rid +
             R"(,"error":{"code":-32602,"message":"Unknown tool: )" + std::string(tool) + "\"}}");
        continue;
      }
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"content":[{"type":"text","text":")" +
           text + R"("}]}})");
    } else if (method == "cancellations") {
      Send(R"({"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"cancelled":[)" + cancellations +
           "]}}");
    } else if (method == "batch-answer") {
      Send(R"([{"jsonrpc":"2.0","id":)" + rid + R"(,"result":{"text":"in a batch"}}])");
    } else if (method == "crash") {
      std::_Exit(1);
    } else if (method == "ask") {
      pending_ask_id = rid;
      Send(R"({"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{}})");
    } else {
      Send(R"({"jsonrpc":"2.0","id":)" + rid +
           R"(,"error":{"code":-32601,"message":"Method not found"}})");
    }
  }
  if (ignore_term) {
    while (true) {
      ::pause();
    }
  }
  return 0;
}
