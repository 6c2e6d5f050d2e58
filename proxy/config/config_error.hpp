#pragma once
// One problem found in a config file, pointing at where it is.

#include <string>

namespace sluice::config {

struct config_error {
  std::string file;
  int line = 0;     // 1-based; 0 when the problem is the file itself (e.g. unreadable)
  int column = 0;   // 1-based
  std::string key;  // path such as "pool.size", "databases.app.url", "users[0].password"
  std::string problem;

  // "file:line:col: key: problem"; the position and key are left out when absent.
  std::string to_string() const;

  bool operator==(const config_error&) const = default;
};

}  // namespace sluice::config
