#include "protocol/random.hpp"

#include <openssl/rand.h>

#include <climits>
#include <stdexcept>

namespace sluice::protocol {

void random_bytes(std::span<char> out) {
  auto* data = reinterpret_cast<unsigned char*>(out.data());
  std::size_t left = out.size();
  while (left > 0) {
    const int chunk = left > INT_MAX ? INT_MAX : static_cast<int>(left);
    if (RAND_bytes(data, chunk) != 1) throw std::runtime_error("RAND_bytes failed");
    data += chunk;
    left -= static_cast<std::size_t>(chunk);
  }
}

}  // namespace sluice::protocol
