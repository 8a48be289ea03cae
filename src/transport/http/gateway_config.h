// mcpmw transport/http: the configuration of `mcpmw serve` (the shared gateway).
//
// One JSON file (every key but "servers" optional; unknown keys are errors; each error starts
// with the JSON pointer of the bad value):
//
//   {
//     "listen": {"address": "127.0.0.1", "port": 8080},     // loopback by default
//     "admin": {"address": "127.0.0.1", "port": 8081},      // optional admin listener
//     "allowedOrigins": ["https://app.example"],            // an Origin not listed → 403
//     "allowedHosts": ["127.0.0.1", "localhost"],           // Host header check (port ignored)
//     "http": {"maxBodyBytes": 4194304, "maxHeaderBytes": 16384, "idleTimeoutMs": 60000,
//              "headerTimeoutMs": 10000, "sseKeepAliveMs": 15000},
//     "sessions": {"resumeBufferEvents": 256, "idleTimeoutMs": 600000, "maxSessions": 10000},
//     "policy": "bundle.json",                              // a policy bundle; allow-all if absent
//     "audit": {"path": "audit.jsonl", "keyFile": "audit.key", "fsync": "segment"},
//     "identity": {…},                                      // transport/http/identity
//     "servers": [ {pool profile}, … ],                     // pool/profile.h, one per upstream
//     "drainTimeoutMs": 10000,
//     "requestTimeoutMs": 0,                                // 0: calls may take for ever
//     "busyPollUs": 50                                      // reactor polling after activity
//   }
//
// Relative paths are resolved against the config file's folder.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/profile.h"
#include "src/audit/audit_sink.h"
#include "src/transport/http/server.h"

namespace mcpmw::http {

struct GatewayConfig {
  ListenOptions listen;
  bool admin_enabled = false;
  ListenOptions admin;
  std::vector<std::string> allowed_origins;  // exact "scheme://host[:port]" strings
  std::vector<std::string> allowed_hosts;    // host names without port; empty: loopback names
  Duration sse_keep_alive = std::chrono::seconds(15);
  size_t resume_buffer_events = 256;  // per session
  Duration session_idle_timeout = std::chrono::minutes(10);
  size_t max_sessions = 10'000;
  std::string policy_path;
  std::string audit_path;
  std::string audit_key_path;
  audit::AuditOptions::FsyncPolicy audit_fsync = audit::AuditOptions::FsyncPolicy::kPerSegment;
  std::string identity_json;  // the "identity" object as JSON text; empty when absent
  std::string base_dir;       // the config file's folder
  std::vector<pool::Profile> servers;
  Duration drain_timeout = std::chrono::seconds(10);
  // A call its worker has not answered this long after it arrived (or after its last progress
  // notification) gets -32001 and is cancelled at the worker; 0 turns the timeout off.
  Duration request_timeout{0};
  // After a burst of completions the reactor keeps polling this long before it sleeps
  // (io::Ring::set_busy_poll); 0 sleeps at once. As the sidecar's --busy-poll-us.
  Duration busy_poll = std::chrono::microseconds(50);
};

// Parses a config document; `base_dir` resolves relative paths.
absl::StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view json, std::string_view base_dir);
// Reads and parses the file at `path`.
absl::StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path);

}  // namespace mcpmw::http
