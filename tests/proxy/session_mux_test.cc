#include "src/proxy/session_mux.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using Routed = std::vector<std::pair<SessionId, std::string>>;

Routed ToClients(const MuxOutput& out) {
  Routed routed;
  for (const Delivery& d : out.to_clients) {
    routed.emplace_back(d.session, d.line);
  }
  return routed;
}

constexpr std::string_view kInitResult =
    R"({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"w","version":"1"}})";

TEST(SessionMux, TwoSessionsUsingTheSameIdGetOnlyTheirOwnResponsesWithTheirIdsRestored) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  SessionId c = mux.OpenSession();
  MuxOutput fa =
      mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}})");
  MuxOutput fb = mux.FromClient(
      b, R"({"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"t"}})");
  MuxOutput fc =
      mux.FromClient(c, R"({"jsonrpc":"2.0", "id" : 1 ,"method":"tools/call","params":{}})");
  EXPECT_THAT(
      fa.to_worker,
      ElementsAre(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}})"));
  EXPECT_THAT(
      fb.to_worker,
      ElementsAre(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t"}})"));
  EXPECT_THAT(fc.to_worker,
              ElementsAre(R"({"jsonrpc":"2.0", "id" : 3 ,"method":"tools/call","params":{}})"));
  EXPECT_THAT(fa.to_clients, IsEmpty());
  EXPECT_EQ(mux.TotalInFlight(), 3u);

  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":2,"result":{"who":"b"}})")),
              ElementsAre(Pair(b, R"({"jsonrpc":"2.0","id":"1","result":{"who":"b"}})")));
  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","result":{"who":"c"},"id":3})")),
              ElementsAre(Pair(c, R"({"jsonrpc":"2.0","result":{"who":"c"},"id":1})")));
  EXPECT_THAT(
      ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"a"}})")),
      ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"a"}})")));
  // Answered once: a repeat of the same worker id reaches nobody.
  EXPECT_THAT(mux.FromWorker(R"({"jsonrpc":"2.0","id":2,"result":{"who":"b"}})").to_clients,
              IsEmpty());
  EXPECT_EQ(mux.TotalInFlight(), 0u);
  EXPECT_EQ(mux.WorkerInFlight(), 0u);
}

TEST(SessionMux, StringIdsWithEscapesAreRestoredByteForByte) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  MuxOutput f = mux.FromClient(a, R"({"jsonrpc":"2.0","id":"a\"b\u0041","method":"ping"})");
  EXPECT_THAT(f.to_worker, ElementsAre(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})")),
              ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":"a\"b\u0041","result":{}})")));
}

TEST(SessionMux, ProgressOfTwoSessionsUsingTheSameTokenReachesOnlyItsOwnSession) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  MuxOutput fa = mux.FromClient(
      a,
      R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"_meta":{"progressToken":"tok"},"name":"slow"}})");
  MuxOutput fb = mux.FromClient(
      b,
      R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":7}}})");
  EXPECT_THAT(
      fa.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":1},"name":"slow"}})"));
  EXPECT_THAT(
      fb.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":2}}})"));

  EXPECT_THAT(
      ToClients(mux.FromWorker(
          R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":2,"progress":1,"total":2}})")),
      ElementsAre(Pair(
          b,
          R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1,"total":2}})")));
  EXPECT_THAT(
      ToClients(mux.FromWorker(
          R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":1}})")),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":"tok"}})")));
  // A token the mux never issued, and progress after the request completed, reach nobody.
  EXPECT_THAT(
      mux.FromWorker(
             R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","progress":2}})")
          .to_clients,
      IsEmpty());
  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})")),
              ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":5,"result":{}})")));
  EXPECT_THAT(
      mux.FromWorker(
             R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":2}})")
          .to_clients,
      IsEmpty());
}

TEST(SessionMux, ClientCancellationIsForwardedWithTheWorkerIdAndTheLateResponseDropped) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":"x","method":"tools/call","params":{}})");
  mux.FromClient(b, R"({"jsonrpc":"2.0","id":"x","method":"tools/call","params":{}})");
  MuxOutput cancel = mux.FromClient(
      b,
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"user"}})");
  EXPECT_THAT(
      cancel.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"user"}})"));
  EXPECT_EQ(mux.Counts(b)->requests_in_flight, 0u);
  EXPECT_EQ(mux.Counts(a)->requests_in_flight, 1u);
  // Cancelling an id the session has not in flight (another session's, or its own again) is
  // dropped.
  EXPECT_THAT(
      mux.FromClient(
             b,
             R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}})")
          .to_worker,
      IsEmpty());
  EXPECT_THAT(mux.FromWorker(R"({"jsonrpc":"2.0","id":2,"result":{}})").to_clients, IsEmpty());
  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})")),
              ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":"x","result":{}})")));
}

TEST(SessionMux, CloseSessionCancelsItsRequestsInFlightAndDropsTheirLateResponses) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromClient(b, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}})");
  EXPECT_EQ(mux.Counts(a)->requests_in_flight, 2u);
  EXPECT_EQ(mux.TotalInFlight(), 3u);

  MuxOutput closed = mux.CloseSession(a);
  EXPECT_THAT(
      closed.to_worker,
      UnorderedElementsAre(
          R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"the client session closed"}})",
          R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"the client session closed"}})"));
  EXPECT_FALSE(mux.Counts(a).has_value());
  EXPECT_EQ(mux.TotalInFlight(), 1u);
  EXPECT_EQ(mux.WorkerInFlight(), 1u);
  EXPECT_THAT(mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})").to_clients, IsEmpty());
  EXPECT_THAT(mux.FromWorker(R"({"jsonrpc":"2.0","id":3,"result":{}})").to_clients, IsEmpty());
  EXPECT_THAT(ToClients(mux.FromWorker(R"({"jsonrpc":"2.0","id":2,"result":{}})")),
              ElementsAre(Pair(b, R"({"jsonrpc":"2.0","id":1,"result":{}})")));
  // A closed session's input is ignored.
  EXPECT_THAT(mux.FromClient(a, R"({"jsonrpc":"2.0","id":9,"method":"ping"})").to_worker,
              IsEmpty());
  EXPECT_THAT(mux.CloseSession(a).to_worker, IsEmpty());
}

TEST(SessionMux, InitializeReachesTheWorkerOnceAndLaterSessionsAreAnsweredFromTheCache) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  MuxOutput fa = mux.FromClient(
      a,
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"1"}}})");
  EXPECT_THAT(
      fa.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"1"}}})"));
  // b asks while the worker's answer is outstanding: it waits for it.
  MuxOutput fb = mux.FromClient(
      b,
      R"({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}})");
  EXPECT_THAT(fb.to_worker, IsEmpty());
  EXPECT_THAT(fb.to_clients, IsEmpty());
  EXPECT_EQ(mux.Counts(b)->requests_in_flight, 1u);

  MuxOutput answer = mux.FromWorker(
      absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":)", std::string(kInitResult), "}"));
  EXPECT_THAT(ToClients(answer),
              ElementsAre(Pair(a, absl::StrCat(R"({"jsonrpc":"2.0","id":0,"result":)",
                                               std::string(kInitResult), "}")),
                          Pair(b, absl::StrCat(R"({"jsonrpc":"2.0","id":"init","result":)",
                                               std::string(kInitResult), "}"))));
  EXPECT_EQ(mux.TotalInFlight(), 0u);

  const std::string initialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
  EXPECT_THAT(mux.FromClient(a, initialized).to_worker, ElementsAre(initialized));
  EXPECT_THAT(mux.FromClient(b, initialized).to_worker, IsEmpty());

  // A later session asking for another protocol version gets the worker's negotiated one.
  SessionId c = mux.OpenSession();
  MuxOutput fc = mux.FromClient(
      c,
      R"({"jsonrpc":"2.0","id":42,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"c","version":"1"}}})");
  EXPECT_THAT(fc.to_worker, IsEmpty());
  EXPECT_THAT(ToClients(fc),
              ElementsAre(Pair(c, absl::StrCat(R"({"jsonrpc":"2.0","id":42,"result":)",
                                               std::string(kInitResult), "}"))));
  EXPECT_THAT(mux.FromClient(c, initialized).to_worker, IsEmpty());
  // A second initialize in the same session is a protocol error.
  EXPECT_THAT(
      ToClients(
          mux.FromClient(c, R"({"jsonrpc":"2.0","id":43,"method":"initialize","params":{}})")),
      ElementsAre(Pair(
          c,
          R"({"jsonrpc":"2.0","id":43,"error":{"code":-32600,"message":"initialize was already sent in this session"}})")));
}

TEST(SessionMux, RejectedInitializeGoesToItsSessionAndTheNextWaitingSessionsIsForwarded) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"v":"a"}})");
  mux.FromClient(b, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"v":"b"}})");
  MuxOutput rejected =
      mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}})");
  EXPECT_THAT(
      ToClients(rejected),
      ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}})")));
  EXPECT_THAT(rejected.to_worker,
              ElementsAre(R"({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"v":"b"}})"));
}

TEST(SessionMux, CachedInitializeFromAPrewarmedWorkerAnswersEverySessionLocally) {
  SessionMux mux;
  ASSERT_TRUE(mux.SetCachedInitialize(kInitResult).ok());
  EXPECT_EQ(mux.SetCachedInitialize("[1]").code(), absl::StatusCode::kInvalidArgument);
  SessionId a = mux.OpenSession();
  MuxOutput f =
      mux.FromClient(a, R"({"jsonrpc":"2.0","id":"i","method":"initialize","params":{}})");
  EXPECT_THAT(f.to_worker, IsEmpty());
  EXPECT_THAT(ToClients(f),
              ElementsAre(Pair(a, absl::StrCat(R"({"jsonrpc":"2.0","id":"i","result":)",
                                               std::string(kInitResult), "}"))));
  // The pool already sent notifications/initialized.
  EXPECT_THAT(
      mux.FromClient(a, R"({"jsonrpc":"2.0","method":"notifications/initialized"})").to_worker,
      IsEmpty());

  SessionMux late;
  SessionId s = late.OpenSession();
  late.FromClient(s, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
  EXPECT_EQ(late.SetCachedInitialize(kInitResult).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SessionMux, SamplingRequestDuringOneSessionsOnlyCallGoesToThatSessionAndItsAnswerBack) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"s"}})");
  MuxOutput request = mux.FromWorker(
      R"({"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}})");
  EXPECT_THAT(
      ToClients(request),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}})")));
  EXPECT_EQ(mux.Counts(a)->server_requests_in_flight, 1u);
  // b was never asked: its answer with the same id does not reach the worker.
  EXPECT_THAT(mux.FromClient(b, R"({"jsonrpc":"2.0","id":1,"result":{"x":1}})").to_worker,
              IsEmpty());
  EXPECT_THAT(
      mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"result":{"role":"assistant"}})").to_worker,
      ElementsAre(R"({"jsonrpc":"2.0","id":0,"result":{"role":"assistant"}})"));
  EXPECT_EQ(mux.Counts(a)->server_requests_in_flight, 0u);
  // Answered once.
  EXPECT_THAT(mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"result":{}})").to_worker, IsEmpty());
}

TEST(SessionMux, UnattributableServerRequestIsAnsweredWithTheSharedModeError) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  // Nobody has a request in flight.
  MuxOutput idle = mux.FromWorker(R"({"jsonrpc":"2.0","id":"r1","method":"roots/list"})");
  EXPECT_THAT(idle.to_clients, IsEmpty());
  EXPECT_THAT(
      idle.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":"r1","error":{"code":-32005,"message":"mcpmw runs this MCP server in shared mode and cannot attribute this roots/list request to a client session (no related request in flight is identifiable); it was not delivered","data":{"reason":"unattributable","method":"roots/list"}}})"));
  // Both have requests in flight: still ambiguous.
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromClient(
      b,
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p"}}})");
  MuxOutput busy =
      mux.FromWorker(R"({"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{}})");
  EXPECT_THAT(busy.to_clients, IsEmpty());
  ASSERT_EQ(busy.to_worker.size(), 1u);
  EXPECT_THAT(busy.to_worker[0],
              ::testing::StartsWith(R"({"jsonrpc":"2.0","id":7,"error":{"code":-32005,)"));
  // A request that names a worker progress token in its _meta belongs to that token's session.
  MuxOutput related = mux.FromWorker(
      R"({"jsonrpc":"2.0","id":8,"method":"elicitation/create","params":{"_meta":{"progressToken":2}}})");
  EXPECT_THAT(related.to_worker, IsEmpty());
  EXPECT_THAT(
      ToClients(related),
      ElementsAre(Pair(
          b,
          R"({"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"_meta":{"progressToken":2}}})")));
}

TEST(SessionMux, ServerRequestOfAClosedSessionIsAnsweredToTheWorker) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromWorker(R"({"jsonrpc":"2.0","id":"s","method":"roots/list"})");
  MuxOutput closed = mux.CloseSession(a);
  EXPECT_THAT(
      closed.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"the client session closed"}})",
          R"({"jsonrpc":"2.0","id":"s","error":{"code":-32005,"message":"the client session this request was routed to closed before answering","data":{"reason":"session-closed"}}})"));
}

TEST(SessionMux, WorkerCancellingItsRequestReachesTheSessionWithItsLocalId) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromWorker(R"({"jsonrpc":"2.0","id":50,"method":"sampling/createMessage","params":{}})");
  EXPECT_THAT(
      ToClients(mux.FromWorker(
          R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":50}})")),
      ElementsAre(Pair(
          a, R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}})")));
  EXPECT_EQ(mux.Counts(a)->server_requests_in_flight, 0u);
}

TEST(SessionMux, ClientProgressReachesTheWorkerOnlyForATokenTheSessionWasGiven) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})");
  mux.FromWorker(
      R"({"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"_meta":{"progressToken":"srv"}}})");
  const std::string progress =
      R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"srv","progress":1}})";
  EXPECT_THAT(mux.FromClient(b, progress).to_worker, IsEmpty());
  EXPECT_THAT(mux.FromClient(a, progress).to_worker, ElementsAre(progress));
}

TEST(SessionMux, WorkerPingIsAnsweredByTheMux) {
  SessionMux mux;
  mux.OpenSession();
  MuxOutput out = mux.FromWorker(R"({"jsonrpc":"2.0","id":"p1","method":"ping"})");
  EXPECT_THAT(out.to_worker, ElementsAre(R"({"jsonrpc":"2.0","id":"p1","result":{}})"));
  EXPECT_THAT(out.to_clients, IsEmpty());
}

TEST(SessionMux, InvalidJsonFromAClientGetsAParseErrorAndTheSessionSurvives) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  MuxOutput bad = mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":)");
  EXPECT_THAT(bad.to_worker, IsEmpty());
  EXPECT_THAT(
      ToClients(bad),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"the message is not valid JSON"}})")));
  MuxOutput invalid = mux.FromClient(a, R"({"jsonrpc":"1.0","id":4,"method":"x"})");
  EXPECT_THAT(
      ToClients(invalid),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":4,"error":{"code":-32600,"message":"\"jsonrpc\" must be \"2.0\""}})")));
  EXPECT_THAT(mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"ping"})").to_worker,
              ElementsAre(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
}

TEST(SessionMux, MessageRepeatingARoutedMemberIsRefused) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  MuxOutput dup = mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call"})");
  EXPECT_THAT(dup.to_worker, IsEmpty());
  EXPECT_THAT(
      ToClients(dup),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"the message repeats the member \"id\", which a shared MCP server cannot route unambiguously"}})")));
  MuxOutput token = mux.FromClient(
      a,
      R"({"jsonrpc":"2.0","id":3,"method":"x","params":{"_meta":{"progressToken":1,"progressToken":2}}})");
  EXPECT_THAT(token.to_worker, IsEmpty());
  ASSERT_EQ(token.to_clients.size(), 1u);
  EXPECT_THAT(token.to_clients[0].line, ::testing::HasSubstr(R"(member \"progressToken\")"));
  EXPECT_THAT(
      mux.FromClient(
             a,
             R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"requestId":2}})")
          .to_worker,
      IsEmpty());
}

TEST(SessionMux, RequestsBeyondTheInFlightCapAreRefusedUntilOneCompletes) {
  SessionMux mux({.max_in_flight_per_session = 2});
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  EXPECT_EQ(mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"x"})").to_worker.size(), 1u);
  EXPECT_EQ(mux.FromClient(a, R"({"jsonrpc":"2.0","id":2,"method":"x"})").to_worker.size(), 1u);
  MuxOutput over = mux.FromClient(a, R"({"jsonrpc":"2.0","id":3,"method":"x"})");
  EXPECT_THAT(over.to_worker, IsEmpty());
  EXPECT_THAT(
      ToClients(over),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":3,"error":{"code":-32004,"message":"This session already has 2 requests in flight on a shared MCP server (the limit); wait for answers before sending more","data":{"reason":"in-flight-limit","retryable":true}}})")));
  // Another session has its own budget.
  EXPECT_EQ(mux.FromClient(b, R"({"jsonrpc":"2.0","id":1,"method":"x"})").to_worker.size(), 1u);
  // A reused id in flight is refused rather than shadowing the first request.
  mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})");
  MuxOutput reused = mux.FromClient(a, R"({"jsonrpc":"2.0","id":2,"method":"x"})");
  EXPECT_THAT(
      ToClients(reused),
      ElementsAre(Pair(
          a,
          R"({"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"the id 2 is already used by a request in flight"}})")));
  EXPECT_THAT(mux.FromClient(a, R"({"jsonrpc":"2.0","id":3,"method":"x"})").to_worker,
              ElementsAre(R"({"jsonrpc":"2.0","id":4,"method":"x"})"));
}

TEST(SessionMux, ListChangedIsBroadcastToInitializedSessionsOnly) {
  SessionMux mux;
  ASSERT_TRUE(mux.SetCachedInitialize(kInitResult).ok());
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  SessionId fresh = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
  mux.FromClient(b, R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
  const std::string changed = R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})";
  EXPECT_THAT(ToClients(mux.FromWorker(changed)),
              UnorderedElementsAre(Pair(a, changed), Pair(b, changed)));
  (void)fresh;
}

TEST(SessionMux, ResourceUpdatesReachOnlySubscribersAndTheLastUnsubscribeReachesTheWorker) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  SessionId b = mux.OpenSession();
  SessionId c = mux.OpenSession();
  const std::string sub =
      R"({"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///x"}})";
  EXPECT_THAT(
      mux.FromClient(a, sub).to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///x"}})"));
  EXPECT_THAT(
      mux.FromClient(b, sub).to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"file:///x"}})"));
  mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"result":{}})");
  mux.FromWorker(R"({"jsonrpc":"2.0","id":2,"result":{}})");
  const std::string updated =
      R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///x"}})";
  EXPECT_THAT(ToClients(mux.FromWorker(updated)),
              UnorderedElementsAre(Pair(a, updated), Pair(b, updated)));
  (void)c;

  // a leaves while b still holds the uri: answered locally, the worker keeps its subscription.
  MuxOutput unsub_a = mux.FromClient(
      a,
      R"({"jsonrpc":"2.0","id":2,"method":"resources/unsubscribe","params":{"uri":"file:///x"}})");
  EXPECT_THAT(unsub_a.to_worker, IsEmpty());
  EXPECT_THAT(ToClients(unsub_a), ElementsAre(Pair(a, R"({"jsonrpc":"2.0","id":2,"result":{}})")));
  EXPECT_THAT(ToClients(mux.FromWorker(updated)), ElementsAre(Pair(b, updated)));
  // b closes as the last holder: the mux releases the worker's subscription itself, and swallows
  // the answer.
  MuxOutput closed = mux.CloseSession(b);
  EXPECT_THAT(
      closed.to_worker,
      ElementsAre(
          R"({"jsonrpc":"2.0","id":"mcpmw-unsubscribe-1","method":"resources/unsubscribe","params":{"uri":"file:///x"}})"));
  EXPECT_THAT(
      mux.FromWorker(R"({"jsonrpc":"2.0","id":"mcpmw-unsubscribe-1","result":{}})").to_clients,
      IsEmpty());
  EXPECT_THAT(mux.FromWorker(updated).to_clients, IsEmpty());
  EXPECT_EQ(mux.WorkerInFlight(), 0u);
}

TEST(SessionMux, RefusedSubscribeIsNotCounted) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  mux.FromClient(
      a, R"({"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"u:1"}})");
  EXPECT_EQ(mux.Counts(a)->subscriptions, 1u);
  mux.FromWorker(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"no"}})");
  EXPECT_EQ(mux.Counts(a)->subscriptions, 0u);
  EXPECT_THAT(mux.CloseSession(a).to_worker, IsEmpty());
}

TEST(SessionMux, WorkerExitAnswersEveryRequestInFlightAndRefusesNewOnes) {
  SessionMux mux;
  SessionId a = mux.OpenSession();
  mux.FromClient(a, R"({"jsonrpc":"2.0","id":"q","method":"tools/call","params":{}})");
  MuxOutput exited = mux.WorkerExited("signal 9 (Killed)");
  EXPECT_THAT(
      ToClients(exited),
      ElementsAre(Pair(
          a,
          R"json({"jsonrpc":"2.0","id":"q","error":{"code":-32000,"message":"The shared MCP server exited (signal 9 (Killed)) while this request was in flight; it was not completed. Retry if the call is idempotent","data":{"reason":"server-exited","retryable":true,"detail":"signal 9 (Killed)"}}})json")));
  EXPECT_EQ(mux.TotalInFlight(), 0u);
  MuxOutput after = mux.FromClient(a, R"({"jsonrpc":"2.0","id":2,"method":"x"})");
  EXPECT_THAT(after.to_worker, IsEmpty());
  ASSERT_EQ(after.to_clients.size(), 1u);
  EXPECT_THAT(after.to_clients[0].line, ::testing::HasSubstr(R"("code":-32001)"));
}

}  // namespace
}  // namespace mcpmw::proxy
