#pragma once

#include <span>
#include <string>
#include <string_view>

#include "protocol/random.hpp"  // random_bytes, for the 4-byte salt of AuthenticationMD5Password.

// PostgreSQL's MD5 password scheme, for both directions: checking a client's PasswordMessage
// against a pg_authid hash, and answering a server's AuthenticationMD5Password.
// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONMD5PASSWORD
//
// Flow: server sends a random 4-byte salt -> client sends PasswordMessage
// "md5" + hex(md5(hex(md5(password + user)) + salt)) -> server compares with the same
// computation from the stored "md5" + hex(md5(password + user)).

namespace sluice::protocol {

// "md5" + hex(md5(password + user)), exactly as pg_authid stores an MD5 password.
std::string md5_password_hash(std::string_view password, std::string_view user);

// "md5" + hex(md5(hex_part + salt)) where hex_part is md5_hash without its "md5" prefix: the
// PasswordMessage a client sends. A hash without the prefix is used whole.
std::string md5_salted_response(std::string_view md5_hash, std::span<const char, 4> salt);

// Whether a client's PasswordMessage answers `salt` for the stored `md5_hash`; compares in constant
// time so the time taken does not reveal how many leading bytes matched.
bool md5_response_matches(std::string_view response, std::string_view md5_hash,
                          std::span<const char, 4> salt);

}  // namespace sluice::protocol
