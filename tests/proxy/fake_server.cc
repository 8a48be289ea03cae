// A small, real MCP-ish server process for sidecar tests: newline-delimited JSON-RPC on stdio.
//
//   initialize      → a fixed result; counts how many it has seen
//   echo {text}     → {"text": text}
//   stats           → {"initializations": N, "pid": P}
//   crash           → exits with status 1 without answering
//   ask             → sends the client a sampling/createMessage request (id "srv-1") and answers
//                     the original request with the client's result once it arrives
//   close-stdout    → closes its stdout and keeps reading stdin (exits 0 at EOF)
// FAKE_IGNORE_TERM=1: ignores SIGTERM and stdin EOF (waits to be killed).
// FAKE_INIT_ONCE=<path>: answers initialize only if <path> does not exist yet (and creates it),
//   so a restarted server stays silent on the replayed initialize.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
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
      if (has_id && Raw(id) == "\"srv-1\"" && msg["result"].get(result) == simdjson::SUCCESS) {
        Send(R"({"jsonrpc":"2.0","id":)" + pending_ask_id + R"(,"result":{"sampled":)" +
             Raw(result) + "}}");
      }
      continue;
    }
    if (!has_id) {
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
      Send(
          R"({"jsonrpc":"2.0","id":)" + rid +
          R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}})");
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
