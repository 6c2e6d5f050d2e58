#pragma once
// The rules that span several keys (min_size <= size, unique user names, passwords usable
// with the chosen auth, admin_users and stats_users naming configured users), checked on the parsed
// structs. Rules about a single value live in the key table; this is everything else.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config_error.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config {

// 1-based line and column of a value in the config file.
struct source_position {
  int line = 1;
  int column = 1;
  // False when the value there could not be read. Its error is already reported, and
  // rules that depend on it are skipped rather than judged on the default in its place.
  bool valid = true;
};

// Where each key the file sets was written, by path ("pool.size", "users[1].name",
// "databases.app.pool.min_size"); the loader fills it while it reads the YAML.
using source_map = std::map<std::string, source_position, std::less<>>;

// Every cross-key problem in `config`, each placed at the key that causes it. Pure: the same
// inputs give the same errors, and nothing else is read.
std::vector<config_error> validate_settings(const settings& config, const source_map& where,
                                            std::string_view file_name);

}  // namespace sluice::config
