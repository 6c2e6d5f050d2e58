#include "proxy/config/env_expansion.hpp"

#include <catch2/catch.hpp>

#include "config_test_support.hpp"

using namespace sluice::config;
using sluice::config::testing::fake_env;

namespace {
const env_lookup env = fake_env({{"HOST", "db.internal"},
                                 {"PORT", "5433"},
                                 {"EMPTY", ""},
                                 {"TRICKY", "a${HOST}b"},
                                 {"_x1", "under"}});
}

TEST_CASE("env expansion: substitutions", "[config][env]") {
  const auto [text, expected, used_env] = GENERATE(table<std::string, std::string, bool>({
      {"", "", false},
      {"plain", "plain", false},
      {"${HOST}", "db.internal", true},
      {"${HOST}:${PORT}", "db.internal:5433", true},
      {"pre-${HOST}-post", "pre-db.internal-post", true},
      {"${EMPTY}", "", true},
      {"${_x1}", "under", true},
      {"$${HOST}", "${HOST}", false},    // escaped
      {"$$${HOST}", "$${HOST}", false},  // leftmost "$${" wins: "$" + escaped "${"
      {"$${${HOST}}", "${db.internal}", true},
      {"$HOST", "$HOST", false},  // no braces: not a reference
      {"cost: $5", "cost: $5", false},
      {"$", "$", false},
      {"a$$b", "a$$b", false},
      {"${TRICKY}", "a${HOST}b", true},  // values are not expanded again
  }));
  CAPTURE(text);
  const auto out = expand_env(text, env);
  CHECK(out.ok());
  CHECK(out.text == expected);
  CHECK(out.used_env == used_env);
}

TEST_CASE("env expansion: every missing variable is named", "[config][env]") {
  const auto out = expand_env("${NOPE}:${HOST}:${ALSO_NOPE}", env);
  CHECK_FALSE(out.ok());
  CHECK(out.missing == std::vector<std::string>{"NOPE", "ALSO_NOPE"});
  CHECK_FALSE(out.syntax);
}

TEST_CASE("env expansion: malformed references", "[config][env]") {
  const auto [text, problem] = GENERATE(table<std::string, std::string>({
      {"${HOST", "unterminated \"${\" (write \"$${\" for a literal \"${\")"},
      {"abc${", "unterminated \"${\" (write \"$${\" for a literal \"${\")"},
      {"${}", "malformed \"${...}\": a variable name is letters, digits and _"},
      {"${1X}", "malformed \"${...}\": a variable name is letters, digits and _"},
      {"${A-B}", "malformed \"${...}\": a variable name is letters, digits and _"},
      {"p${se cret}", "malformed \"${...}\": a variable name is letters, digits and _"},
  }));
  CAPTURE(text);
  const auto out = expand_env(text, env);
  CHECK_FALSE(out.ok());
  REQUIRE(out.syntax);
  CHECK(*out.syntax == problem);
}

TEST_CASE("env expansion: no lookup function means nothing is set", "[config][env]") {
  const auto out = expand_env("${HOST}", env_lookup{});
  CHECK(out.missing == std::vector<std::string>{"HOST"});
}
