#include "src/framing/framer.h"

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::framing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The Framer's limit on a Content-Length header block (framer.cc), blank line included.
constexpr size_t kMaxHeaderBytes = size_t{8} * 1024;

struct Event {
  FrameStatus status;
  std::string payload;  // kFrame only
  bool operator==(const Event&) const = default;
};

void PrintTo(const Event& e, std::ostream* os) {
  switch (e.status) {
    case FrameStatus::kFrame:
      *os << "Frame(\"" << e.payload << "\")";
      return;
    case FrameStatus::kNeedMore:
      *os << "NeedMore";
      return;
    case FrameStatus::kOversized:
      *os << "Oversized";
      return;
    case FrameStatus::kMalformedHeader:
      *os << "MalformedHeader";
      return;
  }
}

Event Frame(std::string payload) { return {FrameStatus::kFrame, std::move(payload)}; }
Event Oversized() { return {FrameStatus::kOversized, {}}; }
Event MalformedHeader() { return {FrameStatus::kMalformedHeader, {}}; }

// Calls Next() as a reader does: drops `consumed` bytes from the front of `buffer` after each
// result, until a kNeedMore that consumed nothing. Returns the events, kNeedMore left out.
std::vector<Event> Drain(Framer& framer, std::string& buffer) {
  std::vector<Event> events;
  for (int calls = 0; calls < 10'000; ++calls) {
    FrameResult r = framer.Next(buffer);
    if (r.status != FrameStatus::kNeedMore) {
      events.push_back({r.status, std::string(r.status == FrameStatus::kFrame ? r.payload : "")});
    }
    buffer.erase(0, r.consumed);
    if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
      return events;
    }
  }
  ADD_FAILURE() << "Next() never asked for more";
  return events;
}

// Feeds `stream` one byte per read, draining after each.
std::vector<Event> DrainByteByByte(Framer& framer, std::string_view stream, std::string& buffer) {
  std::vector<Event> events;
  for (char c : stream) {
    buffer.push_back(c);
    for (Event& e : Drain(framer, buffer)) {
      events.push_back(std::move(e));
    }
  }
  return events;
}

TEST(Framer, DeliversOneNdjsonMessagePerLine) {
  Framer framer(1024);
  std::string buffer = "{\"id\":1}\n{\"id\":2}\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{\"id\":1}"), Frame("{\"id\":2}")));
  EXPECT_EQ(framer.framing(), Framing::kNdjson);
  EXPECT_THAT(buffer, IsEmpty());
}

TEST(Framer, ReturnsViewsIntoTheCallersData) {
  Framer framer(1024);
  std::string_view data = "{\"a\":1}\r\nrest";
  FrameResult r = framer.Next(data);
  ASSERT_EQ(r.status, FrameStatus::kFrame);
  EXPECT_EQ(r.payload.data(), data.data());
  EXPECT_EQ(r.wire, "{\"a\":1}\r\n");
  EXPECT_EQ(r.wire.data(), data.data());
  EXPECT_EQ(r.consumed, 9u);
}

TEST(Framer, StripsTheCrOfCrlfLineEnds) {
  Framer framer(1024);
  std::string buffer = "{\"id\":1}\r\n{\"id\":2}\r\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{\"id\":1}"), Frame("{\"id\":2}")));
}

TEST(Framer, DropsBlankLinesBetweenMessages) {
  Framer framer(1024);
  std::string buffer = "\n\r\n{\"id\":1}\n\n  \t\r\n\n{\"id\":2}\n\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{\"id\":1}"), Frame("{\"id\":2}")));
  EXPECT_EQ(framer.PendingBytes(buffer), 0u);
}

TEST(Framer, WaitsPastLeadingBlanksBeforeDetecting) {
  Framer framer(1024);
  FrameResult r = framer.Next("\r\n \n");
  EXPECT_EQ(r.status, FrameStatus::kNeedMore);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(framer.framing(), Framing::kUnknown);
}

TEST(Framer, DetectsNdjsonFromAnyOtherFirstByte) {
  Framer framer(1024);
  std::string buffer = "  [1,2]\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("[1,2]")));
  EXPECT_EQ(framer.framing(), Framing::kNdjson);
}

TEST(Framer, DetectsContentLengthFromTheHeaderName) {
  Framer upper(1024);
  upper.Next("Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(upper.framing(), Framing::kContentLength);
  Framer lower(1024);
  lower.Next("\r\ncontent-length: 2\r\n\r\n{}");
  EXPECT_EQ(lower.framing(), Framing::kContentLength);
}

TEST(Framer, KeepsAForcedFramingWithoutDetecting) {
  Framer framer(1024, Framing::kNdjson);
  std::string buffer = "Content-Length: 2\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("Content-Length: 2")));
  EXPECT_EQ(framer.framing(), Framing::kNdjson);
}

TEST(Framer, ReadsContentLengthFrames) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 8\r\n\r\n{\"id\":1}Content-Length: 2\r\n\r\n{}";
  FrameResult first = framer.Next(buffer);
  ASSERT_EQ(first.status, FrameStatus::kFrame);
  EXPECT_EQ(first.payload, "{\"id\":1}");
  EXPECT_EQ(first.wire, "Content-Length: 8\r\n\r\n{\"id\":1}");
  EXPECT_EQ(first.consumed, first.wire.size());
  buffer.erase(0, first.consumed);
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}")));
}

TEST(Framer, IgnoresOtherHeadersAroundContentLength) {
  Framer framer(1024);
  std::string buffer =
      "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
      "Content-Length: 2\r\n"
      "X-Trace: a:b:c\r\n"
      "\r\n"
      "{}";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}")));
}

TEST(Framer, MatchesTheContentLengthNameInAnyCase) {
  Framer framer(1024);
  std::string buffer =
      "CONTENT-LENGTH: 2\r\n\r\n{}"
      "content-length:3\r\n\r\n[1]"
      "cOnTeNt-LeNgTh :  1 \r\n\r\n7";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}"), Frame("[1]"), Frame("7")));
}

TEST(Framer, AcceptsABareLfBlankLineAfterHeaders) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 2\n\n{}Content-Length: 3\n\r\n[1]";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}"), Frame("[1]")));
}

TEST(Framer, DropsBlankLinesBetweenContentLengthFrames) {
  Framer framer(1024);
  std::string buffer = "\r\nContent-Length: 2\r\n\r\n{}\r\n\r\nContent-Length: 2\r\n\r\n[]\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}"), Frame("[]")));
  EXPECT_EQ(framer.PendingBytes(buffer), 0u);
}

TEST(Framer, AssemblesAnNdjsonFrameFedOneByteAtATime) {
  Framer framer(1024);
  std::string buffer;
  EXPECT_THAT(DrainByteByByte(framer, "{\"method\":\"ping\"}\r\n\n{\"id\":2}\n", buffer),
              ElementsAre(Frame("{\"method\":\"ping\"}"), Frame("{\"id\":2}")));
}

TEST(Framer, AssemblesAContentLengthFrameFedOneByteAtATime) {
  Framer framer(1024);
  std::string buffer;
  EXPECT_THAT(
      DrainByteByByte(framer, "Content-Length: 8\r\n\r\n{\"id\":1}Content-Length: 2\n\n{}", buffer),
      ElementsAre(Frame("{\"id\":1}"), Frame("{}")));
}

TEST(Framer, WantsTheWholeFrameOnceItsHeaderHasArrived) {
  Framer framer(1024);
  std::string_view header = "Content-Length: 100\r\n\r\n";
  std::string buffer(header.substr(0, 11));
  FrameResult r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kNeedMore);
  EXPECT_EQ(framer.BytesWanted(), 0u);  // the length is not known yet
  buffer = std::string(header) + "{\"partial\":";
  r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kNeedMore);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(framer.BytesWanted(), header.size() + 100);
}

TEST(Framer, SkipsAnOversizedNdjsonLineAndDeliversTheNext) {
  Framer framer(16);
  std::string buffer = "{\"text\":\"far more than sixteen bytes\"}\n{\"id\":2}\n";
  FrameResult r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kOversized);
  EXPECT_EQ(r.frame_bytes, 38u);
  EXPECT_EQ(r.consumed, 39u);
  buffer.erase(0, r.consumed);
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{\"id\":2}")));
}

TEST(Framer, DropsAnOversizedNdjsonLineBeforeItsEndArrives) {
  Framer framer(16);
  std::string buffer(19, 'x');  // over the bound (max + 2 for a CRLF), and no LF yet
  FrameResult r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kOversized);
  EXPECT_EQ(r.consumed, 19u);
  buffer.clear();
  // The rest of the line is dropped as it comes, without being held.
  buffer = std::string(1000, 'x');
  r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kNeedMore);
  EXPECT_EQ(r.consumed, 1000u);
  buffer = "xx\n{\"id\":2}\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{\"id\":2}")));
}

TEST(Framer, HoldsALineThatMayStillEndInCrlf) {
  Framer framer(16);
  std::string buffer(16, '1');
  buffer += "\r";
  EXPECT_THAT(Drain(framer, buffer), IsEmpty());
  EXPECT_EQ(buffer.size(), 17u);
  buffer += "\n";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame(std::string(16, '1'))));
}

// Regression (shown by fuzz/framer_fuzzer's split feed): blanks in front of a line counted against
// its size when the LF had not arrived yet, so the same stream framed differently depending on
// reads.
TEST(Framer, DoesNotCountBlanksBeforeALineAgainstItsSize) {
  const std::string stream = "{}\n" + std::string(40, ' ') + "{\"id\":2}\n";
  Framer whole(16);
  std::string buffer = stream;
  EXPECT_THAT(Drain(whole, buffer), ElementsAre(Frame("{}"), Frame("{\"id\":2}")));
  Framer split(16);
  buffer = stream.substr(0, 30);  // padding, no LF yet
  EXPECT_THAT(Drain(split, buffer), ElementsAre(Frame("{}")));
  buffer += stream.substr(30);
  EXPECT_THAT(Drain(split, buffer), ElementsAre(Frame("{\"id\":2}")));
}

// Regression (shown by fuzz/framer_fuzzer's split feed): a line whose trailing blanks take it past
// max + 2 was a frame when its LF came in the same read, and oversized when the LF came later.
TEST(Framer, TreatsALinePaddedPastTheBoundAsOversizedInAnyRead) {
  const std::string stream = "{}" + std::string(40, ' ') + "\n{\"id\":2}\n";
  Framer whole(16);
  std::string buffer = stream;
  EXPECT_THAT(Drain(whole, buffer), ElementsAre(Oversized(), Frame("{\"id\":2}")));
  Framer split(16);
  buffer.clear();
  EXPECT_THAT(DrainByteByByte(split, stream, buffer),
              ElementsAre(Oversized(), Frame("{\"id\":2}")));
}

TEST(Framer, SkipsAnOversizedContentLengthBodyWithoutHoldingIt) {
  Framer framer(1024);
  constexpr size_t kBody = 1'000'000;
  constexpr size_t kChunk = 4096;
  std::string buffer = "Content-Length: 1000000\r\n\r\n";
  FrameResult r = framer.Next(buffer);
  ASSERT_EQ(r.status, FrameStatus::kOversized);
  EXPECT_EQ(r.frame_bytes, kBody);
  EXPECT_EQ(r.consumed, buffer.size());
  buffer.clear();
  // The body arrives in reads; each is dropped whole, so the buffer never holds more than one.
  size_t dropped = 0;
  while (dropped < kBody) {
    buffer.append(std::min(kChunk, kBody - dropped), 'x');
    r = framer.Next(buffer);
    ASSERT_EQ(r.status, FrameStatus::kNeedMore);
    ASSERT_EQ(r.consumed, buffer.size());
    dropped += r.consumed;
    buffer.clear();
  }
  EXPECT_EQ(dropped, kBody);
  buffer = "Content-Length: 2\r\n\r\n{}";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Frame("{}")));
}

TEST(Framer, StopsSkippingAtTheEndOfTheOversizedBody) {
  Framer framer(4);
  std::string buffer = "Content-Length: 5\r\n\r\n[1,2]Content-Length: 2\r\n\r\n{}";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(Oversized(), Frame("{}")));
}

TEST(Framer, ReportsAHeaderWhoseLengthIsNotANumber) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 12abc\r\n\r\n";
  FrameResult r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kMalformedHeader);
  EXPECT_EQ(r.consumed, buffer.size());
}

TEST(Framer, ReportsAHeaderBlockWithoutContentLength) {
  Framer framer(1024);
  std::string buffer = "Content-Type: application/json\r\n\r\nContent-Length: 2\r\n\r\n{}";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(MalformedHeader(), Frame("{}")));
}

TEST(Framer, ReportsALengthTooLargeForSixtyFourBits) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 18446744073709551616\r\n\r\nContent-Length: 2\r\n\r\n{}";
  EXPECT_THAT(Drain(framer, buffer), ElementsAre(MalformedHeader(), Frame("{}")));
}

// Regression (shown by fuzz/framer_fuzzer's split feed): the verdict was taken on however many
// bytes had arrived, and everything that had arrived was dropped.
TEST(Framer, GivesUpOnAHeaderBlockThatNeverEnds) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 2\r\nX-Pad: " + std::string(kMaxHeaderBytes, 'a');
  FrameResult r = framer.Next(buffer.substr(0, kMaxHeaderBytes - 1));
  EXPECT_EQ(r.status, FrameStatus::kNeedMore);
  r = framer.Next(buffer);
  EXPECT_EQ(r.status, FrameStatus::kMalformedHeader);
  // It drops exactly the header window, however much has arrived behind it.
  EXPECT_EQ(r.consumed, kMaxHeaderBytes);
}

TEST(Framer, ReportsNothingPendingAtACleanEnd) {
  Framer framer(1024);
  std::string buffer = "{\"id\":1}\n\r\n  ";
  Drain(framer, buffer);
  EXPECT_EQ(framer.PendingBytes(buffer), 0u);
}

TEST(Framer, ReportsTheBytesOfAnUnfinishedNdjsonFrame) {
  Framer framer(1024);
  std::string buffer = "{\"id\":1}\n{\"id\":";
  Drain(framer, buffer);
  EXPECT_EQ(framer.PendingBytes(buffer), 6u);
}

TEST(Framer, ReportsTheBytesOfAnUnfinishedContentLengthFrame) {
  Framer framer(1024);
  std::string buffer = "Content-Length: 10\r\n\r\n{\"a\"";
  Drain(framer, buffer);
  EXPECT_EQ(framer.PendingBytes(buffer), buffer.size());
}

TEST(AppendFramed, AppendsAnNdjsonLine) {
  std::string out = "{\"id\":1}\n";
  AppendFramed(Framing::kNdjson, "{\"id\":2}", &out);
  EXPECT_EQ(out, "{\"id\":1}\n{\"id\":2}\n");
}

TEST(AppendFramed, ReplacesCrAndLfWithSpacesForNdjson) {
  std::string out;
  AppendFramed(Framing::kNdjson, "{\r\n  \"id\": 1\n}", &out);
  EXPECT_EQ(out, "{    \"id\": 1 }\n");
}

TEST(AppendFramed, FramesAsNdjsonWhenTheFramingIsUnknown) {
  std::string out;
  AppendFramed(Framing::kUnknown, "{}", &out);
  EXPECT_EQ(out, "{}\n");
}

TEST(AppendFramed, PrefixesAContentLengthHeaderAndKeepsTheBytes) {
  std::string out = "x";
  AppendFramed(Framing::kContentLength, "{\"a\":\"\n\"}", &out);
  EXPECT_EQ(out, "xContent-Length: 9\r\n\r\n{\"a\":\"\n\"}");
}

TEST(AppendFramed, ProducesWhatTheFramerReadsBack) {
  for (Framing framing : {Framing::kNdjson, Framing::kContentLength}) {
    std::string stream;
    AppendFramed(framing, "{\"id\":1}", &stream);
    AppendFramed(framing, "{\"id\":2}", &stream);
    Framer framer(1024);
    EXPECT_THAT(Drain(framer, stream), ElementsAre(Frame("{\"id\":1}"), Frame("{\"id\":2}")));
    EXPECT_EQ(framer.framing(), framing);
  }
}

TEST(ContentLengthHeader, WritesTheLengthAndTheBlankLine) {
  EXPECT_EQ(ContentLengthHeader(0), "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(ContentLengthHeader(123456), "Content-Length: 123456\r\n\r\n");
}

TEST(FramingName, NamesEachFraming) {
  EXPECT_EQ(FramingName(Framing::kNdjson), "ndjson");
  EXPECT_EQ(FramingName(Framing::kContentLength), "content-length");
  EXPECT_EQ(FramingName(Framing::kUnknown), "auto");
}

}  // namespace
}  // namespace mcpmw::framing
