#include "proxy/tls_end_point.hpp"

#include <memory>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <catch2/catch.hpp>

namespace sluice::proxy {
namespace {

struct free_x509 {
  void operator()(X509* x) const { X509_free(x); }
};
struct free_key {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using x509_ptr = std::unique_ptr<X509, free_x509>;
using key_ptr = std::unique_ptr<EVP_PKEY, free_key>;

// A self-signed certificate signed with `digest` (nullptr: none, as Ed25519 needs).
x509_ptr self_signed(EVP_PKEY* key, const EVP_MD* digest) {
  x509_ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sluice"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  REQUIRE(X509_sign(cert.get(), key, digest) > 0);
  return cert;
}

std::string digest_of(const X509* cert, const EVP_MD* digest) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  REQUIRE(X509_digest(cert, digest, hash, &length));
  return std::string(reinterpret_cast<const char*>(hash), length);
}

TEST_CASE("tls-server-end-point hashes with the signature's digest", "[tls][channel_binding]") {
  key_ptr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  const auto* signed_with = GENERATE(EVP_sha256(), EVP_sha384(), EVP_sha512());
  const auto cert = self_signed(key.get(), signed_with);
  const auto hash = tls_server_end_point(cert.get());
  REQUIRE(hash);
  CHECK(*hash == digest_of(cert.get(), signed_with));
  CHECK(hash->size() == static_cast<std::size_t>(EVP_MD_get_size(signed_with)));
}

TEST_CASE("tls-server-end-point uses SHA-256 for MD5 and SHA-1 signatures (RFC 5929 4.1)",
          "[tls][channel_binding]") {
  key_ptr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  const auto cert = self_signed(key.get(), EVP_sha1());
  const auto hash = tls_server_end_point(cert.get());
  REQUIRE(hash);
  CHECK(*hash == digest_of(cert.get(), EVP_sha256()));
}

TEST_CASE("tls-server-end-point is undefined for Ed25519 certificates", "[tls][channel_binding]") {
  key_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(key);
  const auto cert = self_signed(key.get(), nullptr);
  CHECK_FALSE(tls_server_end_point(cert.get()));
  CHECK_FALSE(tls_server_end_point(nullptr));
}

}  // namespace
}  // namespace sluice::proxy
