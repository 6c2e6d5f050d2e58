#include "proxy/import_pgbouncer_command.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "proxy/command_line_help.hpp"
#include "proxy/config/pgbouncer_import.hpp"
#include "proxy/config/pgbouncer_ini.hpp"

namespace sluice::proxy {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(text).str();
}

int usage_error(std::string_view problem) {
  fmt::print(stderr, "sluice import-pgbouncer: {}\n\n{}", problem, usage_text());
  return 2;
}

}  // namespace

int import_pgbouncer_command(std::span<char* const> args) {
  std::string ini_path;
  std::string userlist_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--userlist" && i + 1 < args.size()) {
      userlist_path = args[++i];
    } else if (arg.starts_with("--userlist=")) {
      userlist_path = std::string(arg.substr(11));
    } else if (!arg.starts_with("-") && ini_path.empty()) {
      ini_path = arg;
    } else {
      return usage_error(fmt::format("unknown argument \"{}\"", arg));
    }
  }
  if (ini_path.empty()) return usage_error("no pgbouncer.ini given");

  const auto ini_text = read_file(ini_path);
  if (!ini_text) {
    fmt::print(stderr, "sluice import-pgbouncer: cannot read {}\n", ini_path);
    return 1;
  }
  // %include paths are taken as PgBouncer takes them: relative to the working directory.
  const auto ini = config::pgbouncer::parse_ini(*ini_text, ini_path, read_file);

  std::optional<config::pgbouncer::userlist> users;
  if (!userlist_path.empty()) {
    const auto text = read_file(userlist_path);
    if (!text) {
      fmt::print(stderr, "sluice import-pgbouncer: cannot read {}\n", userlist_path);
      return 1;
    }
    users = config::pgbouncer::parse_userlist(*text, userlist_path);
  }

  const auto result = config::pgbouncer::import_pgbouncer(ini, ini_path, users ? &*users : nullptr);
  fmt::print("{}", result.yaml);
  for (const auto& problem : ini.problems) {
    fmt::print(stderr, "sluice import-pgbouncer: {}\n", problem);
  }
  if (!result.variables.empty()) {
    fmt::print(stderr,
               "sluice import-pgbouncer: passwords were not copied; set {} environment "
               "variable(s) the output names at the top\n",
               result.variables.size());
  }
  return 0;
}

}  // namespace sluice::proxy
