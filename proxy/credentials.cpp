#include "proxy/credentials.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "protocol/md5_auth.hpp"

namespace sluice::proxy {
namespace {

constexpr int default_scram_iterations = 4096;    // PostgreSQL's default scram_iterations
constexpr std::size_t default_salt_length = 16;   // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
constexpr std::size_t max_mock_salt_length = 64;  // a verifier's salt longer than this is odd

std::string random_salt() {
  std::array<char, default_salt_length> salt;
  protocol::random_bytes(salt);
  return std::string(salt.data(), salt.size());
}

protocol::scram_key random_secret() {
  std::array<char, 32> bytes;
  protocol::random_bytes(bytes);
  protocol::scram_key secret{};
  std::copy(bytes.begin(), bytes.end(), secret.begin());
  return secret;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

}  // namespace

credential_store::credential_store(const std::vector<config::user_settings>& users)
    : credential_store(users, random_secret()) {}

credential_store::credential_store(const std::vector<config::user_settings>& users,
                                   const protocol::scram_key& mock_secret)
    : mock_secret_(mock_secret) {
  for (const auto& user : users) {
    user_credentials entry;
    entry.name = user.name;
    const auto format = config::classify_password(user.password);
    if (format == config::password_format::scram_sha_256) {
      if (auto verifier = protocol::parse_scram_verifier(user.password)) entry.scram = *verifier;
    } else if (format == config::password_format::md5) {
      entry.md5_hash = user.password;
    } else {
      entry.plain_password = user.password;
      entry.scram =
          protocol::make_scram_verifier(user.password, random_salt(), default_scram_iterations);
      entry.md5_hash = protocol::md5_password_hash(user.password, user.name);
    }
    secret_shape shape{.plain = entry.plain_password.has_value(),
                       .md5 = entry.md5_hash.has_value(),
                       .scram = entry.scram.has_value()};
    if (entry.scram) {
      shape.iterations = entry.scram->iterations;
      shape.salt_length = std::min(entry.scram->salt.size(), max_mock_salt_length);
    }
    shapes_.push_back(shape);
    users_.emplace(user.name, std::move(entry));
  }
  std::sort(shapes_.begin(), shapes_.end());
}

const user_credentials* credential_store::find(std::string_view name) const {
  auto it = users_.find(std::string(name));
  return it == users_.end() ? nullptr : &it->second;
}

std::string credential_store::derive(std::string_view label, std::string_view name,
                                     std::size_t length) const {
  // HMAC(secret, label NUL counter NUL name), block after block. A startup packet's user name
  // holds no NUL, so no two (label, name) pairs share an input.
  std::string out;
  for (char block = 0; out.size() < length; ++block) {
    std::string input(label);
    input.push_back('\0');
    input.push_back(block);
    input.push_back('\0');
    input.append(name);
    out.append(protocol::scram_key_bytes(protocol::scram_hmac(mock_secret_, input)));
  }
  out.resize(length);
  return out;
}

const credential_store::secret_shape& credential_store::shape_for(std::string_view name) const {
  // The config always has a user; a store without one still answers, like PostgreSQL would.
  static const secret_shape fallback{.plain = true,
                                     .md5 = true,
                                     .scram = true,
                                     .iterations = default_scram_iterations,
                                     .salt_length = default_salt_length};
  if (shapes_.empty()) return fallback;
  const std::string pick = derive("shape", name, 8);
  std::uint64_t n = 0;
  for (const char c : pick) n = (n << 8) | static_cast<unsigned char>(c);
  return shapes_[n % shapes_.size()];
}

protocol::scram_verifier credential_store::mock_verifier(std::string_view name, int iterations,
                                                         std::size_t salt_length) const {
  protocol::scram_verifier verifier{};
  verifier.iterations = iterations;
  verifier.salt = derive("salt", name, salt_length);
  const std::string stored = derive("stored key", name, verifier.stored_key.size());
  const std::string server = derive("server key", name, verifier.server_key.size());
  std::copy(stored.begin(), stored.end(), verifier.stored_key.begin());
  std::copy(server.begin(), server.end(), verifier.server_key.begin());
  return verifier;
}

protocol::scram_verifier credential_store::mock_verifier(std::string_view name) const {
  const auto& shape = shape_for(name);
  if (shape.scram && shape.salt_length > 0)
    return mock_verifier(name, shape.iterations, shape.salt_length);
  return mock_verifier(name, default_scram_iterations, default_salt_length);
}

user_credentials credential_store::mock_user(std::string_view name) const {
  const auto& shape = shape_for(name);
  user_credentials mock;
  mock.name = name;
  if (shape.plain) mock.plain_password = hex(derive("plain", name, 16));
  if (shape.scram) mock.scram = mock_verifier(name);
  if (shape.md5) mock.md5_hash = "md5" + hex(derive("md5", name, 16));
  return mock;
}

}  // namespace sluice::proxy
