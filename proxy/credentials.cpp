#include "proxy/credentials.hpp"

#include <array>

#include "protocol/md5_auth.hpp"

namespace sluice::proxy {
namespace {

constexpr int scram_iterations = 4096;  // PostgreSQL's default scram_iterations

std::string random_salt() {
  std::array<char, 16> salt;
  protocol::random_bytes(salt);
  return std::string(salt.data(), salt.size());
}

}  // namespace

credential_store::credential_store(const std::vector<config::user_settings>& users) {
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
      entry.scram = protocol::make_scram_verifier(user.password, random_salt(), scram_iterations);
      entry.md5_hash = protocol::md5_password_hash(user.password, user.name);
    }
    users_.emplace(user.name, std::move(entry));
  }
  std::array<char, 32> secret;
  protocol::random_bytes(secret);
  mock_ = protocol::make_scram_verifier(std::string_view(secret.data(), secret.size()),
                                        random_salt(), scram_iterations);
}

const user_credentials* credential_store::find(std::string_view name) const {
  auto it = users_.find(std::string(name));
  return it == users_.end() ? nullptr : &it->second;
}

}  // namespace sluice::proxy
