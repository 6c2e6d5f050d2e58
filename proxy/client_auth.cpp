#include "proxy/client_auth.hpp"

#include <openssl/crypto.h>

#include <array>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/md5_auth.hpp"
#include "proxy/message_io.hpp"

namespace sluice::proxy {
namespace {

// Authentication messages are tiny; a larger one is not a password.
constexpr std::uint32_t max_auth_message = 8192;

bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

struct password_read {
  auth_outcome failure = auth_outcome::accepted;  // accepted = got a message
  std::string body;
};

awaitable<password_read> read_password_message(client_transport& socket, byte_buffer& buffer) {
  password_read out;
  auto read = co_await read_message(socket, buffer, read_kind::typed, max_auth_message);
  if (read.error) {
    out.failure = auth_outcome::disconnected;
    co_return out;
  }
  if (read.protocol_error || read.message.type != 'p') {
    out.failure = auth_outcome::protocol_error;
    co_return out;
  }
  out.body.assign(read.message.body.data(), read.message.body.size());
  buffer.consume(read.message.wire.size());
  co_return out;
}

constexpr std::string_view scram = "SCRAM-SHA-256";
constexpr std::string_view scram_plus = "SCRAM-SHA-256-PLUS";

awaitable<auth_outcome> scram_exchange(client_transport& socket, byte_buffer& buffer,
                                       const protocol::scram_verifier& verifier, bool known_user,
                                       const std::string* tls_end_point) {
  std::string out;
  // -PLUS first, as PostgreSQL lists them: a client that can bind picks it.
  const std::array<std::string_view, 2> with_plus{scram_plus, scram};
  const std::array<std::string_view, 1> without_plus{scram};
  if (tls_end_point) {
    protocol::append_authentication_sasl(out, with_plus);
  } else {
    protocol::append_authentication_sasl(out, without_plus);
  }
  if (co_await write_all(socket, out)) co_return auth_outcome::disconnected;

  auto initial = co_await read_password_message(socket, buffer);
  if (initial.failure != auth_outcome::accepted) co_return initial.failure;
  auto first = protocol::decode_sasl_initial_response(initial.body);
  if (!first) co_return auth_outcome::protocol_error;
  const bool plus = first->mechanism == scram_plus;
  if (!(first->mechanism == scram || (plus && tls_end_point)))
    co_return auth_outcome::protocol_error;

  std::optional<protocol::scram_channel_binding> binding;
  if (tls_end_point)
    binding = protocol::scram_channel_binding{.tls_server_end_point = *tls_end_point,
                                              .plus_selected = plus};
  protocol::scram_server_fsm fsm(verifier, {}, std::move(binding));
  auto server_first = fsm.on_client_first(first->data);
  if (!server_first) co_return auth_outcome::protocol_error;
  out.clear();
  protocol::append_authentication_sasl_continue(out, *server_first);
  if (co_await write_all(socket, out)) co_return auth_outcome::disconnected;

  auto response = co_await read_password_message(socket, buffer);
  if (response.failure != auth_outcome::accepted) co_return response.failure;
  auto final_message = protocol::decode_sasl_response(response.body);
  if (!final_message) co_return auth_outcome::protocol_error;
  auto server_final = fsm.on_client_final(final_message->data);
  if (!server_final || !known_user) co_return auth_outcome::rejected;
  out.clear();
  protocol::append_authentication_sasl_final(out, *server_final);
  if (co_await write_all(socket, out)) co_return auth_outcome::disconnected;
  co_return auth_outcome::accepted;
}

awaitable<auth_outcome> md5_exchange(client_transport& socket, byte_buffer& buffer,
                                     const user_credentials& user, bool known_user) {
  std::array<char, 4> salt;
  protocol::random_bytes(salt);
  std::string out;
  protocol::append_authentication_md5(out, salt);
  if (co_await write_all(socket, out)) co_return auth_outcome::disconnected;
  auto reply = co_await read_password_message(socket, buffer);
  if (reply.failure != auth_outcome::accepted) co_return reply.failure;
  auto password = protocol::decode_password_message(reply.body);
  if (!password) co_return auth_outcome::protocol_error;
  if (!user.md5_hash) co_return auth_outcome::rejected;
  const auto expected = protocol::md5_salted_response(*user.md5_hash, salt);
  co_return same_secret(password->password, expected) && known_user ? auth_outcome::accepted
                                                                    : auth_outcome::rejected;
}

bool cleartext_matches(const user_credentials& user, std::string_view password) {
  if (user.plain_password) return same_secret(password, *user.plain_password);
  if (user.scram) {
    const auto computed =
        protocol::make_scram_verifier(password, user.scram->salt, user.scram->iterations);
    return CRYPTO_memcmp(computed.stored_key.data(), user.scram->stored_key.data(),
                         computed.stored_key.size()) == 0;
  }
  if (user.md5_hash)
    return same_secret(protocol::md5_password_hash(password, user.name), *user.md5_hash);
  return false;
}

awaitable<auth_outcome> cleartext_exchange(client_transport& socket, byte_buffer& buffer,
                                           const user_credentials& user, bool known_user) {
  std::string out;
  protocol::append_authentication_cleartext(out);
  if (co_await write_all(socket, out)) co_return auth_outcome::disconnected;
  auto reply = co_await read_password_message(socket, buffer);
  if (reply.failure != auth_outcome::accepted) co_return reply.failure;
  auto password = protocol::decode_password_message(reply.body);
  if (!password) co_return auth_outcome::protocol_error;
  co_return cleartext_matches(user, password->password) && known_user ? auth_outcome::accepted
                                                                      : auth_outcome::rejected;
}

}  // namespace

awaitable<auth_outcome> authenticate_client(client_transport& socket, byte_buffer& buffer,
                                            config::auth_method method, std::string_view user_name,
                                            const credential_store& store,
                                            const std::string* tls_end_point) {
  const user_credentials* known = store.find(user_name);
  // An unknown user is checked like a known one, against secrets no password matches.
  const user_credentials mock = known ? user_credentials{} : store.mock_user(user_name);
  const user_credentials& user = known ? *known : mock;
  const bool known_user = known != nullptr;
  switch (method) {
    case config::auth_method::scram_sha_256:
      // A user stored only as an md5 hash cannot do SCRAM; like PostgreSQL, that login fails
      // after an exchange against the name's mock verifier.
      if (user.scram)
        co_return co_await scram_exchange(socket, buffer, *user.scram, known_user, tls_end_point);
      co_return co_await scram_exchange(socket, buffer, store.mock_verifier(user_name), false,
                                        tls_end_point);
    case config::auth_method::md5:
      // As in PostgreSQL, md5 upgrades to SCRAM for a user whose secret is a SCRAM verifier.
      if (!user.md5_hash && user.scram)
        co_return co_await scram_exchange(socket, buffer, *user.scram, known_user, tls_end_point);
      co_return co_await md5_exchange(socket, buffer, user, known_user);
    case config::auth_method::plain:
      co_return co_await cleartext_exchange(socket, buffer, user, known_user);
  }
  co_return auth_outcome::protocol_error;
}

}  // namespace sluice::proxy
