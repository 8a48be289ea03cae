// A stand-in MCP server for the pool manager's tests: newline-delimited JSON-RPC on stdio.
//
// Answers `ping` ({}) and `initialize` (a fixed result naming its pid), and `debug/env` with its
// environment and working directory. Flags:
//   --starts FILE          append "<pid>\n" to FILE at start (counts and identifies starts)
//   --log FILE             append "<pid> <method>\n" to FILE for every message with a method
//   --fail-if-exists FILE  exit at once with code 3 while FILE exists (a server that cannot start)
//   --answer-pings N       answer the first N pings, then ignore pings (a hung server)
//   --stderr TEXT          write "TEXT\n" to stderr at start
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <string_view>

#include "simdjson.h"

extern char** environ;

namespace {

void AppendLine(const char* path, const std::string& line) {
  if (path == nullptr) {
    return;
  }
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return;
  }
  std::string out = line + "\n";
  ssize_t ignored = ::write(fd, out.data(), out.size());
  (void)ignored;
  ::close(fd);
}

// A JSON string literal for `s` (enough for environment entries and paths).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void Reply(std::string_view id_json, const std::string& result) {
  std::string out =
      R"({"jsonrpc":"2.0","id":)" + std::string(id_json) + R"(,"result":)" + result + "}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const char* starts = nullptr;
  const char* log = nullptr;
  const char* fail_if_exists = nullptr;
  const char* stderr_text = nullptr;
  long answer_pings = std::numeric_limits<long>::max();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--starts") {
      starts = argv[i + 1];
    } else if (flag == "--log") {
      log = argv[i + 1];
    } else if (flag == "--fail-if-exists") {
      fail_if_exists = argv[i + 1];
    } else if (flag == "--answer-pings") {
      answer_pings = std::strtol(argv[i + 1], nullptr, 10);
    } else if (flag == "--stderr") {
      stderr_text = argv[i + 1];
    } else {
      std::fprintf(stderr, "fake_mcp_server: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (fail_if_exists != nullptr && ::access(fail_if_exists, F_OK) == 0) {
    std::fprintf(stderr, "fake_mcp_server: %s exists; failing on purpose\n", fail_if_exists);
    return 3;
  }
  const std::string pid = std::to_string(::getpid());
  AppendLine(starts, pid);
  if (stderr_text != nullptr) {
    std::fprintf(stderr, "%s\n", stderr_text);
    std::fflush(stderr);
  }

  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(std::cin, line)) {
    simdjson::dom::element doc;
    if (parser.parse(line).get(doc) != simdjson::SUCCESS) {
      continue;
    }
    std::string_view method;
    if (doc["method"].get_string().get(method) != simdjson::SUCCESS) {
      continue;
    }
    AppendLine(log, pid + " " + std::string(method));
    simdjson::dom::element id;
    if (doc["id"].get(id) != simdjson::SUCCESS) {
      continue;  // a notification
    }
    const std::string id_json = simdjson::minify(id);
    if (method == "ping") {
      if (answer_pings > 0) {
        --answer_pings;
        Reply(id_json, "{}");
      }
    } else if (method == "initialize") {
      Reply(id_json, R"({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},)"
                     R"("serverInfo":{"name":"fake-mcp","version":")" +
                         pid + R"("}})");
    } else if (method == "debug/env") {
      std::string env = "[";
      for (char** e = environ; *e != nullptr; ++e) {
        if (env.size() > 1) {
          env += ',';
        }
        env += Quote(*e);
      }
      char cwd[4096] = {};
      const char* got = ::getcwd(cwd, sizeof(cwd));
      Reply(id_json, "{\"env\":" + env + "],\"cwd\":" + Quote(got != nullptr ? got : "") + "}");
    }
  }
  return 0;
}
