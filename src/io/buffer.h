// mcpmw io: the read buffer that framing slices frames out of.
//
// One ReadBuffer per input stream. Reads land in its tail; the framer hands out frames as
// string_views into it (zero-copy). Only the bytes of a frame that is still incomplete when the
// buffer's tail runs out are moved, once, to the front (Compact). kPadding readable bytes always
// follow the data so a frame can be handed to simdjson On-Demand in place.
//
// Not thread-safe; owned by one session on one reactor.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace mcpmw::io {

class ReadBuffer {
 public:
  // Readable slack after the data; at least simdjson's SIMDJSON_PADDING (checked in jsonrpc).
  static constexpr size_t kPadding = 64;

  explicit ReadBuffer(size_t initial_capacity = 64 * 1024) { Grow(initial_capacity); }

  // Unconsumed bytes, in arrival order.
  std::string_view Data() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t Size() const { return end_ - begin_; }
  size_t Capacity() const { return capacity_; }

  // Drops `n` bytes from the front. Their memory is not reused until Recycle() or a
  // WritableTail() that has to make room, so views into them stay valid until then.
  void Consume(size_t n) { begin_ += n; }

  // When everything was consumed, starts the next read at the front again. Invalidates views.
  void Recycle() {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }

  // Free bytes after the data, usable without moving anything.
  size_t TailRoom() const { return capacity_ - end_; }

  // Free space at the tail for the next read. When the tail is shorter than `min_free`, moves the
  // unconsumed bytes to the front and, if that is not enough, grows the buffer — geometrically,
  // so one large frame costs amortised O(size) copies, and never past `max_capacity` when set
  // (the tail is then what is left). Invalidates views when it moves anything.
  std::span<char> WritableTail(size_t min_free, size_t max_capacity = SIZE_MAX) {
    if (capacity_ - end_ < min_free) {
      Compact();
      if (capacity_ - end_ < min_free && capacity_ < max_capacity) {
        size_t target = std::max(end_ + min_free, capacity_ * 2);
        Grow(std::min(target, std::max(max_capacity, end_ + 1)));
      }
    }
    return {data_.get() + end_, capacity_ - end_};
  }

  // Records that `n` bytes were written into the span WritableTail() returned.
  void Commit(size_t n) { end_ += n; }

  // Drops everything (used when skipping an oversized frame).
  void Clear() { begin_ = end_ = 0; }

  // Releases memory grown for one large frame once the buffer is empty again.
  void ShrinkTo(size_t capacity) {
    if (Size() == 0 && capacity_ > capacity) {
      data_.reset();
      capacity_ = 0;
      Grow(capacity);
    }
  }

 private:
  void Compact() {
    if (begin_ == 0) {
      return;
    }
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  void Grow(size_t capacity) {
    std::unique_ptr<char[]> next(new char[capacity + kPadding]);
    if (data_) {
      std::memcpy(next.get(), data_.get() + begin_, end_ - begin_);
    }
    std::memset(next.get() + capacity, 0, kPadding);
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(next);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace mcpmw::io
