#include "protocol/scram_server_fsm.hpp"

#include <algorithm>
#include <array>

#include "protocol/base64.hpp"
#include "protocol/random.hpp"
#include "protocol/scram_attributes.hpp"
#include "protocol/scram_crypto.hpp"

namespace sluice::protocol {
namespace {

constexpr std::size_t raw_nonce_length = 18;  // PostgreSQL's SCRAM_RAW_NONCE_LEN.

std::string random_nonce() {
  std::array<char, raw_nonce_length> raw{};
  random_bytes(raw);
  return base64_encode(std::string_view(raw.data(), raw.size()));
}

}  // namespace

scram_server_fsm::scram_server_fsm(scram_verifier v, std::string server_nonce,
                                   std::optional<scram_channel_binding> binding)
    : verifier_(std::move(v)),
      server_nonce_(server_nonce.empty() ? random_nonce() : std::move(server_nonce)),
      binding_(std::move(binding)) {}

result<std::string> scram_server_fsm::fail(errc e) {
  state_ = state::failed;
  return make_failure<std::string>(e);
}

// client-first-message = gs2-header client-first-message-bare
// gs2-header = ("n" / "y" / "p=" cb-name) "," [authzid] ","
// client-first-message-bare = [reserved-mext ","] "n=" saslname "," "r=" c-nonce ["," extensions]
result<std::string> scram_server_fsm::on_client_first(std::string_view message) {
  if (state_ != state::awaiting_client_first) return fail(errc::malformed);
  const bool plus = binding_ && binding_->plus_selected;
  std::size_t flag_end = 1;  // just past "n", "y" or "p=<cb-name>"
  if (message.starts_with("p=")) {
    flag_end = message.find(',');
    if (flag_end == std::string_view::npos) return fail(errc::malformed);
    if (!binding_) return fail(errc::unsupported_mechanism);  // not offered: a plain connection
    if (!plus) return fail(errc::malformed);  // binding data, but plain SCRAM-SHA-256 chosen
    if (message.substr(2, flag_end - 2) != "tls-server-end-point") {
      return fail(errc::unsupported_mechanism);
    }
    binding_data_ = binding_->tls_server_end_point;
  } else if (message.starts_with("n") || message.starts_with("y")) {
    // -PLUS chosen but no binding data; or "y": the client thinks we offer no binding while we
    // do (over TLS), which means someone stripped -PLUS from our list.
    if (plus || (message[0] == 'y' && binding_)) return fail(errc::malformed);
  } else {
    return fail(errc::malformed);
  }
  if (message.size() <= flag_end || message[flag_end] != ',') return fail(errc::malformed);
  if (message.substr(flag_end + 1).starts_with("a=")) return fail(errc::unsupported_mechanism);
  if (message.size() <= flag_end + 1 || message[flag_end + 1] != ',') return fail(errc::malformed);
  gs2_header_ = message.substr(0, flag_end + 2);

  std::string_view bare = message.substr(gs2_header_.size());
  client_first_bare_ = bare;
  if (bare.starts_with("m=")) return fail(errc::unsupported_mechanism);
  // The user name is ignored, as PostgreSQL does: the StartupMessage already named the role.
  if (!expect_scram_attribute(bare, 'n')) return fail(errc::malformed);
  const auto client_nonce = expect_scram_attribute(bare, 'r');
  if (!client_nonce || client_nonce->empty() || !is_scram_printable(*client_nonce)) {
    return fail(errc::malformed);
  }
  while (!bare.empty()) {
    if (!next_scram_attribute(bare)) return fail(errc::malformed);
  }

  nonce_.assign(*client_nonce).append(server_nonce_);
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = state::awaiting_client_final;
  return {server_first_};
}

// client-final-message = "c=" base64(gs2-header) "," "r=" nonce ["," extensions] "," "p=" proof
result<std::string> scram_server_fsm::on_client_final(std::string_view message) {
  if (state_ != state::awaiting_client_final) return fail(errc::malformed);
  std::string_view rest = message;

  const auto channel_binding = expect_scram_attribute(rest, 'c');
  if (!channel_binding || *channel_binding != base64_encode(gs2_header_ + binding_data_)) {
    return fail(errc::malformed);
  }
  const auto nonce = expect_scram_attribute(rest, 'r');
  if (!nonce || *nonce != nonce_) return fail(errc::malformed);

  // Skip extensions up to the proof, which must be the last attribute.
  std::optional<scram_attribute> attribute;
  std::size_t proof_at = 0;
  do {
    proof_at = message.size() - rest.size();
    attribute = next_scram_attribute(rest);
    if (!attribute) return fail(errc::malformed);
  } while (attribute->name != 'p');
  if (!rest.empty() || message[message.size() - 1] == ',') return fail(errc::malformed);

  const auto proof_bytes = base64_decode(attribute->value);
  scram_key proof{};
  if (!proof_bytes || proof_bytes->size() != proof.size()) return fail(errc::malformed);
  std::copy(proof_bytes->begin(), proof_bytes->end(), proof.begin());

  // AuthMessage = client-first-message-bare "," server-first-message ","
  //               client-final-message-without-proof
  const std::string_view without_proof = message.substr(0, proof_at - 1);
  std::string auth_message;
  auth_message.reserve(client_first_bare_.size() + server_first_.size() + without_proof.size() + 2);
  auth_message.append(client_first_bare_)
      .append(",")
      .append(server_first_)
      .append(",")
      .append(without_proof);

  // The proof is right iff H(proof XOR ClientSignature) == StoredKey.
  const scram_key client_signature = scram_hmac(verifier_.stored_key, auth_message);
  const scram_key client_key = scram_xor(proof, client_signature);
  if (!scram_keys_equal(scram_sha256(client_key), verifier_.stored_key)) {
    return fail(errc::auth_failed);
  }

  state_ = state::done;
  return {"v=" + base64_encode(scram_key_bytes(scram_hmac(verifier_.server_key, auth_message)))};
}

}  // namespace sluice::protocol
