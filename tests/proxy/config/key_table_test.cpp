#include "proxy/config/key_table.hpp"

#include <set>

#include <catch2/catch.hpp>

using namespace sluice::config;

TEST_CASE("key table: every row is well formed", "[config][keys]") {
  std::set<std::string_view> seen;
  for (const auto& spec : key_table()) {
    CAPTURE(spec.path);
    CHECK(seen.insert(spec.path).second);  // unique
    CHECK_FALSE(spec.doc.empty());
    CHECK_FALSE(describe_type(spec).empty());
    // Parents come first.
    if (!key_parent(spec).empty()) CHECK(seen.contains(key_parent(spec)));
    const bool nested = spec.type == value_type::section || spec.type == value_type::database_map ||
                        spec.type == value_type::user_list;
    // Scalars are stored somewhere; sections are walked, not stored.
    CHECK(nested == (spec.store.index() == 0));
    // A scalar has a default, must be given, or is optional (its doc says what its absence
    // means) -- exactly one of these.
    if (!nested) CHECK(spec.required + !spec.default_value.empty() + spec.optional == 1);
    if (spec.type == value_type::choice) CHECK_FALSE(spec.choices.empty());
    if (spec.type == value_type::integer || spec.type == value_type::byte_size) {
      CHECK(spec.min <= spec.max);
    }
    if (spec.type == value_type::url || key_name(spec) == "password") CHECK(spec.secret);
  }
}

TEST_CASE("key table: every default parses under its own row", "[config][keys]") {
  for (const auto& spec : key_table()) {
    if (spec.default_value.empty()) continue;
    CAPTURE(spec.path);
    if (spec.type == value_type::name_list) {  // parse_value reads one item; "[]" is YAML's
      CHECK(spec.default_value == "[]");
      continue;
    }
    const auto parsed = parse_value(spec, spec.default_value);
    CHECK(parsed.problem.empty());
  }
}

TEST_CASE("key table: find_key and path helpers", "[config][keys]") {
  REQUIRE(find_key("pool.size") != nullptr);
  CHECK(key_name(*find_key("pool.size")) == "size");
  CHECK(key_parent(*find_key("pool.size")) == "pool");
  CHECK(key_parent(*find_key("workers")).empty());
  CHECK(key_parent(*find_key("users[].password")) == "users[]");
  CHECK(key_parent(*find_key("users[]")) == "users");
  CHECK(key_parent(*find_key("databases.<name>")) == "databases");
  CHECK(is_element(*find_key("users[]")));
  CHECK(is_element(*find_key("databases.<name>")));
  CHECK_FALSE(is_element(*find_key("databases.<name>.pool")));
  CHECK(find_key("databases.<name>.url")->required);
  CHECK(find_key("pool.nope") == nullptr);
  CHECK(describe_type(*find_key("pool.mode")) == "session | transaction");
  CHECK(describe_type(*find_key("pool.recycle")) == "duration | off");
  CHECK(describe_type(*find_key("listen.port")) == "integer, 1..65535");
  CHECK(describe_type(*find_key("max_message_size")) == "size, 1kB..1GB");
}

TEST_CASE("key table: the --help listing shows every key", "[config][keys]") {
  const std::string listing = describe_keys();
  for (const auto& spec : key_table()) {
    CAPTURE(spec.path);
    CHECK(listing.find(std::string(spec.path) + "  (") != std::string::npos);
    CHECK(listing.find(std::string(spec.doc)) != std::string::npos);
  }
  CHECK(listing.find("pool.size  (integer, 1..100000, default 20, reloadable)\n") !=
        std::string::npos);
  CHECK(listing.find("listen.port  (integer, 1..65535, default 6432, needs restart)\n") !=
        std::string::npos);
  CHECK(listing.find("databases.<name>.url  (connection url, required, reloadable)\n") !=
        std::string::npos);
}

TEST_CASE("key table: each value is stored into the struct its section reads into",
          "[config][keys]") {
  // The loader calls std::get<store_fn<Section>> on these; a mismatch would throw at load.
  for (const auto& spec : key_table()) {
    if (spec.store.index() == 0) continue;
    CAPTURE(spec.path);
    const auto parent = key_parent(spec);
    if (parent.empty()) {
      CHECK(std::holds_alternative<store_fn<settings>>(spec.store));
    } else if (parent == "listen") {
      CHECK(std::holds_alternative<store_fn<listen_settings>>(spec.store));
    } else if (parent == "listen.tls") {
      CHECK(std::holds_alternative<store_fn<client_tls_settings>>(spec.store));
    } else if (parent == "pool") {
      CHECK(std::holds_alternative<store_fn<pool_settings>>(spec.store));
    } else if (parent == "databases.<name>") {
      CHECK(std::holds_alternative<store_fn<database_settings>>(spec.store));
    } else if (parent == "users[]") {
      CHECK(std::holds_alternative<store_fn<user_settings>>(spec.store));
    } else {
      FAIL("a section the loader does not read: " << parent);
    }
  }
}
