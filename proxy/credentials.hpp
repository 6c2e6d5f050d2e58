#pragma once
// What sluice knows about each client user's password, prepared once at config load so that a
// login costs no PBKDF2: a plain password is turned into a SCRAM verifier and an md5 hash here.
//
// It also stands in for users it does not know. PostgreSQL answers a login for a role that does
// not exist with a full exchange against a mock secret whose salt is derived from the role name
// (auth-scram.c, scram_mock_salt), so a client cannot tell "no such user" from "wrong password"
// by the challenge. mock_user() does the same here: a name not in `users` gets secrets shaped
// like a configured user's, with a salt that is stable for that name and unlike any other's.
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/scram.hpp"
#include "protocol/scram_crypto.hpp"
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
  // Draws the mock secret from OpenSSL's CSPRNG: it lives as long as the store, so an unknown
  // name keeps its salt for the life of the process.
  explicit credential_store(const std::vector<config::user_settings>& users);
  // The same with a given mock secret, for tests.
  credential_store(const std::vector<config::user_settings>& users,
                   const protocol::scram_key& mock_secret);

  const user_credentials* find(std::string_view name) const;

  // The credentials an unknown user `name` is checked against, so that its exchange and the
  // work done to check it are those of a known user: the shape of one configured user, picked
  // by the name (which of plain / SCRAM / md5 it has, its SCRAM iteration count and salt
  // length), with every secret derived from the name by HMAC-SHA-256 under the mock secret.
  // The same name always gets the same salt, two names different ones. No password is meant
  // to match: the caller rejects an unknown user whatever the client sends.
  user_credentials mock_user(std::string_view name) const;

  // The SCRAM verifier a login for `name` runs against when the user has none of its own
  // (unknown, or stored only as an md5 hash): mock_user(name)'s, or, when the picked shape has
  // no SCRAM verifier, one shaped like PostgreSQL's defaults (4096 iterations, 16-byte salt).
  protocol::scram_verifier mock_verifier(std::string_view name) const;

 private:
  // Which secrets a configured user has, without the secrets themselves.
  struct secret_shape {
    bool plain = false;
    bool md5 = false;
    bool scram = false;
    int iterations = 0;
    std::size_t salt_length = 0;
    auto operator<=>(const secret_shape&) const = default;
  };

  // `length` bytes of HMAC-SHA-256 output for (`label`, `name`) under the mock secret.
  std::string derive(std::string_view label, std::string_view name, std::size_t length) const;
  const secret_shape& shape_for(std::string_view name) const;
  protocol::scram_verifier mock_verifier(std::string_view name, int iterations,
                                         std::size_t salt_length) const;

  std::unordered_map<std::string, user_credentials> users_;
  std::vector<secret_shape> shapes_;  // one per configured user, sorted (so config order is moot)
  protocol::scram_key mock_secret_;
};

}  // namespace sluice::proxy
