// Governance over a real audit sink: what a session's metrics file says about its audit log.
#include "src/proxy/governance.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "tests/common/temp_dir.h"

namespace mcpmw::proxy {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

TEST(Governance, MetricsFileCountsTheAuditRecordsBatchesAndWaitsOfTheSession) {
  const std::string dir = testing_support::MakeTempDir("mcpmw_governance");
  std::ofstream(dir + "/key") << std::string(32, 'k');
  GovernanceOptions options;
  options.audit_path = dir + "/audit.jsonl";
  options.audit_key_path = dir + "/key";
  options.metrics_path = dir + "/metrics.prom";
  SteadyClock clock;
  absl::StatusOr<std::unique_ptr<Governance>> governance =
      Governance::Create(std::move(options), clock);
  ASSERT_TRUE(governance.ok()) << governance.status();

  jsonrpc::EnvelopeReader reader;
  for (int i = 1; i <= 3; ++i) {
    simdjson::padded_string request(absl::StrCat(
        R"({"jsonrpc":"2.0","id":)", i, R"(,"method":"tools/call","params":{"name":"echo"}})"));
    jsonrpc::Envelope request_env;
    reader.Read(request, &request_env);
    std::unique_ptr<Exchange> exchange = (*governance)->Begin(request_env, request);
    ASSERT_TRUE(exchange->ctx.outcome.IsContinue());
    simdjson::padded_string response(
        absl::StrCat(R"({"jsonrpc":"2.0","id":)", i, R"(,"result":{"content":[]}})"));
    jsonrpc::Envelope response_env;
    reader.Read(response, &response_env);
    (*governance)->Respond(*exchange, response_env, response);
  }
  ASSERT_TRUE((*governance)->Close().ok());

  const std::string metrics = testing_support::ReadFileBytes(dir + "/metrics.prom");
  EXPECT_THAT(metrics, HasSubstr("\nmcpmw_audit_records_total 3\n"));
  EXPECT_THAT(metrics, HasSubstr("\nmcpmw_audit_blocked_appends_total 0\n"));
  EXPECT_THAT(metrics, HasSubstr("\nmcpmw_audit_lost_total 0\n"));
  // Close signs the last segment and syncs it: at least one batch and one fdatasync.
  EXPECT_THAT(metrics, ContainsRegex("\nmcpmw_audit_batches_total [1-9][0-9]*\n"));
  EXPECT_THAT(metrics, ContainsRegex("\nmcpmw_audit_fsyncs_total [1-9][0-9]*\n"));
  EXPECT_THAT(metrics, HasSubstr("# HELP mcpmw_audit_blocked_appends_total "));
}

}  // namespace
}  // namespace mcpmw::proxy
