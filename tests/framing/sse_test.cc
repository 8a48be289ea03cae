#include "src/framing/sse.h"

#include <gtest/gtest.h>

namespace mcpmw::framing {
namespace {

TEST(SseEvent, WritesIdThenOneDataLineAndABlankLine) {
  std::string out;
  AppendSseEvent(&out, "7", R"({"jsonrpc":"2.0","id":1,"result":{}})");
  EXPECT_EQ(out, "id: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
}

TEST(SseEvent, SplitsEveryKindOfLineBreakIntoItsOwnDataLine) {
  std::string out;
  AppendSseEvent(&out, "", "a\nb\r\nc\rd");
  EXPECT_EQ(out, "data: a\ndata: b\ndata: c\ndata: d\n\n");
}

TEST(SseEvent, AnEmptyPayloadIsOneEmptyDataLineWithRetry) {
  std::string out;
  AppendSseEvent(&out, "s1-0", "", "", 1500);
  EXPECT_EQ(out, "id: s1-0\nretry: 1500\ndata: \n\n");
}

TEST(SseEvent, NamesTheEventWhenGiven) {
  std::string out;
  AppendSseEvent(&out, "", "x", "message");
  EXPECT_EQ(out, "event: message\ndata: x\n\n");
}

TEST(SseComment, IsAColonLineFollowedByABlankLine) {
  std::string out;
  AppendSseComment(&out, "keep-alive");
  EXPECT_EQ(out, ": keep-alive\n\n");
}

}  // namespace
}  // namespace mcpmw::framing
