// sluice: a PostgreSQL connection pooler. Command line entry point.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "proxy/command_line_help.hpp"
#include "proxy/config/config_reference.hpp"
#include "proxy/config/loader.hpp"
#include "proxy/daemon.hpp"
#include "proxy/import_pgbouncer_command.hpp"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace {

std::shared_ptr<spdlog::logger> make_logger(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto log = std::make_shared<spdlog::logger>("sluice", std::move(sink));
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  log->set_level(spdlog::level::from_str(level));
  log->flush_on(spdlog::level::trace);
  return log;
}

// `sluice config-reference [--man]`: the key table as Markdown or as sluice.yaml(5).
int config_reference_command(std::span<char* const> args) {
  bool man = false;
  for (const std::string_view arg : args) {
    if (arg == "--man") {
      man = true;
    } else {
      fmt::print(stderr, "sluice config-reference: unknown argument \"{}\"\n\n{}", arg,
                 sluice::proxy::usage_text());
      return 2;
    }
  }
  fmt::print("{}", man ? sluice::config::config_reference_man(SLUICE_VERSION)
                       : sluice::config::config_reference_markdown());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Commands come first on the line; everything else is the daemon's options.
  if (argc >= 2) {
    const std::string_view command = argv[1];
    const std::span<char* const> rest(argv + 2, static_cast<std::size_t>(argc - 2));
    if (command == "config-reference") return config_reference_command(rest);
    if (command == "import-pgbouncer") return sluice::proxy::import_pgbouncer_command(rest);
  }
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", sluice::proxy::help_text());
      return 0;
    }
    if (arg == "--version") {
      fmt::print("sluice {}\n", SLUICE_VERSION);
      return 0;
    }
    if (arg == "--check") {
      check_only = true;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = std::string(arg.substr(9));
    } else {
      fmt::print(stderr, "sluice: unknown argument \"{}\"\n\n{}", arg, sluice::proxy::usage_text());
      return 2;
    }
  }
  if (config_path.empty()) {
    fmt::print(stderr, "sluice: no config given (-c FILE)\n\n{}", sluice::proxy::usage_text());
    return 2;
  }

  auto loaded =
      sluice::config::load_config_file(config_path, sluice::config::process_environment());
  if (!loaded.errors.empty()) {
    for (const auto& error : loaded.errors) fmt::print(stderr, "{}\n", error.to_string());
    fmt::print(stderr, "sluice: {} error(s) in {}\n", loaded.errors.size(), config_path);
    return 1;
  }
  if (check_only) {
    fmt::print("{}: configuration is valid\n", config_path);
    return 0;
  }
  auto log = make_logger(loaded.config->log_level);
  return sluice::proxy::run_daemon(*loaded.config, log);
}
