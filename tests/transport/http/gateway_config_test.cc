#include "src/transport/http/gateway_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mcpmw::http {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kMinimal = R"({"servers":[{"name":"echo","command":["/bin/cat"]}]})";

TEST(GatewayConfig, DefaultsToLoopbackAndAllowAllWhenOnlyServersAreGiven) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(kMinimal, "/etc/mcpmw");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen.address, "127.0.0.1");
  EXPECT_FALSE(c->admin_enabled);
  EXPECT_TRUE(c->policy_path.empty());
  EXPECT_TRUE(c->identity_json.empty());
  ASSERT_EQ(c->servers.size(), 1u);
  EXPECT_EQ(c->servers[0].name, "echo");
  EXPECT_EQ(c->resume_buffer_events, 256u);
  EXPECT_EQ(c->busy_poll, std::chrono::microseconds(50));
  EXPECT_EQ(c->request_timeout, Duration::zero()) << "calls may take for ever by default";
}

TEST(GatewayConfig, ResolvesRelativePathsAgainstTheConfigFolder) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(
      R"({"policy":"bundle.json","audit":{"path":"/var/log/a.jsonl","keyFile":"k.key"},)"
      R"("servers":[{"name":"echo","command":["/bin/cat"]}]})",
      "/etc/mcpmw");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->policy_path, "/etc/mcpmw/bundle.json");
  EXPECT_EQ(c->audit_path, "/var/log/a.jsonl");
  EXPECT_EQ(c->audit_key_path, "/etc/mcpmw/k.key");
}

TEST(GatewayConfig, ReadsListenersLimitsSessionsAndKeepsIdentityAsJson) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(
      R"({"listen":{"address":"0.0.0.0","port":8080},"admin":{"port":9090},)"
      R"("allowedOrigins":["https://app.example"],"allowedHosts":["mcp.example"],)"
      R"("http":{"maxBodyBytes":2048,"maxHeaderBytes":1024,"idleTimeoutMs":5000,)"
      R"("headerTimeoutMs":2000,"sseKeepAliveMs":1000},)"
      R"("sessions":{"resumeBufferEvents":8,"idleTimeoutMs":60000,"maxSessions":3},)"
      R"("identity":{"anonymous": true},"drainTimeoutMs":250,"busyPollUs":0,)"
      R"("requestTimeoutMs":30000,)"
      R"("servers":[{"name":"a","command":["/bin/cat"]},{"name":"b","command":["/bin/cat"]}]})",
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen.address, "0.0.0.0");
  EXPECT_EQ(c->listen.port, 8080);
  EXPECT_TRUE(c->admin_enabled);
  EXPECT_EQ(c->admin.address, "127.0.0.1");
  EXPECT_EQ(c->admin.port, 9090);
  EXPECT_EQ(c->allowed_origins, std::vector<std::string>{"https://app.example"});
  EXPECT_EQ(c->allowed_hosts, std::vector<std::string>{"mcp.example"});
  EXPECT_EQ(c->listen.limits.max_body_bytes, 2048u);
  EXPECT_EQ(c->listen.limits.max_header_bytes, 1024u);
  EXPECT_EQ(c->listen.limits.idle_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c->listen.limits.header_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(c->sse_keep_alive, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->resume_buffer_events, 8u);
  EXPECT_EQ(c->max_sessions, 3u);
  EXPECT_EQ(c->identity_json, R"({"anonymous":true})");
  EXPECT_EQ(c->drain_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c->busy_poll, std::chrono::microseconds(0));
  EXPECT_EQ(c->request_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(c->servers.size(), 2u);
}

TEST(GatewayConfig, RefusesABusyPollPastOneSecond) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(
      R"({"busyPollUs":2000000,"servers":[{"name":"echo","command":["/bin/cat"]}]})", "");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("/busyPollUs"));
}

TEST(GatewayConfig, RefusesAConfigWithoutServers) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(R"({"listen":{"port":1}})", "");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("/servers: required"));
}

TEST(GatewayConfig, NamesThePointerOfAnUnknownKey) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(
      R"({"http":{"maxBody":1},"servers":[{"name":"echo","command":["/bin/cat"]}]})", "");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("/http/maxBody"));
}

TEST(GatewayConfig, RefusesTwoServersWithOneName) {
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(
      R"({"servers":[{"name":"a","command":["/bin/cat"]},{"name":"a","command":["/bin/cat"]}]})",
      "");
  EXPECT_THAT(c.status().message(), HasSubstr("/servers/1/name"));
  EXPECT_THAT(c.status().message(), HasSubstr("used by an earlier server"));
}

TEST(GatewayConfig, RefusesAServerNameThatWouldConfuseAggregatedToolNames) {
  absl::StatusOr<GatewayConfig> c =
      ParseGatewayConfig(R"({"servers":[{"name":"crm__v2","command":["/bin/cat"]}]})", "");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("/servers/0/name"));
}

TEST(GatewayConfig, ReportsAProfileErrorWithItsPointer) {
  absl::StatusOr<GatewayConfig> c =
      ParseGatewayConfig(R"({"servers":[{"name":"a","command":["/bin/cat"],"minWarm":-1}]})", "");
  EXPECT_THAT(c.status().message(), HasSubstr("/servers/0/minWarm"));
}

}  // namespace
}  // namespace mcpmw::http
