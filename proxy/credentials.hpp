#pragma once
// What sluice knows about each client user's password, prepared once at config load so that a
// login costs no PBKDF2: a plain password is turned into a SCRAM verifier and an md5 hash here.
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/scram.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::proxy {

struct user_credentials {
  std::string name;
  std::optional<std::string> plain_password;      // only when configured in plain text
  std::optional<protocol::scram_verifier> scram;  // configured, or computed from plain
  std::optional<std::string> md5_hash;            // "md5" + 32 hex, configured or computed
};

class credential_store {
 public:
  explicit credential_store(const std::vector<config::user_settings>& users);

  const user_credentials* find(std::string_view name) const;

  // Unknown users go through a full SCRAM exchange against this verifier and then fail, so a
  // client cannot tell an unknown user from a wrong password (as PostgreSQL does).
  const protocol::scram_verifier& mock_verifier() const { return mock_; }

 private:
  std::unordered_map<std::string, user_credentials> users_;
  protocol::scram_verifier mock_;
};

}  // namespace sluice::proxy
