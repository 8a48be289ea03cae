// mcpmw middleware: the `normalize` stage, first in every chain.
//
// Gives the exchange its invocation id ("<session>-<n>", unique per session, joins the error a
// caller sees to its audit record) and fills the fields later stages read: the method and, for
// tools/call, the tool name. A tools/call without a string `params.name` is refused here with
// -32602, so no later stage has to wonder what is being called. So is a request in which some
// object names a member twice (reason duplicate-member): stages read the first of two equal
// names and many servers the last, so a second "arguments" or "path" would slip past policy and
// redaction. Responses keep the request's fields (the context is the exchange's).
#pragma once

#include <cstdint>
#include <string>

#include "simdjson.h"
#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class NormalizeStage final : public Stage {
 public:
  // `session_id` prefixes every invocation id; `next_sequence` is shared with the session so ids
  // stay unique across bundle reloads (which rebuild the chain).
  NormalizeStage(std::string session_id, uint64_t* next_sequence)
      : session_id_(std::move(session_id)), next_sequence_(next_sequence) {}

  std::string_view name() const override { return "normalize"; }
  FactSet reads() const override { return Facts({Fact::kEnvelope}); }
  FactSet writes() const override { return Facts({Fact::kInvocation}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  std::string session_id_;
  uint64_t* next_sequence_;
  simdjson::dom::parser parser_;
};

}  // namespace mcpmw::middleware
