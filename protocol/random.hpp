#pragma once

#include <span>

namespace sluice::protocol {

// Fills `out` from OpenSSL's CSPRNG (RAND_bytes): salts, SCRAM nonces and cancel keys must be
// unpredictable. Throws std::runtime_error if the CSPRNG cannot deliver, because continuing with
// guessable bytes would be a silent security failure; the session boundary catches it.
void random_bytes(std::span<char> out);

}  // namespace sluice::protocol
