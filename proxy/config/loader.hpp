#pragma once
// Loading a config: YAML text -> settings, or every problem in it at once.
//
// Flow: parse the YAML (a syntax error stops here, with its position) -> walk the document
// with the key table: unknown and duplicate keys, `${NAME}` expansion, each scalar parsed
// and range-checked -> validate_settings() for rules that span keys -> `config` is set only
// when `errors` is empty. Everything is a pure function of its inputs: the environment is
// passed in, and only load_config_file() touches the file system.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config_error.hpp"
#include "proxy/config/env_expansion.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::config {

struct load_result {
  std::optional<settings> config;    // set exactly when `errors` is empty
  std::vector<config_error> errors;  // sorted by position in the file
};

// `file_name` is only used in error messages.
load_result load_config_text(std::string_view yaml_text, std::string_view file_name,
                             const env_lookup& env);

// An unreadable file gives one error with no position.
load_result load_config_file(const std::string& path, const env_lookup& env);

// The real environment (getenv), for main().
env_lookup process_environment();

}  // namespace sluice::config
