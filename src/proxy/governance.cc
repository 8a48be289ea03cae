#include "src/proxy/governance.h"

#include <sys/random.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::proxy {
namespace {

// 8 random bytes in hex: invocation ids stay unique across sessions and restarts.
std::string NewSessionId() {
  unsigned char bytes[8] = {};
  if (::getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) {
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(bytes, &t, sizeof(bytes));
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

}  // namespace

Governance::Governance(GovernanceOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), session_id_(NewSessionId()) {}

Governance::~Governance() {
  if (absl::Status s = Close(); !s.ok()) {
    LogError(s.message());
  }
}

absl::StatusOr<std::unique_ptr<Governance>> Governance::Create(GovernanceOptions options,
                                                               const Clock& clock) {
  std::unique_ptr<Governance> g(new Governance(std::move(options), clock));
  std::shared_ptr<const policy::Bundle> bundle;
  if (g->options_.policy_path.empty()) {
    MCPMW_ASSIGN_OR_RETURN(bundle, policy::ParseBundle(R"({"bundleVersion":"allow-all"})"));
  } else {
    MCPMW_ASSIGN_OR_RETURN(bundle, policy::LoadBundleFile(g->options_.policy_path));
  }
  g->store_.Install(std::move(bundle));
  if (!g->options_.audit_path.empty()) {
    if (g->options_.audit_key_path.empty()) {
      return absl::InvalidArgumentError(
          "--audit-log needs --audit-key FILE (an HMAC key of 16+ bytes, or an Ed25519 PEM "
          "private key) to sign the log");
    }
    audit::AuditOptions ao;
    ao.path = g->options_.audit_path;
    MCPMW_ASSIGN_OR_RETURN(ao.signer, audit::Signer::FromKeyFile(g->options_.audit_key_path));
    ao.fsync = g->options_.audit_fsync;
    ao.trusted_reports = true;  // the report stage renders one line of valid JSON
    ao.truncate_torn_tail = true;
    MCPMW_ASSIGN_OR_RETURN(g->audit_, audit::AuditSink::Open(std::move(ao)));
    MCPMW_ASSIGN_OR_RETURN(g->producer_, g->audit_->NewProducer());
  }
  MCPMW_RETURN_IF_ERROR(g->Rebuild());
  return g;
}

absl::Status Governance::Rebuild() {
  middleware::ChainDeps deps;
  deps.session_id = session_id_;
  deps.sequence = &sequence_;
  deps.clock = &clock_;
  deps.rate_state = &rate_state_;
  deps.quota_state = &quota_state_;
  deps.metrics = &metrics_;
  deps.tenant =
      options_.claimed.tenant.empty() ? store_.current()->identity.tenant : options_.claimed.tenant;
  if (producer_ != nullptr) {
    // Packed straight into the producer's queue; the audit writer renders it.
    deps.report = [this](const middleware::ReportDraft& draft) {
      ++reports_appended_;
      absl::Status s = producer_->AppendPacked(draft.packed_size(), &middleware::RenderPackedReport,
                                               [&draft](char* out) { draft.PackInto(out); });
      if (!s.ok()) {
        LogError("audit: ", s.message());
      }
    };
  }
  MCPMW_ASSIGN_OR_RETURN(current_, middleware::BuildChain(store_.current(), deps));
  return absl::OkStatus();
}

std::unique_ptr<Exchange> Governance::Begin(const jsonrpc::Envelope& env,
                                            std::string_view payload) {
  return Begin(env, payload, &options_.claimed, options_.server_id);
}

std::unique_ptr<Exchange> Governance::Begin(const jsonrpc::Envelope& env, std::string_view payload,
                                            const middleware::Principal* principal,
                                            std::string_view server_id) {
  auto ex = std::make_unique<Exchange>();
  ex->snapshot = current_;
  middleware::MessageContext& ctx = ex->ctx;
  ctx.direction = middleware::Direction::kClientToServer;
  ctx.envelope = &env;
  ctx.payload = payload;
  ctx.bundle = ex->snapshot->bundle.get();
  ctx.claimed = principal;
  ctx.server_id = server_id;
  ctx.started = clock_.Now();
  middleware::Verdict v = ex->snapshot->chain.OnRequest(ctx);
  if (!v.IsContinue()) {
    Complete(*ex);
  }
  // The envelope, payload and document views die with the frame (and the next parse); the
  // context must not keep them.
  ctx.envelope = nullptr;
  ctx.payload = {};
  ctx.request_document.reset();
  return ex;
}

void Governance::Respond(Exchange& ex, const jsonrpc::Envelope& env, std::string_view payload) {
  middleware::MessageContext& ctx = ex.ctx;
  ctx.direction = middleware::Direction::kServerToClient;
  ctx.envelope = &env;
  ctx.payload = payload;
  ctx.rewritten.reset();
  ex.snapshot->chain.OnResponse(ctx);
  Complete(ex);
  ctx.envelope = nullptr;
}

void Governance::Abandon(Exchange& ex, int code, std::string_view message) {
  ex.ctx.outcome = middleware::Verdict::Reject(code, std::string(message));
  ex.ctx.upstream_error = true;
  Complete(ex);
}

std::optional<uint64_t> Governance::AuditLag() const {
  if (audit_ == nullptr) {
    return std::nullopt;
  }
  uint64_t written = audit_->stats().records;
  return reports_appended_ > written ? reports_appended_ - written : 0;
}

void Governance::Complete(Exchange& ex) { ex.snapshot->chain.OnComplete(ex.ctx); }

absl::StatusOr<std::optional<std::string>> Governance::Reload() {
  if (options_.policy_path.empty()) {
    return std::optional<std::string>();
  }
  MCPMW_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Bundle> bundle,
                         policy::LoadBundleFile(options_.policy_path));
  std::string version = bundle->version;
  if (!store_.Install(std::move(bundle))) {
    return std::optional<std::string>();
  }
  if (absl::Status s = Rebuild(); !s.ok()) {
    (void)store_.Rollback();
    MCPMW_RETURN_IF_ERROR(Rebuild());
    return s;
  }
  return std::optional<std::string>(version);
}

absl::Status Governance::Rollback() {
  MCPMW_RETURN_IF_ERROR(store_.Rollback());
  return Rebuild();
}

absl::Status Governance::Close() {
  if (closed_) {
    return absl::OkStatus();
  }
  closed_ = true;
  absl::Status status;
  if (audit_ != nullptr) {
    status = audit_->Close();
    // What the audit log cost the session, for the metrics file.
    const audit::AuditSink::Stats stats = audit_->stats();
    struct Row {
      std::string_view name, help;
      uint64_t value;
    };
    for (const Row& row : {
             Row{"mcpmw_audit_records_total", "Records written to the audit log.", stats.records},
             Row{"mcpmw_audit_batches_total", "write(2) calls that wrote them.", stats.batches},
             Row{"mcpmw_audit_fsyncs_total", "fdatasync calls on the audit log.", stats.fsyncs},
             Row{"mcpmw_audit_lost_total", "Reports dropped after an audit write error.",
                 stats.lost},
             Row{"mcpmw_audit_blocked_appends_total",
                 "Times a message waited for room in the full audit queue.",
                 producer_->blocked_appends()},
         }) {
      metrics_.Describe(row.name, row.help);
      metrics_.counter(row.name).Add(row.value);
    }
  }
  if (!options_.metrics_path.empty()) {
    std::ofstream out(options_.metrics_path, std::ios::trunc);
    out << metrics_.RenderPrometheus();
    if (!out && status.ok()) {
      status = absl::UnavailableError(
          absl::StrCat("cannot write the metrics file ", options_.metrics_path));
    }
  }
  return status;
}

}  // namespace mcpmw::proxy
