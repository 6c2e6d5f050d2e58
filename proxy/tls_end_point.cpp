#include "proxy/tls_end_point.hpp"

#include <openssl/evp.h>
#include <openssl/objects.h>

namespace sluice::proxy {

std::optional<std::string> tls_server_end_point(const X509* certificate) {
  if (certificate == nullptr) return std::nullopt;
  int digest_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(certificate), &digest_nid, nullptr))
    return std::nullopt;
  const EVP_MD* digest = nullptr;
  switch (digest_nid) {
    case NID_md5:
    case NID_sha1:
      digest = EVP_sha256();  // RFC 5929 section 4.1
      break;
    default:
      digest = EVP_get_digestbynid(digest_nid);
      break;
  }
  if (digest == nullptr) return std::nullopt;
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!X509_digest(certificate, digest, hash, &length)) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(hash), length);
}

}  // namespace sluice::proxy
