#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::protocol {

// Standard base64 (RFC 4648 section 4, with '=' padding), as SCRAM messages and pg_authid
// verifiers use it. Implemented over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.

std::string base64_encode(std::string_view bytes);

// Strict decoding: a multiple of 4 characters from the alphabet, '=' only as trailing padding, no
// whitespace. Anything else is std::nullopt, so a peer cannot smuggle bytes past a comparison.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sluice::protocol
