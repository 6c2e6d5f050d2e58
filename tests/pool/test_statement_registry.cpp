#include "pool/statement_registry.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"

namespace sluice::pool {
namespace {

using oids = std::vector<std::uint32_t>;

TEST_CASE("statement_registry: same content gives the same statement and name",
          "[pool][statements]") {
  statement_registry registry;
  const oids types{23, 25};
  auto a = registry.intern("SELECT $1, $2", types);
  auto b = registry.intern(std::string("SELECT $1, $2"), oids{23, 25});
  CHECK(a == b);
  CHECK(a->server_name == b->server_name);
  CHECK(registry.size() == 1);
}

TEST_CASE("statement_registry: a statement's fields and its ready Parse", "[pool][statements]") {
  statement_registry registry;
  const oids types{23, 0};
  auto s = registry.intern("SELECT $1::int + $2", types);
  CHECK(s->id >= 1);
  CHECK(s->server_name == "sluice_" + std::to_string(s->id));
  CHECK(s->query == "SELECT $1::int + $2");
  CHECK(s->param_types == types);
  CHECK_FALSE(s->verified.load());

  const auto framed =
      protocol::frame_message({s->parse_message.data(), s->parse_message.size()}, 1 << 20);
  REQUIRE(framed.status == protocol::frame_status::complete);
  CHECK(framed.message.wire.size() == s->parse_message.size());
  CHECK(framed.message.type == 'P');
  const auto parse = protocol::decode_parse(framed.message.body);
  REQUIRE(parse);
  CHECK(parse->name == s->server_name);
  CHECK(parse->query == s->query);
  CHECK(parse->param_types == types);
}

TEST_CASE("statement_registry: different content gives different statements",
          "[pool][statements]") {
  struct content {
    std::string query;
    oids types;
  };
  // Each differs from the first in one respect only.
  const std::array<content, 6> contents{{
      {"SELECT $1", {23}},
      {"SELECT $1", {25}},     // another parameter type
      {"SELECT $1", {}},       // no declared type
      {"SELECT $1", {23, 0}},  // one more parameter type
      {"SELECT  $1", {23}},    // whitespace is part of the text
      {"select $1", {23}},     // so is case
  }};
  statement_registry registry;
  std::set<std::uint64_t> ids;
  std::set<std::string> names;
  std::vector<statement_ptr> keep;
  for (const auto& c : contents) {
    keep.push_back(registry.intern(c.query, c.types));
    ids.insert(keep.back()->id);
    names.insert(keep.back()->server_name);
  }
  CHECK(ids.size() == contents.size());
  CHECK(names.size() == contents.size());
  CHECK(registry.size() == contents.size());
}

TEST_CASE("statement_registry: the key is the full text, not a prefix or a hash",
          "[pool][statements]") {
  statement_registry registry;
  std::string long_a(100000, 'x');
  std::string long_b = long_a;
  long_a.back() = 'a';
  long_b.back() = 'b';
  auto a = registry.intern(long_a, {});
  auto b = registry.intern(long_b, {});
  CHECK(a != b);
  CHECK(a->id != b->id);
  CHECK(a->query == long_a);
  CHECK(b->query == long_b);
  CHECK(registry.intern(long_a, {}) == a);
  CHECK(registry.intern(long_b, {}) == b);
}

TEST_CASE("statement_registry: parameter types are compared in full", "[pool][statements]") {
  statement_registry registry;
  // Orders that a multiplicative hash could confuse.
  auto a = registry.intern("SELECT $1, $2", oids{23, 25});
  auto b = registry.intern("SELECT $1, $2", oids{25, 23});
  CHECK(a != b);
}

TEST_CASE("statement_registry: an expired entry is made again with a new id",
          "[pool][statements]") {
  statement_registry registry;
  std::uint64_t first_id = 0;
  std::string first_name;
  {
    auto s = registry.intern("SELECT 1", {});
    first_id = s->id;
    first_name = s->server_name;
  }  // no client or server holds it any more
  auto again = registry.intern("SELECT 1", {});
  CHECK(again->id != first_id);
  CHECK(again->server_name != first_name);
  CHECK(again->query == "SELECT 1");
  CHECK(registry.intern("SELECT 1", {}) == again);
}

TEST_CASE("statement_registry: live entries survive the sweep of dead ones", "[pool][statements]") {
  statement_registry registry;
  auto kept = registry.intern("SELECT 'kept'", {});
  // Enough dead entries to trigger more than one sweep.
  for (int i = 0; i < 5000; ++i) registry.intern("SELECT " + std::to_string(i), {});
  CHECK(registry.size() < 2048);
  CHECK(registry.intern("SELECT 'kept'", {}) == kept);
  // Ids are never reused.
  std::set<std::uint64_t> ids;
  std::vector<statement_ptr> live;
  for (int i = 0; i < 10; ++i) {
    live.push_back(registry.intern("SELECT " + std::to_string(i), {}));
    ids.insert(live.back()->id);
  }
  CHECK(ids.size() == 10);
  CHECK_FALSE(ids.contains(kept->id));
}

}  // namespace
}  // namespace sluice::pool
