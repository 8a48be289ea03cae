#include "src/middleware/chain.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::middleware {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A configurable stage that records the hooks it saw into a shared log.
class ScriptedStage final : public Stage {
 public:
  ScriptedStage(std::string name, FactSet reads, FactSet writes, std::vector<std::string>* log)
      : name_(std::move(name)), reads_(reads), writes_(writes), log_(log) {}

  std::string_view name() const override { return name_; }
  FactSet reads() const override { return reads_; }
  FactSet writes() const override { return writes_; }

  Verdict OnRequest(MessageContext& ctx) override {
    log_->push_back(name_ + ".request");
    if (!rewrite_.empty()) {
      ctx.rewritten = rewrite_;
    }
    if (reject_) {
      ctx.decisions.push_back({.stage = name(), .status = "deny", .reason_code = "scripted"});
      return Verdict::Reject(-32010, name_ + " says no", R"({"stage":")" + name_ + R"("})");
    }
    return Verdict::Continue();
  }
  Verdict OnResponse(MessageContext& ctx) override {
    log_->push_back(name_ + ".response");
    return Verdict::Continue();
  }
  void OnComplete(MessageContext& ctx) override { log_->push_back(name_ + ".complete"); }

  ScriptedStage* Rejecting() {
    reject_ = true;
    return this;
  }
  ScriptedStage* Rewriting(std::string to) {
    rewrite_ = std::move(to);
    return this;
  }
  // Declares only these hooks (Stage::HookBits); the chain then skips the other.
  ScriptedStage* Declaring(uint8_t hooks) {
    hooks_ = hooks;
    return this;
  }
  uint8_t hooks() const override { return hooks_; }

 private:
  std::string name_;
  FactSet reads_, writes_;
  std::vector<std::string>* log_;
  bool reject_ = false;
  std::string rewrite_;
  uint8_t hooks_ = kOnRequest | kOnResponse;
};

Chain::Entry Enforced(ScriptedStage* s) { return {std::unique_ptr<Stage>(s), Mode::kEnforce}; }
Chain::Entry Observed(ScriptedStage* s) { return {std::unique_ptr<Stage>(s), Mode::kObserve}; }

TEST(Chain, RefusesAStageThatReadsWhatNoEarlierStageWrites) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced(new ScriptedStage("policy", Facts({Fact::kPrincipal}),
                                               Facts({Fact::kPolicyDecision}), &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(chain.status().message(),
              HasSubstr("stage `policy` reads principal, which no earlier stage writes"));
}

TEST(Chain, AcceptsStagesWhoseReadsAreWrittenEarlier) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced(
      new ScriptedStage("auth", Facts({Fact::kEnvelope}), Facts({Fact::kPrincipal}), &log)));
  entries.push_back(Enforced(new ScriptedStage("policy", Facts({Fact::kPrincipal}),
                                               Facts({Fact::kPolicyDecision}), &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok()) << chain.status();
  MessageContext ctx;
  EXPECT_TRUE(chain->OnRequest(ctx).IsContinue());
  EXPECT_THAT(log, ElementsAre("auth.request", "policy.request"));
  EXPECT_TRUE(ctx.facts.test(static_cast<size_t>(Fact::kPolicyDecision)));
}

TEST(Chain, StopsAtTheFirstEnforcedRejectionButStillCompletesEveryStage) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced(new ScriptedStage("auth", {}, {}, &log)));
  entries.push_back(Enforced((new ScriptedStage("policy", {}, {}, &log))->Rejecting()));
  entries.push_back(Enforced(new ScriptedStage("trace", {}, {}, &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok());
  MessageContext ctx;
  Verdict v = chain->OnRequest(ctx);
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32010);
  EXPECT_EQ(v.data_json, R"({"stage":"policy"})");
  EXPECT_EQ(ctx.outcome.code, -32010);
  EXPECT_EQ(ctx.stopped_by, "policy");
  chain->OnComplete(ctx);
  EXPECT_THAT(log, ElementsAre("auth.request", "policy.request", "auth.complete", "policy.complete",
                               "trace.complete"));
  EXPECT_EQ(chain->counters(1).rejected, 1u);
  EXPECT_EQ(chain->counters(2).evaluated, 0u);
}

TEST(Chain, ObserveModeRecordsButNeitherBlocksNorRewrites) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(
      Observed((new ScriptedStage("policy", {}, {}, &log))->Rejecting()->Rewriting("patched")));
  entries.push_back(Enforced(new ScriptedStage("dispatch", {}, {}, &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok());
  MessageContext ctx;
  EXPECT_TRUE(chain->OnRequest(ctx).IsContinue());
  EXPECT_FALSE(ctx.rewritten.has_value());
  EXPECT_TRUE(ctx.stopped_by.empty());
  ASSERT_EQ(ctx.decisions.size(), 1u);
  EXPECT_EQ(ctx.decisions[0].status, "deny");
  EXPECT_FALSE(ctx.decisions[0].enforced);
  EXPECT_EQ(chain->counters(0).observed, 1u);
  EXPECT_EQ(chain->counters(0).rejected, 0u);
  EXPECT_THAT(log, ElementsAre("policy.request", "dispatch.request"));
}

TEST(Chain, EnforcedRewriteIsKeptForForwarding) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced((new ScriptedStage("request_redaction", {}, {}, &log))
                                 ->Rewriting(R"({"jsonrpc":"2.0","id":1,"method":"x"})")));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok());
  MessageContext ctx;
  EXPECT_TRUE(chain->OnRequest(ctx).IsContinue());
  EXPECT_EQ(ctx.rewritten, R"({"jsonrpc":"2.0","id":1,"method":"x"})");
}

TEST(Chain, RunsResponseHooksInChainOrder) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced(new ScriptedStage("response_redaction", {}, {}, &log)));
  entries.push_back(Enforced(new ScriptedStage("cost", {}, {}, &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok());
  MessageContext ctx{.direction = Direction::kServerToClient};
  EXPECT_TRUE(chain->OnResponse(ctx).IsContinue());
  EXPECT_THAT(log, ElementsAre("response_redaction.response", "cost.response"));
  EXPECT_EQ(chain->counters(1).evaluated, 1u);
}

TEST(Chain, CallsOnlyTheHooksAStageDeclaresButCountsItEvaluatedForEach) {
  std::vector<std::string> log;
  std::vector<Chain::Entry> entries;
  entries.push_back(Enforced((new ScriptedStage("normalize", {}, Facts({Fact::kInvocation}), &log))
                                 ->Declaring(Stage::kOnRequest)));
  entries.push_back(Enforced((new ScriptedStage("dispatch", Facts({Fact::kInvocation}),
                                                Facts({Fact::kUpstreamResult}), &log))
                                 ->Declaring(Stage::kOnResponse)));
  entries.push_back(Enforced(new ScriptedStage("trace", {}, Facts({Fact::kTrace}), &log)));
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  ASSERT_TRUE(chain.ok()) << chain.status();
  MessageContext ctx;
  EXPECT_TRUE(chain->OnRequest(ctx).IsContinue());
  EXPECT_TRUE(chain->OnResponse(ctx).IsContinue());
  EXPECT_THAT(log, ElementsAre("normalize.request", "trace.request", "dispatch.response",
                               "trace.response"));
  // A skipped hook still counts, and its stage's facts are still provided.
  for (size_t i = 0; i < chain->size(); ++i) {
    EXPECT_EQ(chain->counters(i).evaluated, 2u) << chain->stage_name(i);
  }
  EXPECT_TRUE(ctx.facts.test(static_cast<size_t>(Fact::kUpstreamResult)));
  EXPECT_TRUE(ctx.facts.test(static_cast<size_t>(Fact::kInvocation)));
}

}  // namespace
}  // namespace mcpmw::middleware
