// mcpmw middleware: the `dispatch` stage — the hand-over to the server.
//
// Last on the way in: when the chain reaches it, the request is sent, so it marks the exchange
// dispatched and records the bytes that went out. On the way back it records whether the server
// answered with an error and how long the exchange took. For an exchange the chain stopped
// earlier it records which stage blocked it (the prototype's `blocked-by-<stage>`).
#pragma once

#include "src/common/clock.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class DispatchStage final : public Stage {
 public:
  explicit DispatchStage(const Clock& clock) : clock_(clock) {}

  std::string_view name() const override { return "dispatch"; }
  FactSet reads() const override { return Facts({Fact::kInvocation}); }
  FactSet writes() const override { return Facts({Fact::kUpstreamResult}); }
  uint8_t hooks() const override { return kOnRequest | kOnResponse; }

  Verdict OnRequest(MessageContext& ctx) override;
  Verdict OnResponse(MessageContext& ctx) override;
  void OnComplete(MessageContext& ctx) override;

 private:
  const Clock& clock_;
};

}  // namespace mcpmw::middleware
