#include "protocol/scram_verifier.hpp"

#include <algorithm>

#include "protocol/base64.hpp"
#include "protocol/scram_attributes.hpp"
#include "protocol/scram_crypto.hpp"

namespace sluice::protocol {
namespace {

constexpr std::string_view mechanism_prefix = "SCRAM-SHA-256$";

// Splits `in` at the first `separator`; std::nullopt if there is none.
std::optional<std::pair<std::string_view, std::string_view>> split(std::string_view in,
                                                                   char separator) {
  const std::size_t at = in.find(separator);
  if (at == std::string_view::npos) return std::nullopt;
  return std::pair{in.substr(0, at), in.substr(at + 1)};
}

bool decode_key(std::string_view text, scram_key& out) {
  const auto bytes = base64_decode(text);
  if (!bytes || bytes->size() != out.size()) return false;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return true;
}

}  // namespace

result<scram_verifier> parse_scram_verifier(std::string_view text) {
  const auto fail = [] { return make_failure<scram_verifier>(errc::malformed); };
  if (!text.starts_with(mechanism_prefix)) return fail();
  text.remove_prefix(mechanism_prefix.size());

  const auto parameters_and_keys = split(text, '$');
  if (!parameters_and_keys) return fail();
  const auto iterations_and_salt = split(parameters_and_keys->first, ':');
  const auto stored_and_server = split(parameters_and_keys->second, ':');
  if (!iterations_and_salt || !stored_and_server) return fail();

  scram_verifier verifier{};
  const auto iterations = parse_scram_iterations(iterations_and_salt->first);
  auto salt = base64_decode(iterations_and_salt->second);
  if (!iterations || !salt || !decode_key(stored_and_server->first, verifier.stored_key) ||
      !decode_key(stored_and_server->second, verifier.server_key)) {
    return fail();
  }
  verifier.iterations = *iterations;
  verifier.salt = std::move(*salt);
  return {std::move(verifier)};
}

scram_verifier make_scram_verifier(std::string_view password, std::string_view salt,
                                   int iterations) {
  const scram_key salted_password = scram_salted_password(password, salt, iterations);
  return scram_verifier{iterations, std::string(salt),
                        scram_sha256(scram_client_key(salted_password)),
                        scram_server_key(salted_password)};
}

std::string format_scram_verifier(const scram_verifier& verifier) {
  std::string out(mechanism_prefix);
  out += std::to_string(verifier.iterations);
  out += ':';
  out += base64_encode(verifier.salt);
  out += '$';
  out += base64_encode(scram_key_bytes(verifier.stored_key));
  out += ':';
  out += base64_encode(scram_key_bytes(verifier.server_key));
  return out;
}

}  // namespace sluice::protocol
