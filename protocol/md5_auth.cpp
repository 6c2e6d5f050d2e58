#include "protocol/md5_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace sluice::protocol {
namespace {

constexpr std::string_view md5_prefix = "md5";

// "md5" + lowercase hex of md5(first + second).
std::string md5_hex(std::string_view first, std::string_view second) {
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), first.data(), first.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), second.data(), second.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &digest_length) != 1) {
    // Only on allocation failure or an OpenSSL build without MD5 (FIPS): not a client's fault.
    throw std::runtime_error("OpenSSL MD5 digest failed");
  }
  static constexpr char hex_digits[] = "0123456789abcdef";
  std::string out(md5_prefix);
  out.reserve(md5_prefix.size() + 2 * digest_length);
  for (unsigned int i = 0; i < digest_length; ++i) {
    out.push_back(hex_digits[digest[i] >> 4]);
    out.push_back(hex_digits[digest[i] & 0x0f]);
  }
  return out;
}

}  // namespace

std::string md5_password_hash(std::string_view password, std::string_view user) {
  return md5_hex(password, user);
}

std::string md5_salted_response(std::string_view md5_hash, std::span<const char, 4> salt) {
  if (md5_hash.starts_with(md5_prefix)) md5_hash.remove_prefix(md5_prefix.size());
  return md5_hex(md5_hash, std::string_view(salt.data(), salt.size()));
}

bool md5_response_matches(std::string_view response, std::string_view md5_hash,
                          std::span<const char, 4> salt) {
  const std::string expected = md5_salted_response(md5_hash, salt);
  return response.size() == expected.size() &&
         CRYPTO_memcmp(response.data(), expected.data(), expected.size()) == 0;
}

}  // namespace sluice::protocol
