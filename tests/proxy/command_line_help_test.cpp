#include "proxy/command_line_help.hpp"

#include <catch2/catch.hpp>

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

}  // namespace sluice::proxy
