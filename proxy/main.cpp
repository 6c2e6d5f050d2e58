// sluice: a PostgreSQL connection pooler. Command line entry point.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "proxy/command_line_help.hpp"
#include "proxy/config/loader.hpp"
#include "proxy/daemon.hpp"

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

}  // namespace

int main(int argc, char** argv) {
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
