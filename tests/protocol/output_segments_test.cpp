#include "protocol/output_segments.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

namespace sluice::protocol {
namespace {

// Every segment, resolved, in the order for_each gives them.
std::vector<std::string> pieces(const output_segments& out) {
  std::vector<std::string> result;
  out.for_each([&](const char* data, std::size_t size) { result.emplace_back(data, size); });
  return result;
}

std::string joined(const output_segments& out) {
  std::string result;
  out.for_each([&](const char* data, std::size_t size) { result.append(data, size); });
  return result;
}

std::span<const char> slice(const std::string& s, std::size_t from, std::size_t n) {
  return std::span<const char>(s.data(), s.size()).subspan(from, n);
}

TEST_CASE("output_segments: starts empty", "[protocol][output_segments]") {
  output_segments out;
  CHECK(out.empty());
  CHECK(out.total_size() == 0);
  CHECK(pieces(out).empty());
}

TEST_CASE("output_segments: adjacent views merge into one segment", "[protocol][output_segments]") {
  const std::string input = "abcdefghij";
  output_segments out;
  out.add_view(slice(input, 0, 3));
  out.add_view(slice(input, 3, 4));
  out.add_view(slice(input, 7, 3));
  CHECK(pieces(out) == std::vector<std::string>{"abcdefghij"});
  CHECK(out.total_size() == input.size());
  CHECK_FALSE(out.empty());
}

TEST_CASE("output_segments: a view is the input's bytes, not a copy",
          "[protocol][output_segments]") {
  const std::string input = "abcdef";
  output_segments out;
  out.add_view(slice(input, 1, 3));
  std::vector<const char*> starts;
  out.for_each([&](const char* data, std::size_t) { starts.push_back(data); });
  REQUIRE(starts.size() == 1);
  CHECK(starts[0] == input.data() + 1);
}

TEST_CASE("output_segments: a gap between views keeps them apart", "[protocol][output_segments]") {
  const std::string input = "abcdefghij";
  output_segments out;
  out.add_view(slice(input, 0, 3));
  out.add_view(slice(input, 5, 2));  // bytes 3..4 dropped
  out.add_view(slice(input, 7, 3));  // adjacent to the previous one
  CHECK(pieces(out) == std::vector<std::string>{"abc", "fghij"});
}

TEST_CASE("output_segments: views out of order are not merged", "[protocol][output_segments]") {
  const std::string input = "abcdef";
  output_segments out;
  out.add_view(slice(input, 3, 3));
  out.add_view(slice(input, 0, 3));  // ends where the previous one starts: not a continuation
  CHECK(pieces(out) == std::vector<std::string>{"def", "abc"});
}

TEST_CASE("output_segments: empty views and empty owned bytes add nothing",
          "[protocol][output_segments]") {
  const std::string input = "abc";
  output_segments out;
  out.add_view(slice(input, 1, 0));
  CHECK(out.empty());
  out.owned_from(out.arena().size());
  CHECK(out.empty());
  out.add_view(slice(input, 0, 3));
  out.owned_from(out.arena().size());
  CHECK(pieces(out) == std::vector<std::string>{"abc"});
}

TEST_CASE("output_segments: owned bytes interleave with views in order",
          "[protocol][output_segments]") {
  const std::string input = "0123456789";
  output_segments out;
  out.add_view(slice(input, 0, 2));
  auto start = out.arena().size();
  out.arena() += "AB";
  out.owned_from(start);
  out.add_view(slice(input, 2, 3));  // adjacent to the first view, but an owned segment is between
  start = out.arena().size();
  out.arena() += "C";
  out.owned_from(start);
  start = out.arena().size();
  out.arena() += "DE";
  out.owned_from(start);  // adjacent owned bytes merge
  out.add_view(slice(input, 8, 2));
  CHECK(pieces(out) == std::vector<std::string>{"01", "AB", "234", "CDE", "89"});
  CHECK(joined(out) == "01AB234CDE89");
  CHECK(out.total_size() == 12);
}

TEST_CASE("output_segments: owned bytes resolve after the arena grows",
          "[protocol][output_segments]") {
  output_segments out;
  auto start = out.arena().size();
  out.arena() += "first";
  out.owned_from(start);
  const std::string input = "|";
  out.add_view(slice(input, 0, 1));
  // Enough to reallocate the arena: segments hold offsets, not pointers.
  start = out.arena().size();
  out.arena() += std::string(10000, 'x');
  out.owned_from(start);
  const auto got = pieces(out);
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "first");
  CHECK(got[1] == "|");
  CHECK(got[2] == std::string(10000, 'x'));
}

TEST_CASE("output_segments: clear empties segments and arena", "[protocol][output_segments]") {
  const std::string input = "abc";
  output_segments out;
  out.add_view(slice(input, 0, 3));
  out.arena() += "xyz";
  out.owned_from(0);
  out.clear();
  CHECK(out.empty());
  CHECK(out.total_size() == 0);
  CHECK(out.arena().empty());
  // Reusable: nothing of the earlier batch leaks into the next.
  out.arena() += "new";
  out.owned_from(0);
  CHECK(pieces(out) == std::vector<std::string>{"new"});
}

}  // namespace
}  // namespace sluice::protocol
