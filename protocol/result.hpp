#pragma once

#include <cassert>
#include <system_error>

#include "protocol/errc.hpp"

namespace sluice::protocol {

// A value or an error code. Parsers return this instead of throwing: a bad byte from a client is
// an expected event, not an exceptional one, and [[nodiscard]] makes ignoring it a warning.
// Construct success with result<T>{value} and failure with make_failure<T>(errc).
template <class T>
struct [[nodiscard]] result {
  T value{};
  std::error_code error{};

  explicit operator bool() const { return !error; }

  const T& operator*() const {
    assert(!error);
    return value;
  }
  T& operator*() {
    assert(!error);
    return value;
  }
  const T* operator->() const {
    assert(!error);
    return &value;
  }
  T* operator->() {
    assert(!error);
    return &value;
  }
};

template <class T>
result<T> make_failure(std::error_code error) {
  return result<T>{T{}, error};
}

template <class T>
result<T> make_failure(errc error) {
  return result<T>{T{}, make_error_code(error)};
}

}  // namespace sluice::protocol
