#include "protocol/scram_client_fsm.hpp"

#include <algorithm>
#include <array>

#include "protocol/base64.hpp"
#include "protocol/random.hpp"
#include "protocol/scram_attributes.hpp"

namespace sluice::protocol {
namespace {

constexpr std::size_t raw_nonce_length = 18;    // libpq's SCRAM_RAW_NONCE_LEN.
constexpr std::string_view gs2_header = "n,,";  // No channel binding, no authzid.

std::string random_nonce() {
  std::array<char, raw_nonce_length> raw{};
  random_bytes(raw);
  return base64_encode(std::string_view(raw.data(), raw.size()));
}

// RFC 5802 saslname: ',' and '=' are escaped as "=2C" and "=3D".
std::string escape_sasl_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

scram_client_fsm::scram_client_fsm(std::string password, std::string client_nonce, std::string user)
    : password_(std::move(password)),
      client_nonce_(client_nonce.empty() ? random_nonce() : std::move(client_nonce)),
      user_(std::move(user)) {}

std::error_code scram_client_fsm::fail(errc e) {
  state_ = state::failed;
  return make_error_code(e);
}

std::string scram_client_fsm::client_first_message() {
  client_first_bare_ = "n=" + escape_sasl_name(user_) + ",r=" + client_nonce_;
  if (state_ == state::initial) state_ = state::awaiting_server_first;
  return std::string(gs2_header) + client_first_bare_;
}

// server-first-message = [reserved-mext ","] "r=" nonce "," "s=" salt "," "i=" iteration-count
//                        ["," extensions]
result<std::string> scram_client_fsm::on_server_first(std::string_view message) {
  const auto failure = [this](errc e) { return make_failure<std::string>(fail(e)); };
  if (state_ != state::awaiting_server_first) return failure(errc::malformed);
  std::string_view rest = message;
  if (rest.starts_with("m=")) return failure(errc::unsupported_mechanism);

  // The server appends its nonce to ours; anything else could be a replay.
  const auto nonce = expect_scram_attribute(rest, 'r');
  if (!nonce || nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_) ||
      !is_scram_printable(*nonce)) {
    return failure(errc::malformed);
  }
  const auto salt_text = expect_scram_attribute(rest, 's');
  const auto salt = salt_text ? base64_decode(*salt_text) : std::nullopt;
  const auto iterations_text = expect_scram_attribute(rest, 'i');
  const auto iterations = iterations_text ? parse_scram_iterations(*iterations_text) : std::nullopt;
  if (!salt || salt->empty() || !iterations) return failure(errc::malformed);
  while (!rest.empty()) {
    if (!next_scram_attribute(rest)) return failure(errc::malformed);
  }

  const scram_key salted_password = scram_salted_password(password_, *salt, *iterations);
  const scram_key client_key = scram_client_key(salted_password);

  // AuthMessage = client-first-message-bare "," server-first-message ","
  //               client-final-message-without-proof
  std::string client_final = "c=" + base64_encode(gs2_header) + ",r=";
  client_final.append(*nonce);
  std::string auth_message;
  auth_message.append(client_first_bare_)
      .append(",")
      .append(message)
      .append(",")
      .append(client_final);

  const scram_key client_signature = scram_hmac(scram_sha256(client_key), auth_message);
  expected_server_signature_ = scram_hmac(scram_server_key(salted_password), auth_message);
  client_final.append(",p=").append(
      base64_encode(scram_key_bytes(scram_xor(client_key, client_signature))));
  state_ = state::awaiting_server_final;
  return {std::move(client_final)};
}

// server-final-message = ("e=" server-error-value / "v=" base64(ServerSignature))
std::error_code scram_client_fsm::on_server_final(std::string_view message) {
  if (state_ != state::awaiting_server_final) return fail(errc::malformed);
  std::string_view rest = message;
  const auto attribute = next_scram_attribute(rest);
  if (!attribute) return fail(errc::malformed);
  if (attribute->name == 'e') return fail(errc::auth_failed);
  if (attribute->name != 'v' || !rest.empty() || message.back() == ',') {
    return fail(errc::malformed);
  }
  const auto signature_bytes = base64_decode(attribute->value);
  scram_key signature{};
  if (!signature_bytes || signature_bytes->size() != signature.size()) {
    return fail(errc::malformed);
  }
  std::copy(signature_bytes->begin(), signature_bytes->end(), signature.begin());
  if (!scram_keys_equal(signature, expected_server_signature_)) return fail(errc::auth_failed);
  state_ = state::done;
  return {};
}

}  // namespace sluice::protocol
