#include "src/app/policy_check.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/policy/bundle.h"

namespace mcpmw::app {

int RunPolicyCheck(const Command& cmd) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::LoadBundleFile(cmd.policy_file);
  if (!bundle.ok()) {
    LogError("INVALID: ", bundle.status().message());
    return 1;
  }
  const policy::Bundle& b = **bundle;
  size_t redaction = (b.request_redactor != nullptr) + (b.response_redactor != nullptr);
  // Tenant quotas: how many named tenants are limited, and whether "*" limits everyone else.
  size_t quota_tenants = 0;
  for (const auto& [name, settings] : b.tenants) {
    quota_tenants += name != policy::kDefaultTenant && settings.quota.limits_anything() ? 1 : 0;
  }
  bool quota_default = b.QuotaFor(policy::kDefaultTenant) != nullptr;
  std::string line = absl::StrCat(
      "OK: ", cmd.policy_file, ": bundle ", b.version, " (", Sv(policy::ModeName(b.mode)), "), ",
      b.policy_rules.size(), " policy rules, ", b.tool_catalog.size(), " catalog tools, ",
      b.rate_rules.size(), " rate limits, quotas for ", quota_tenants, " tenant(s)",
      quota_default ? " and \"*\"" : "", ", redaction in ", redaction, " direction(s), sha256 ",
      b.sha256.substr(0, 12), "\n");
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace mcpmw::app
