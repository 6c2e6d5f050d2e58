// Fuzz target: the config loader (proxy/config/loader) on YAML text, the whole path a config
// takes before the daemon trusts it: YAML parsing, the key table walk, ${VAR} expansion, scalar
// parsing and range checks, upstream URL parsing and validate_settings().
//
// Checked on every input, besides no crash and no sanitizer report: a config comes back exactly
// when there is no error; errors are sorted by position and each names the file; and a second
// load of the same text gives the same answer (the loader is a pure function of its inputs).
#include <cstdint>
#include <map>
#include <string>

#include "proxy/config/loader.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

// A fixed environment, so ${...} expansion is exercised without reading the real one.
std::optional<std::string> fake_env(std::string_view name) {
  static const std::map<std::string, std::string, std::less<>> vars{
      {"PGPORT", "5432"}, {"PASSWORD", "s3cret"}, {"EMPTY", ""}, {"URL", "postgresql://u@h/db"}};
  if (const auto it = vars.find(name); it != vars.end()) return it->second;
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const auto in = fuzz::as_chars(data, size);
  const std::string_view text(in.data(), in.size());
  const config::env_lookup env = fake_env;

  const auto loaded = config::load_config_text(text, "fuzz.yaml", env);
  SLUICE_FUZZ_CHECK(loaded.config.has_value() == loaded.errors.empty());
  for (std::size_t i = 0; i < loaded.errors.size(); ++i) {
    const auto& e = loaded.errors[i];
    SLUICE_FUZZ_CHECK(e.file == "fuzz.yaml");
    SLUICE_FUZZ_CHECK(!e.problem.empty());
    SLUICE_FUZZ_CHECK(e.to_string().starts_with("fuzz.yaml"));
    if (i > 0) {
      const auto& p = loaded.errors[i - 1];
      SLUICE_FUZZ_CHECK(p.line < e.line || (p.line == e.line && p.column <= e.column));
    }
  }
  const auto again = config::load_config_text(text, "fuzz.yaml", env);
  SLUICE_FUZZ_CHECK(again.errors == loaded.errors);
  SLUICE_FUZZ_CHECK(again.config.has_value() == loaded.config.has_value());
  return 0;
}
