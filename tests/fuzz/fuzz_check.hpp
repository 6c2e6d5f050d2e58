#pragma once
// What every fuzz target shares: a check that holds in every build (assert() is compiled out of
// RelWithDebInfo, and a fuzz target must fail loudly in all of them), and views of the input.
//
// A failed check prints what broke and aborts: libFuzzer saves the input as a crash, and the
// replay binaries of the ordinary build (replay_main.cpp) die with the same message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace sluice::fuzz {

[[noreturn]] inline void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, condition);
  std::abort();
}

// `inner` lies entirely inside `outer` (decoded views must point into the bytes they came from).
inline bool within(std::span<const char> outer, std::span<const char> inner) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}
inline bool within(std::span<const char> outer, std::string_view inner) {
  return within(outer, std::span<const char>(inner.data(), inner.size()));
}

inline std::span<const char> as_chars(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits the input at its first NUL byte: for targets that take two messages (the two SCRAM
// steps). Without a NUL the second part is empty.
inline std::pair<std::string_view, std::string_view> split_at_nul(std::span<const char> in) {
  const std::string_view all(in.data(), in.size());
  const auto nul = all.find('\0');
  if (nul == std::string_view::npos) return {all, {}};
  return {all.substr(0, nul), all.substr(nul + 1)};
}

}  // namespace sluice::fuzz

#define SLUICE_FUZZ_CHECK(condition) \
  ((condition) ? void(0) : ::sluice::fuzz::check_failed(#condition, __FILE__, __LINE__))
