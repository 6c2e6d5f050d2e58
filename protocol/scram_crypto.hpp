#pragma once

#include <array>
#include <string_view>

// The SCRAM-SHA-256 key derivations of RFC 5802 section 3 with H = SHA-256 (RFC 7677), over
// OpenSSL primitives. Both fsms and the verifier share them so the two sides cannot drift apart.
//   SaltedPassword  = Hi(password, salt, i)            (PBKDF2-HMAC-SHA-256)
//   ClientKey       = HMAC(SaltedPassword, "Client Key")
//   StoredKey       = H(ClientKey)
//   ServerKey       = HMAC(SaltedPassword, "Server Key")
//   ClientSignature = HMAC(StoredKey, AuthMessage),  ClientProof = ClientKey XOR ClientSignature
//   ServerSignature = HMAC(ServerKey, AuthMessage)
// OpenSSL failing here means allocation failure or a broken build, not bad input, so these throw
// std::runtime_error rather than return an error code.

namespace sluice::protocol {

using scram_key = std::array<unsigned char, 32>;

// Note: PostgreSQL runs the password through SASLprep first; this uses the bytes as given, which
// is the same for ASCII and for passwords already in SASLprep normal form.
scram_key scram_salted_password(std::string_view password, std::string_view salt, int iterations);
scram_key scram_hmac(const scram_key& key, std::string_view data);
scram_key scram_sha256(const scram_key& data);
scram_key scram_client_key(const scram_key& salted_password);
scram_key scram_server_key(const scram_key& salted_password);
scram_key scram_xor(const scram_key& a, const scram_key& b);
// Constant time: how long a proof check takes must not reveal how much of it matched.
bool scram_keys_equal(const scram_key& a, const scram_key& b);

std::string_view scram_key_bytes(const scram_key& key);

}  // namespace sluice::protocol
