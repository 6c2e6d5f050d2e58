#pragma once

#include <array>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace sluice::protocol {

// What a server keeps to check SCRAM-SHA-256 logins without knowing the password, in the text
// form PostgreSQL stores in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// https://www.postgresql.org/docs/15/catalog-pg-authid.html
struct scram_verifier {
  int iterations;
  std::string salt;  // Raw bytes.
  std::array<unsigned char, 32> stored_key, server_key;
};

// errc::malformed for anything that is not exactly the form above (other mechanisms, MD5 hashes,
// bad base64, keys that are not 32 bytes, iterations < 1).
result<scram_verifier> parse_scram_verifier(std::string_view text);

// Derives the verifier from a plain password, as PostgreSQL's scram_build_secret does (except for
// SASLprep, see scram_crypto.hpp). `salt` is raw bytes; PostgreSQL uses 16 random ones.
scram_verifier make_scram_verifier(std::string_view password, std::string_view salt,
                                   int iterations = 4096);

std::string format_scram_verifier(const scram_verifier& verifier);

}  // namespace sluice::protocol
