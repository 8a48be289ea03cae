#include "src/middleware/auth.h"

#include <memory>
#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/jsonrpc/envelope.h"
#include "src/policy/bundle.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::EnforcedDecision;
using test_support::Frame;

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::shared_ptr<const policy::Bundle> Bundle(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> b = policy::ParseBundle(json);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : *policy::ParseBundle(R"({"bundleVersion":"unparsable"})");
}

constexpr std::string_view kPing = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";

TEST(AuthStage, DeclaresItReadsTheInvocationAndWritesThePrincipal) {
  auto bundle = Bundle(R"({"bundleVersion":"v"})");
  AuthStage stage(*bundle);
  EXPECT_EQ(stage.name(), "auth");
  EXPECT_EQ(stage.reads(), Facts({Fact::kInvocation}));
  EXPECT_EQ(stage.writes(), Facts({Fact::kPrincipal}));
}

TEST(AuthStage, FillsWhatTheTransportDoesNotSayFromTheBundleIdentity) {
  auto bundle = Bundle(R"({"bundleVersion":"v","identity":{"tenantId":"acme","userId":"bot",
      "agentId":"default-agent","roles":["viewer"],"scopes":["Read"]}})");
  AuthStage stage(*bundle);
  Principal claimed{.user = "alice", .roles = {"Admin", "admin"}};
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view(), .claimed = &claimed};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_EQ(ctx.principal.tenant, "acme");
  EXPECT_EQ(ctx.principal.user, "alice");
  EXPECT_EQ(ctx.principal.agent, "default-agent");
  EXPECT_THAT(ctx.principal.roles, ElementsAre("Admin", "admin"));  // roles kept as given
  EXPECT_THAT(ctx.principal.scopes, ElementsAre("read"));
  EXPECT_TRUE(ctx.decisions.empty());
}

TEST(AuthStage, UsesTheBundleIdentityWhenNothingIsClaimed) {
  auto bundle = Bundle(R"({"bundleVersion":"v","identity":{"tenantId":"t","userId":"u"}})");
  AuthStage stage(*bundle);
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_EQ(ctx.principal.tenant, "t");
  EXPECT_EQ(ctx.principal.user, "u");
  EXPECT_EQ(ctx.principal.agent, "");
  EXPECT_THAT(ctx.principal.scopes, IsEmpty());
}

TEST(AuthStage, NormalisesClaimedScopes) {
  auto bundle = Bundle(R"({"bundleVersion":"v","identity":{"scopes":["ignored"]}})");
  AuthStage stage(*bundle);
  Principal claimed{.scopes = {" Write", "read", "READ\t", "", "   ", "admin"}};
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view(), .claimed = &claimed};
  stage.OnRequest(ctx);
  EXPECT_THAT(ctx.principal.scopes, ElementsAre("admin", "read", "write"));
}

TEST(NormalizeScopes, TrimsLowercasesDropsEmptyDeduplicatesAndSorts) {
  EXPECT_THAT(NormalizeScopes({"b", " A ", "a", "\n", "C"}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(NormalizeScopes({}), IsEmpty());
}

TEST(AuthStage, RefusesARequestWithoutARequiredIdentityPart) {
  auto bundle = Bundle(R"({"bundleVersion":"v","requireIdentity":["tenant","user","agent"],
                          "identity":{"tenantId":"acme"}})");
  AuthStage stage(*bundle);
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view()};
  ctx.invocation_id = "s-3";
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, kCodeUnauthenticated);
  EXPECT_EQ(v.code, -32010);
  EXPECT_THAT(v.message, StartsWith("The caller's identity is incomplete: no user, no agent. "));
  EXPECT_EQ(v.data_json,
            R"({"stage":"auth","reasonCode":"auth-missing-principal","decisionId":"s-3:auth"})");
  ASSERT_THAT(ctx.decisions,
              ElementsAre(EnforcedDecision("auth", "deny", "auth-missing-principal")));
  EXPECT_EQ(ctx.DecisionId(ctx.decisions[0].stage), "s-3:auth");
}

TEST(AuthStage, NamesMissingScopesWithTheirOwnReason) {
  auto bundle = Bundle(R"({"bundleVersion":"v","requireIdentity":["user","scopes"]})");
  AuthStage stage(*bundle);
  Principal claimed{.user = "alice", .scopes = {"  "}};  // trims to nothing
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view(), .claimed = &claimed};
  ctx.invocation_id = "s-1";
  Verdict v = stage.OnRequest(ctx);
  EXPECT_EQ(v.code, kCodeUnauthenticated);
  EXPECT_THAT(v.message, StartsWith("The caller's identity is incomplete: no scopes. "));
  EXPECT_EQ(v.data_json,
            R"({"stage":"auth","reasonCode":"auth-missing-scopes","decisionId":"s-1:auth"})");
}

TEST(AuthStage, AdmitsARequestWhoseRequiredPartsAreAllPresent) {
  auto bundle =
      Bundle(R"({"bundleVersion":"v","requireIdentity":["tenant","user","agent","scopes"]})");
  AuthStage stage(*bundle);
  Principal claimed{.tenant = "t", .user = "u", .agent = "a", .scopes = {"x"}};
  Frame frame(kPing);
  MessageContext ctx{.envelope = &frame.envelope(), .payload = frame.view(), .claimed = &claimed};
  EXPECT_TRUE(stage.OnRequest(ctx).IsContinue());
  EXPECT_TRUE(ctx.decisions.empty());
}

}  // namespace
}  // namespace mcpmw::middleware
