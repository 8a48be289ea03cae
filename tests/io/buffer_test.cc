#include "src/io/buffer.h"

#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace mcpmw::io {
namespace {

// Writes `bytes` the way a read does: into the tail, then Commit.
void Append(ReadBuffer& buffer, std::string_view bytes) {
  std::span<char> tail = buffer.WritableTail(bytes.size());
  ASSERT_GE(tail.size(), bytes.size());
  std::memcpy(tail.data(), bytes.data(), bytes.size());
  buffer.Commit(bytes.size());
}

TEST(ReadBuffer, StartsEmptyWithTheRequestedCapacity) {
  ReadBuffer buffer(128);
  EXPECT_EQ(buffer.Size(), 0u);
  EXPECT_EQ(buffer.Data(), "");
  EXPECT_EQ(buffer.Capacity(), 128u);
  EXPECT_EQ(buffer.WritableTail(1).size(), 128u);
}

TEST(ReadBuffer, ShowsCommittedBytesInArrivalOrder) {
  ReadBuffer buffer(64);
  Append(buffer, "{\"id\":");
  Append(buffer, "1}\n");
  EXPECT_EQ(buffer.Data(), "{\"id\":1}\n");
  EXPECT_EQ(buffer.Size(), 9u);
}

TEST(ReadBuffer, ConsumeDropsBytesFromTheFrontWithoutMovingTheRest) {
  ReadBuffer buffer(64);
  Append(buffer, "abcdef");
  const char* d = buffer.Data().data();
  buffer.Consume(2);
  EXPECT_EQ(buffer.Data(), "cdef");
  EXPECT_EQ(buffer.Data().data(), d + 2);
}

TEST(ReadBuffer, RestartsAtTheFrontOnceEmptied) {
  ReadBuffer buffer(16);
  Append(buffer, "0123456789");
  const char* front = buffer.Data().data();
  buffer.Consume(10);
  EXPECT_EQ(buffer.Size(), 0u);
  std::span<char> tail = buffer.WritableTail(16);
  EXPECT_EQ(tail.data(), front);
  EXPECT_EQ(tail.size(), 16u);
  EXPECT_EQ(buffer.Capacity(), 16u);  // room again without growing
}

TEST(ReadBuffer, LeavesDataInPlaceWhileTheTailIsLongEnough) {
  ReadBuffer buffer(64);
  Append(buffer, "abcdef");
  buffer.Consume(3);
  const char* d = buffer.Data().data();
  buffer.WritableTail(10);
  EXPECT_EQ(buffer.Data().data(), d);
}

TEST(ReadBuffer, MovesTheUnconsumedBytesToTheFrontWhenTheTailIsShort) {
  ReadBuffer buffer(16);
  Append(buffer, "0123456789abcd");
  const char* front = buffer.Data().data();
  buffer.Consume(10);
  std::span<char> tail = buffer.WritableTail(8);
  EXPECT_EQ(buffer.Data(), "abcd");
  EXPECT_EQ(buffer.Data().data(), front);
  EXPECT_EQ(buffer.Capacity(), 16u);  // compacting was enough
  EXPECT_EQ(tail.size(), 12u);
}

TEST(ReadBuffer, GrowsWhenCompactingIsNotEnough) {
  ReadBuffer buffer(16);
  Append(buffer, "0123456789");
  buffer.Consume(2);
  std::span<char> tail = buffer.WritableTail(100);
  EXPECT_GE(tail.size(), 100u);
  EXPECT_GE(buffer.Capacity(), 108u);
  EXPECT_EQ(buffer.Data(), "23456789");
}

// Reads the kPadding bytes after the data, as simdjson may; under ASan a short allocation fails.
int XorOfPadding(const ReadBuffer& buffer) {
  const char* end = buffer.Data().data() + buffer.Size();
  int x = 0;
  for (size_t i = 0; i < ReadBuffer::kPadding; ++i) {
    x ^= static_cast<unsigned char>(end[i]);
  }
  return x;
}

TEST(ReadBuffer, KeepsPaddingReadableAfterTheData) {
  ReadBuffer buffer(16);
  Append(buffer, std::string(16, 'x'));   // the data runs up to the capacity
  EXPECT_EQ(XorOfPadding(buffer), 0);     // the padding is zeroed
  Append(buffer, std::string(100, 'y'));  // grows to exactly 116
  EXPECT_EQ(buffer.Size(), 116u);
  EXPECT_EQ(buffer.Capacity(), 116u);
  EXPECT_EQ(XorOfPadding(buffer), 0);
}

TEST(ReadBuffer, ClearDropsEverything) {
  ReadBuffer buffer(32);
  Append(buffer, "abc");
  buffer.Clear();
  EXPECT_EQ(buffer.Size(), 0u);
  EXPECT_EQ(buffer.WritableTail(32).size(), 32u);
}

TEST(ReadBuffer, ShrinksBackOnceEmpty) {
  ReadBuffer buffer(16);
  Append(buffer, std::string(1000, 'x'));
  EXPECT_GE(buffer.Capacity(), 1000u);
  buffer.ShrinkTo(16);
  EXPECT_GE(buffer.Capacity(), 1000u);  // still holds data: kept
  EXPECT_EQ(buffer.Size(), 1000u);
  buffer.Consume(1000);
  buffer.ShrinkTo(16);
  EXPECT_EQ(buffer.Capacity(), 16u);
  Append(buffer, "ok");
  EXPECT_EQ(buffer.Data(), "ok");
}

}  // namespace
}  // namespace mcpmw::io
