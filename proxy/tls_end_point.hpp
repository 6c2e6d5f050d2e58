#pragma once
// The channel-binding data of type tls-server-end-point (RFC 5929 section 4.1): the hash of
// the server's certificate, with the hash function of the certificate's signature, except
// that MD5 and SHA-1 become SHA-256. What SCRAM-SHA-256-PLUS binds the login to, computed as
// PostgreSQL's be_tls_get_certificate_hash() does.
#include <optional>
#include <string>

#include <openssl/x509.h>

namespace sluice::proxy {

// nullopt when the signature's hash cannot be told (e.g. Ed25519 certificates, for which
// RFC 5929 defines nothing): then channel binding is not offered.
std::optional<std::string> tls_server_end_point(const X509* certificate);

}  // namespace sluice::proxy
