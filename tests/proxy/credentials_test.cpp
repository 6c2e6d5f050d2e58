#include "proxy/credentials.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "protocol/md5_auth.hpp"

namespace sluice::proxy {
namespace {

using config::user_settings;

protocol::scram_key secret_of(unsigned char fill) {
  protocol::scram_key key{};
  key.fill(fill);
  return key;
}

std::string verifier(std::string_view password, std::size_t salt_length, int iterations) {
  return protocol::format_scram_verifier(
      protocol::make_scram_verifier(password, std::string(salt_length, 's'), iterations));
}

// Which secrets a user has, and the shape of its SCRAM verifier: what a client can observe of
// it (the challenge) or time (the work to check a password).
struct shape {
  bool plain, scram, md5;
  int iterations;
  std::size_t salt_length;
  auto operator<=>(const shape&) const = default;
};

shape shape_of(const user_credentials& user) {
  return {user.plain_password.has_value(), user.scram.has_value(), user.md5_hash.has_value(),
          user.scram ? user.scram->iterations : 0, user.scram ? user.scram->salt.size() : 0};
}

std::vector<std::string> unknown_names() {
  std::vector<std::string> names{"", "x", "no_such_user", "app ", "App", "app\x01"};
  for (int i = 0; i < 40; ++i) names.push_back("ghost" + std::to_string(i));
  return names;
}

}  // namespace

TEST_CASE("credentials: an unknown name gets a stable salt of its own", "[proxy][credentials]") {
  const credential_store store({{"app", "app-pw"}, {"other", "other-pw"}}, secret_of(7));
  std::set<std::string> salts{store.find("app")->scram->salt, store.find("other")->scram->salt};
  for (const auto& name : unknown_names()) {
    CAPTURE(name);
    REQUIRE(store.find(name) == nullptr);
    const auto mock = store.mock_user(name);
    REQUIRE(mock.scram);
    // The same name twice: the same challenge, as a known user's verifier gives.
    CHECK(store.mock_user(name).scram->salt == mock.scram->salt);
    CHECK(store.mock_verifier(name).salt == mock.scram->salt);
    // Two names: two salts, unlike any known user's.
    CHECK(salts.insert(mock.scram->salt).second);
  }
}

TEST_CASE("credentials: unknown and known users look alike", "[proxy][credentials]") {
  SECTION("plain passwords: PostgreSQL's 4096 iterations and 16-byte salt, md5 and SCRAM") {
    const credential_store store({{"app", "app-pw"}}, secret_of(1));
    const auto known = shape_of(*store.find("app"));
    CHECK(known == shape{true, true, true, 4096, 16});
    for (const auto& name : unknown_names()) {
      CAPTURE(name);
      CHECK(shape_of(store.mock_user(name)) == known);
      const auto mock = store.mock_user(name);
      CHECK(mock.md5_hash->size() == store.find("app")->md5_hash->size());
      CHECK(mock.md5_hash->starts_with("md5"));
    }
  }
  SECTION("configured verifiers: their iteration count and salt length") {
    const credential_store store(
        {{"a", verifier("pw", 20, 10000)}, {"b", verifier("pw", 20, 10000)}}, secret_of(2));
    for (const auto& name : unknown_names()) {
      CAPTURE(name);
      CHECK(shape_of(store.mock_user(name)) == shape{false, true, false, 10000, 20});
      CHECK(store.mock_verifier(name).iterations == 10000);
    }
  }
  SECTION("md5 hashes only: no SCRAM verifier to time against, as for a known user") {
    const credential_store store({{"m", protocol::md5_password_hash("pw", "m")}}, secret_of(3));
    for (const auto& name : unknown_names()) {
      CAPTURE(name);
      CHECK(shape_of(store.mock_user(name)) == shape{false, false, true, 0, 0});
      // SCRAM for such a user still runs against a verifier shaped like PostgreSQL's.
      const auto scram = store.mock_verifier(name);
      CHECK(scram.iterations == 4096);
      CHECK(scram.salt.size() == 16);
    }
  }
  SECTION("several shapes: each unknown name takes one of them, whatever the config order") {
    const std::vector<user_settings> users{{"plain", "pw"},
                                           {"slow", verifier("pw", 16, 50000)},
                                           {"hash", protocol::md5_password_hash("pw", "hash")}};
    const std::vector<user_settings> reversed(users.rbegin(), users.rend());
    const credential_store store(users, secret_of(4));
    const credential_store same_secret_other_order(reversed, secret_of(4));
    std::set<shape> known;
    for (const auto& user : users) known.insert(shape_of(*store.find(user.name)));
    std::set<shape> taken;
    for (const auto& name : unknown_names()) {
      CAPTURE(name);
      const auto mock = shape_of(store.mock_user(name));
      CHECK(known.contains(mock));
      CHECK(shape_of(same_secret_other_order.mock_user(name)) == mock);
      taken.insert(mock);
    }
    // 46 names over 3 shapes: with a fixed secret this is a fixed outcome, not a chance.
    CHECK(taken == known);
  }
}

TEST_CASE("credentials: the mock secrets depend on the process's secret", "[proxy][credentials]") {
  const std::vector<user_settings> users{{"app", "app-pw"}};
  const credential_store one(users, secret_of(5));
  const credential_store other(users, secret_of(6));
  const credential_store drawn(users);  // RAND_bytes
  for (const auto& name : unknown_names()) {
    CAPTURE(name);
    const auto salt = one.mock_user(name).scram->salt;
    CHECK(other.mock_user(name).scram->salt != salt);
    CHECK(drawn.mock_user(name).scram->salt != salt);
    CHECK(drawn.mock_user(name).scram->salt == drawn.mock_user(name).scram->salt);
  }
}

TEST_CASE("credentials: no password opens a mock user", "[proxy][credentials]") {
  const credential_store store({{"app", "app-pw"}}, secret_of(8));
  const auto mock = store.mock_user("no_such_user");
  // Its secrets are not those of an empty password or of the known user's.
  for (const std::string_view password : {"", "app-pw", "no_such_user"}) {
    CAPTURE(password);
    CHECK(*mock.plain_password != password);
    CHECK(*mock.md5_hash != protocol::md5_password_hash(password, "no_such_user"));
    const auto computed = protocol::make_scram_verifier(password, mock.scram->salt, 4096);
    CHECK(computed.stored_key != mock.scram->stored_key);
  }
  CHECK(mock.scram->stored_key != store.find("app")->scram->stored_key);
  CHECK(mock.scram->stored_key != mock.scram->server_key);
}

}  // namespace sluice::proxy
