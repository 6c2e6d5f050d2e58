#pragma once
// Authenticating a client against `users`, with the method the config asks for.
//
// Flow (SCRAM-SHA-256): AuthenticationSASL → SASLInitialResponse → AuthenticationSASLContinue
// → SASLResponse → AuthenticationSASLFinal. Over TLS, SCRAM-SHA-256-PLUS is offered first and
// binds the exchange to sluice's certificate (tls-server-end-point), as PostgreSQL does. md5:
// AuthenticationMD5Password(salt) → password. Cleartext: AuthenticationCleartextPassword →
// password. The caller sends AuthenticationOk.
//
// A user not in `users` goes through the same exchange, with the same work to check it, against
// credential_store::mock_user(): the same messages as a known user with a wrong password, a
// challenge of the same shape, and then `rejected`.
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/client_transport.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/credentials.hpp"

namespace sluice::proxy {

enum class auth_outcome {
  accepted,        // the password matched
  rejected,        // wrong password or unknown user: 28P01, the same for both
  protocol_error,  // the client sent something else than the exchange expects: 08P01
  disconnected,    // the socket failed or closed mid-exchange
};

// `tls_end_point`: the channel-binding data when the client is on TLS, else null.
awaitable<auth_outcome> authenticate_client(client_transport& client, byte_buffer& buffer,
                                            config::auth_method method, std::string_view user_name,
                                            const credential_store& store,
                                            const std::string* tls_end_point);

}  // namespace sluice::proxy
