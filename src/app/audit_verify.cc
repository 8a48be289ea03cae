#include "src/app/audit_verify.h"

#include <cstdio>

#include "src/audit/signer.h"
#include "src/audit/verify.h"
#include "src/common/log.h"

namespace mcpmw::app {

int RunAuditVerify(const Command& cmd) {
  absl::StatusOr<audit::Verifier> verifier = audit::Verifier::FromKeyFile(cmd.key_file);
  if (!verifier.ok()) {
    LogError("cannot load the key `", cmd.key_file, "`: ", verifier.status().message());
    return 2;
  }
  absl::StatusOr<audit::VerifyReport> report = audit::VerifyAuditFile(cmd.audit_file, *verifier);
  if (!report.ok()) {
    LogError("cannot read the audit log `", cmd.audit_file, "`: ", report.status().message());
    return 1;
  }
  std::printf("%s\n", audit::DescribeVerifyReport(*report).c_str());
  return report->ok ? 0 : 1;
}

}  // namespace mcpmw::app
