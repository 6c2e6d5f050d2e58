#include "proxy/command_line_help.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "proxy/config/key_table.hpp"

namespace sluice::proxy {

TEST_CASE("--help lists every key of the key table", "[proxy][help]") {
  const std::string help = help_text();
  CHECK(help.starts_with(usage_text()));
  for (const auto& spec : config::key_table()) {
    CAPTURE(spec.path);
    // One entry per key: "path  (type[, default X | , required], reloadable | needs restart)"
    // on a line of its own, then its documentation.
    std::string facts = config::describe_type(spec);
    if (spec.required) {
      facts += ", required";
    } else if (!spec.default_value.empty()) {
      facts += ", default " + std::string(spec.default_value);
    }
    facts += spec.reloadable ? ", reloadable" : ", needs restart";
    const std::string entry =
        "\n" + std::string(spec.path) + "  (" + facts + ")\n    " + std::string(spec.doc) + "\n";
    CHECK(help.find(entry) != std::string::npos);
  }
}

TEST_CASE("the usage shown with a command-line error is short", "[proxy][help]") {
  const std::string_view usage = usage_text();
  CHECK(usage.find("--check") != std::string_view::npos);
  CHECK(usage.find("pool.size") == std::string_view::npos);
}

TEST_CASE("sluice(8) names every option and command of the usage", "[proxy][help]") {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/packaging/man/sluice.8");
  std::ostringstream man;
  man << in.rdbuf();
  REQUIRE_FALSE(man.str().empty());
  // The man page writes every hyphen of an option or command as \-.
  const auto troff = [](std::string word) {
    return std::regex_replace(word, std::regex("-"), "\\-");
  };
  const std::string usage(usage_text());
  const std::regex word(R"((--?[a-z][a-z-]*)|\b(config-reference|import-pgbouncer)\b)");
  int seen = 0;
  for (auto it = std::sregex_iterator(usage.begin(), usage.end(), word);
       it != std::sregex_iterator(); ++it, ++seen) {
    CAPTURE(it->str());
    CHECK(man.str().find(troff(it->str())) != std::string::npos);
  }
  CHECK(seen >= 8);
}

}  // namespace sluice::proxy
