#pragma once
// A growable byte buffer with a read cursor, shared by the socket readers.
//
// Flow: prepare() gives writable space → the socket fills it → commit(n) makes it readable →
// the relay looks at readable() and consume()s what it forwarded. Compaction moves the unread
// tail to the front only when space runs out, so a steady stream of small messages never copies.
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace sluice::proxy {

class byte_buffer {
 public:
  explicit byte_buffer(std::size_t initial_capacity = 8192) : initial_capacity_(initial_capacity) {}

  std::span<const char> readable() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  // Writable space of at least `min_free` bytes (allocates lazily: idle clients hold nothing).
  std::span<char> prepare(std::size_t min_free) {
    if (capacity_ - end_ < min_free) make_room(min_free);
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) { end_ += n; }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Gives the memory back when nothing is buffered and it holds more than `keep` bytes;
  // called when a client goes idle. A buffer no larger than the idle read it is about to
  // serve is kept: freeing it would only allocate it again at once.
  void shrink_if_empty(std::size_t keep = 0) {
    if (empty() && capacity_ > keep) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  void make_room(std::size_t min_free) {
    const std::size_t live = end_ - begin_;
    std::size_t wanted = live + min_free;
    if (wanted <= capacity_) {  // enough space once the consumed prefix is dropped
      std::memmove(data_.get(), data_.get() + begin_, live);
    } else {
      std::size_t new_capacity = capacity_ == 0 ? initial_capacity_ : capacity_;
      while (new_capacity < wanted) new_capacity *= 2;
      auto fresh = std::make_unique_for_overwrite<char[]>(new_capacity);
      if (live > 0) std::memcpy(fresh.get(), data_.get() + begin_, live);
      data_ = std::move(fresh);
      capacity_ = new_capacity;
    }
    begin_ = 0;
    end_ = live;
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t initial_capacity_;
};

}  // namespace sluice::proxy
