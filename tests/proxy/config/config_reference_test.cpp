// The generated reference and the hand-written sample configs agree with the key table, so
// the documentation cannot drift from what the loader accepts.
#include "proxy/config/config_reference.hpp"

#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include "config_test_support.hpp"
#include "proxy/config/key_table.hpp"

using namespace sluice::config;
using namespace sluice::config::testing;

namespace {

const std::string source_dir = SLUICE_SOURCE_DIR;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// What the man page writes for literal text: hyphens as \-.
std::string troff(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '-') out += '\\';
    out += c;
  }
  return out;
}

// Every key a sample config writes (not per-database or per-user ones) holds the table's
// default, written the way the table writes it. A key without a default (a certificate's path)
// may be left out: the sample shows it as a comment.
void check_defaults_written(const std::string& path) {
  const YAML::Node root = YAML::LoadFile(path);
  for (const auto& spec : key_table()) {
    if (spec.path.find('<') != std::string_view::npos || spec.path.starts_with("users") ||
        spec.path == "databases") {
      continue;
    }
    CAPTURE(path, spec.path);
    YAML::Node node = YAML::Clone(root);
    std::string_view rest = spec.path;
    bool found = true;
    while (found && !rest.empty()) {
      const auto dot = rest.find('.');
      const std::string part(rest.substr(0, dot));
      node = node[part];
      found = node.IsDefined();
      rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    }
    if (!found && spec.default_value.empty()) continue;
    REQUIRE(found);  // every key is written out
    if (node.IsMap()) continue;
    if (node.IsSequence()) {
      CHECK(node.size() == 0);
      CHECK(spec.default_value == "[]");
    } else {
      CHECK(node.Scalar() == spec.default_value);
    }
  }
}

}  // namespace

TEST_CASE("docs/configuration.md is what `sluice config-reference` prints", "[config][docs]") {
  // After changing the key table: build/sluice config-reference > docs/configuration.md
  CHECK(read_file(source_dir + "/docs/configuration.md") == config_reference_markdown());
}

TEST_CASE("the Markdown reference gives every key its facts and doc", "[config][docs]") {
  const std::string md = config_reference_markdown();
  for (const auto& spec : key_table()) {
    CAPTURE(spec.path);
    const auto at = md.find("### `" + std::string(spec.path) + "`\n");
    REQUIRE(at != std::string::npos);
    const auto entry = md.substr(at, md.find("\n### ", at + 1) - at);
    CHECK(entry.find(spec.doc) != std::string::npos);
    CHECK(entry.find(spec.reloadable ? "**reloadable**" : "**needs a restart**") !=
          std::string::npos);
    if (spec.required) {
      CHECK(entry.find("**required**") != std::string::npos);
    } else if (!spec.default_value.empty()) {
      CHECK(entry.find("**default:** `" + std::string(spec.default_value) + "`") !=
            std::string::npos);
    }
    if (spec.type == value_type::integer) {
      CHECK(entry.find("**range:** " + std::to_string(spec.min)) != std::string::npos);
    }
  }
}

TEST_CASE("sluice.yaml(5) gives every key its default", "[config][docs]") {
  const std::string man = config_reference_man("1.2.3");
  CHECK(man.find(".TH SLUICE.YAML 5 \"\" \"sluice 1.2.3\"") != std::string::npos);
  for (const auto& spec : key_table()) {
    CAPTURE(spec.path);
    const auto at = man.find(".TP\n.B " + troff(spec.path) + "\n");
    REQUIRE(at != std::string::npos);
    const auto entry = man.substr(at, man.find("\n.TP\n", at + 1) - at);
    if (spec.required) {
      CHECK(entry.find("required") != std::string::npos);
    } else if (!spec.default_value.empty()) {
      CHECK(entry.find("default \\fB" + troff(spec.default_value) + "\\fR") != std::string::npos);
    }
  }
  // No line may start with a character troff would take for a request.
  std::istringstream lines(man);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with('\'')) FAIL(line);
  }
}

TEST_CASE("etc/sluice.yaml writes every key with the table's default", "[config][docs]") {
  check_defaults_written(source_dir + "/etc/sluice.yaml");
}

TEST_CASE("the package's /etc/sluice/sluice.yaml loads with no environment", "[config][docs]") {
  const std::string path = source_dir + "/packaging/sluice.yaml";
  const auto result = load_config_file(path, fake_env());
  REQUIRE(error_strings(result) == std::vector<std::string>{});
  const settings& c = *result.config;
  CHECK(c.listen.host == "127.0.0.1");  // nothing reachable from elsewhere until told
  REQUIRE(c.users.size() == 1);
  // The shipped user is locked: a SCRAM verifier no password matches, not a password.
  CHECK(classify_password(c.users[0].password) == password_format::scram_sha_256);
  check_defaults_written(path);
}
