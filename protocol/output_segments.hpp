#pragma once
// Bytes to write, in order, as a gather list: views into the input buffer (forwarded as they
// are, never copied) and bytes sluice wrote itself (rewritten or synthesized messages), kept in
// one arena so a batch costs no allocation once the arena has grown.
//
// Flow: the relay clears it, the fsms append views and owned bytes while walking a buffer, the
// relay turns it into a buffer sequence for one gathered write, then consumes the input.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace sluice::protocol {

class output_segments {
 public:
  struct segment {
    const char* view;    // non-null: bytes of the input buffer
    std::size_t offset;  // view == nullptr: offset into the arena
    std::size_t size;
  };

  void clear() {
    segments_.clear();
    arena_.clear();
  }
  bool empty() const { return segments_.empty(); }

  // Forwards input bytes; adjacent views are merged so a plain relay stays one segment.
  void add_view(std::span<const char> bytes) {
    if (bytes.empty()) return;
    if (!segments_.empty()) {
      auto& last = segments_.back();
      if (last.view != nullptr && last.view + last.size == bytes.data()) {
        last.size += bytes.size();
        return;
      }
    }
    segments_.push_back({bytes.data(), 0, bytes.size()});
  }

  // Builders append to arena(); owned_from(start) then turns what they appended into a segment.
  std::string& arena() { return arena_; }
  std::size_t arena_capacity() const { return arena_.capacity(); }
  void owned_from(std::size_t start) {
    if (arena_.size() == start) return;
    if (!segments_.empty()) {
      auto& last = segments_.back();
      if (last.view == nullptr && last.offset + last.size == start) {
        last.size += arena_.size() - start;
        return;
      }
    }
    segments_.push_back({nullptr, start, arena_.size() - start});
  }

  // Resolves the segments once the arena stops growing: call just before writing.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : segments_)
      f(s.view != nullptr ? s.view : arena_.data() + s.offset, s.size);
  }

  std::size_t total_size() const {
    std::size_t n = 0;
    for (const auto& s : segments_) n += s.size;
    return n;
  }

 private:
  std::vector<segment> segments_;
  std::string arena_;
};

}  // namespace sluice::protocol
