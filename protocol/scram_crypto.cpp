#include "protocol/scram_crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <climits>
#include <stdexcept>

namespace sluice::protocol {

scram_key scram_salted_password(std::string_view password, std::string_view salt, int iterations) {
  if (password.size() > INT_MAX || salt.size() > INT_MAX || iterations < 1) {
    throw std::invalid_argument("scram_salted_password: argument out of range");
  }
  scram_key out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  }
  return out;
}

scram_key scram_hmac(const scram_key& key, std::string_view data) {
  scram_key out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    throw std::runtime_error("HMAC-SHA-256 failed");
  }
  return out;
}

scram_key scram_sha256(const scram_key& data) {
  scram_key out{};
  if (SHA256(data.data(), data.size(), out.data()) == nullptr) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

scram_key scram_client_key(const scram_key& salted_password) {
  return scram_hmac(salted_password, "Client Key");
}

scram_key scram_server_key(const scram_key& salted_password) {
  return scram_hmac(salted_password, "Server Key");
}

scram_key scram_xor(const scram_key& a, const scram_key& b) {
  scram_key out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

bool scram_keys_equal(const scram_key& a, const scram_key& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view scram_key_bytes(const scram_key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

}  // namespace sluice::protocol
