#pragma once

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the pg_authid verifier and the two
// sides of the exchange. https://www.postgresql.org/docs/15/sasl-authentication.html
#include <string_view>

#include "protocol/scram_client_fsm.hpp"
#include "protocol/scram_server_fsm.hpp"
#include "protocol/scram_verifier.hpp"

namespace sluice::protocol {

// The SASL mechanism name both fsms speak, as listed in AuthenticationSASL.
inline constexpr std::string_view scram_sha_256 = "SCRAM-SHA-256";

}  // namespace sluice::protocol
