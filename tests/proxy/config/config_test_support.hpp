#pragma once
// Helpers shared by the config tests: a fake environment and error formatting.

#include <map>
#include <string>
#include <vector>

#include "proxy/config/loader.hpp"

namespace sluice::config::testing {

// An env_lookup backed by a fixed map, so tests never read the real environment.
inline env_lookup fake_env(std::map<std::string, std::string, std::less<>> vars = {}) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    if (const auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

inline std::vector<std::string> error_strings(const load_result& result) {
  std::vector<std::string> out;
  for (const auto& e : result.errors) out.push_back(e.to_string());
  return out;
}

// An upstream_settings with every field given (g++ 12 warns about designated initializers
// that leave fields to their defaults).
inline upstream_settings upstream(std::string host, std::uint16_t port, std::string dbname,
                                  std::string user = {}, std::string password = {},
                                  std::string sslmode = {}, std::string options = {},
                                  std::string application_name = {}) {
  upstream_settings out;
  out.host = std::move(host);
  out.port = port;
  out.dbname = std::move(dbname);
  out.user = std::move(user);
  out.password = std::move(password);
  out.sslmode = std::move(sslmode);
  out.options = std::move(options);
  out.application_name = std::move(application_name);
  return out;
}

// The smallest valid config: the required database and user.
inline constexpr std::string_view minimal_sections =
    "databases:\n"
    "  app:\n"
    "    url: postgresql://db.internal/app\n"
    "users:\n"
    "  - name: app\n"
    "    password: pw\n";

inline load_result load(std::string_view text, env_lookup env = fake_env()) {
  return load_config_text(text, "test.yaml", env);
}

}  // namespace sluice::config::testing
