#pragma once
// The `options` startup parameter, as libpq sends it and PostgreSQL reads it: command-line
// switches separated by spaces, where a backslash escapes the next character. sluice tracks
// the `-c name=value` and `--name=value` forms as session parameters, so that every server the
// client lands on gets them; any other switch cannot be replayed with SET and is refused.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::proxy {

struct parsed_options {
  std::vector<std::pair<std::string, std::string>> settings;  // name, value
  std::string unsupported;  // the first switch that is not a setting, or ""
};

parsed_options parse_startup_options(std::string_view options);

}  // namespace sluice::proxy
