#pragma once
// `${NAME}` substitution in config scalars. The environment is injected as a function so
// that loading a config never reads the process environment behind the caller's back
// (tests pass a map; main() passes process_environment()).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

// Returns the value of environment variable `name`, or nullopt when it is not set.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

struct expansion {
  std::string text;                   // the scalar with every `${NAME}` replaced
  std::vector<std::string> missing;   // names that `env` does not know, in order of use
  std::optional<std::string> syntax;  // a malformed reference, e.g. an unterminated `${`
  bool used_env = false;              // whether any `${NAME}` was replaced

  bool ok() const { return missing.empty() && !syntax; }
};

// Replaces each `${NAME}` (NAME = [A-Za-z_][A-Za-z0-9_]*) with env(NAME). `$${` is a
// literal `${`; any other `$` is kept as is. Substituted values are not scanned again, so a
// secret that happens to contain `${` stays intact. Messages name variables, never values.
expansion expand_env(std::string_view text, const env_lookup& env);

}  // namespace sluice::config
