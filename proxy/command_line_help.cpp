#include "proxy/command_line_help.hpp"

#include "proxy/config/key_table.hpp"

namespace sluice::proxy {
namespace {

constexpr std::string_view usage = R"(Usage: sluice -c FILE [--check]
       sluice config-reference [--man]
       sluice import-pgbouncer PGBOUNCER.INI [--userlist USERLIST.TXT]
       sluice --version | --help

A PostgreSQL connection pooler: clients connect to sluice as if it were PostgreSQL,
and it multiplexes them onto a small pool of server connections.

Options:
  -c, --config FILE   the YAML config (see etc/sluice.yaml for every key)
      --check         validate the config, print every error, and exit (0 = valid)
      --version       print the version and exit
  -h, --help          print this help and exit

Commands:
  config-reference    print every config key as Markdown; with --man, as the
                      sluice.yaml(5) man page
  import-pgbouncer    convert a PgBouncer config (and its auth_file, with
                      --userlist) to sluice YAML on stdout; what sluice does
                      differently or not at all becomes a comment

Signals: SIGINT/SIGTERM stop the daemon; SIGHUP is logged and ignored (no reload yet).
)";

}  // namespace

std::string_view usage_text() {
  return usage;
}

std::string help_text() {
  std::string out(usage);
  out +=
      "\nConfig keys: path  (type, default, reloadable | needs restart)\n"
      "\"pool.*\" keys may also be set per database, under databases.<name>.pool.\n"
      "sluice does not reload its config yet: for now every change needs a restart.\n\n";
  out += config::describe_keys();
  return out;
}

}  // namespace sluice::proxy
