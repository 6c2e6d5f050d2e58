#pragma once
// The one table of config keys. Each row names a key, says how its scalar is read, gives
// its default as it would be written in YAML, whether a reload may change it, its
// documentation, and where the parsed value is stored. The loader walks YAML with it (so
// a key missing here is an "unknown key"), and describe_keys() prints it for `--help`.
//
// Paths: "pool.size" is a key nested in a mapping; "databases.<name>" stands for every
// entry of the `databases` mapping and "users[]" for every item of the `users` list.
// A database's `pool:` takes the same keys as the top-level `pool:` (the "pool.*" rows).

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/config/scalars.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config {

// How a key's value is written.
enum class value_type {
  section,            // a mapping of further keys (children are rows under this path)
  database_map,       // `databases`: database name -> section
  user_list,          // `users`: a list of sections
  string,             // any non-empty text
  choice,             // one word out of `choices`
  integer,            // a whole number within [min, max]
  duration,           // "250ms", "30s", "5m", "1h" or seconds
  optional_duration,  // a duration, or `off`
  byte_size,          // "64MB", "1kB" or bytes, within [min, max]
  url,                // a libpq URI or keyword/value connection string
  name_list,          // a YAML list of user names ([a, b] or "- a" lines); [] = none
};

// What a duration of 0 means for a key.
enum class zero_rule {
  allowed,  // 0 is a real value (e.g. pre_ping: 0 = ping every time)
  off,      // 0 is the same as `off` (optional durations only)
  invalid,  // 0 is an error (e.g. a timeout that would fail every wait at once)
};

// One accepted word of a `choice` key and the enum value it stands for.
struct choice {
  std::string_view word;
  int value;
};

// A scalar after parsing, before it is stored into its struct.
// A name_list's items are parsed one at a time (each a std::string), then stored together.
using parsed_value = std::variant<std::string, std::uint64_t, duration, std::optional<duration>,
                                  choice, upstream_settings, std::vector<std::string>>;

template <class Section>
using store_fn = void (*)(Section& section, const parsed_value& value);

// Where a row's value goes; the alternative names the struct its section parses into.
using store_target = std::variant<std::monostate, store_fn<settings>, store_fn<listen_settings>,
                                  store_fn<client_tls_settings>, store_fn<pool_settings>,
                                  store_fn<database_settings>, store_fn<user_settings>>;

struct key_spec {
  std::string_view path;
  value_type type;
  std::string_view default_value;  // as written in YAML; "" = none (the key is required)
  bool reloadable;                 // whether a reload may change it without a restart
  std::string_view doc;
  bool required = false;  // must be present in its section
  bool optional = false;  // may be left out and has no default value; its doc says what then
  bool secret = false;    // its value is never echoed in an error
  zero_rule zero = zero_rule::allowed;
  std::uint64_t min = 0;  // for integer and byte_size
  std::uint64_t max = std::numeric_limits<std::uint32_t>::max();
  std::span<const choice> choices = {};
  store_target store = {};
};

// Every row, parents before their children, in the order `--help` lists them.
std::span<const key_spec> key_table();

// The row at `path` ("pool.size", "databases.<name>.url"), or nullptr.
const key_spec* find_key(std::string_view path);

// The last component of a row's path: "size" for "pool.size", "users[]" for "users[]".
std::string_view key_name(const key_spec& spec);

// The row a row's path sits under: "pool" for "pool.size", "databases" for
// "databases.<name>", "users" for "users[]", "" for a top-level key.
std::string_view key_parent(const key_spec& spec);

// Whether a row stands for the elements of a map or list ("databases.<name>", "users[]")
// rather than for a key written in the file.
bool is_element(const key_spec& spec);

// How the row's value is written, for messages and `--help`: "duration | off",
// "session | transaction".
std::string describe_type(const key_spec& spec);

// Reads a scalar's text (already env-expanded) as the row says; for a name_list, one item of
// it. `database_name` is the database a `url` belongs to (its default dbname).
scalar_result<parsed_value> parse_value(const key_spec& spec, std::string_view text,
                                        std::string_view database_name = {});

// The `--help` listing: one line per key with its type, default, reload behaviour and doc.
std::string describe_keys();

}  // namespace sluice::config
