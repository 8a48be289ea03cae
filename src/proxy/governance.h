// mcpmw proxy: governance of one session — the chain, its bundle, and where reports go.
//
// The session (sidecar.h) calls in at three points of each client request's life:
//
//   Begin      the request arrived: runs chain.OnRequest; the verdict says forward (maybe a
//              rewrite) or answer with an error. The Exchange keeps the chain snapshot that was
//              current at that moment, so a bundle swapped meanwhile never changes a request
//              half-way (the swap happens at a message boundary, for the next request).
//   Respond    its response arrived: runs chain.OnResponse (tools/list filtering, response
//              redaction), then completes the exchange.
//   Abandon    it ended without a response (server died, cancelled, shutdown): completes it.
//
// Completing runs chain.OnComplete: dispatch bookkeeping, trace, cost, and the report, which goes
// to the audit log when one is configured.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "src/audit/audit_sink.h"
#include "src/common/clock.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle_store.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::proxy {

struct GovernanceOptions {
  std::string policy_path;        // the bundle file; empty: an allow-all bundle
  middleware::Principal claimed;  // from flags / MCP_PROXY_* variables
  std::string server_id = "upstream-mcp-server";
  std::string audit_path;      // empty: no audit log
  std::string audit_key_path;  // required with audit_path
  audit::AuditOptions::FsyncPolicy audit_fsync = audit::AuditOptions::FsyncPolicy::kPerSegment;
  std::string metrics_path;  // Prometheus text written here at exit; empty: none
};

// One client request on its way through the chain.
struct Exchange {
  std::shared_ptr<middleware::ChainSnapshot> snapshot;
  middleware::MessageContext ctx;
};

class Governance {
 public:
  // Loads the bundle (when a path is given), opens the audit log, builds the first chain.
  static absl::StatusOr<std::unique_ptr<Governance>> Create(GovernanceOptions options,
                                                            const Clock& clock);
  ~Governance();

  // A client request. `payload` must be a padded frame. The exchange's ctx.outcome is the
  // verdict: Continue → forward ctx.current(); Reject → answer ctx.outcome (the exchange is
  // already complete then).
  std::unique_ptr<Exchange> Begin(const jsonrpc::Envelope& env, std::string_view payload);
  // The gateway's form: the caller was authenticated per request (`principal`, which must
  // outlive the exchange) and the request goes to `server_id`.
  std::unique_ptr<Exchange> Begin(const jsonrpc::Envelope& env, std::string_view payload,
                                  const middleware::Principal* principal,
                                  std::string_view server_id);
  // The server's response to the exchange's request; afterwards ctx.outcome says whether to
  // forward ctx.current() or to answer with an error in its place. Completes the exchange.
  void Respond(Exchange& exchange, const jsonrpc::Envelope& env, std::string_view payload);
  // The request ended without a response; `code`/`message` are what the client was told.
  void Abandon(Exchange& exchange, int code, std::string_view message);

  // Reads and compiles the bundle file again; installs it when it is valid and different.
  // Returns the new version, nullopt when unchanged, or the error (the running bundle stays).
  absl::StatusOr<std::optional<std::string>> Reload();
  // Back to the previous version.
  absl::Status Rollback();

  const std::string& policy_path() const { return options_.policy_path; }
  const policy::BundleStore& store() const { return store_; }
  telemetry::Metrics& metrics() { return metrics_; }
  // Reports handed to the audit log and not yet written; nullopt without an audit log.
  std::optional<uint64_t> AuditLag() const;

  // Flushes the audit log and writes the metrics file. Idempotent.
  absl::Status Close();

 private:
  Governance(GovernanceOptions options, const Clock& clock);
  absl::Status Rebuild();
  void Complete(Exchange& exchange);

  GovernanceOptions options_;
  const Clock& clock_;
  policy::BundleStore store_;
  uint64_t sequence_ = 0;
  uint64_t reports_appended_ = 0;
  std::string session_id_;
  middleware::RateLimitState rate_state_;
  middleware::QuotaState quota_state_;
  telemetry::Metrics metrics_;
  std::unique_ptr<audit::AuditSink> audit_;
  audit::Producer* producer_ = nullptr;
  std::shared_ptr<middleware::ChainSnapshot> current_;
  bool closed_ = false;
};

}  // namespace mcpmw::proxy
