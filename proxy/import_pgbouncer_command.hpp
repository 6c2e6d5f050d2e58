#pragma once
// `sluice import-pgbouncer PGBOUNCER.INI [--userlist USERLIST.TXT]`: reads the files (and the
// ini's %include files) and prints the sluice YAML that proxy/config/pgbouncer_import.hpp makes
// of them. This is the only part of the importer that does I/O.
#include <span>

namespace sluice::proxy {

// `args` are the words after "import-pgbouncer". Writes the YAML to stdout and what to do next
// (the variables to set) to stderr; returns the exit status: 0, 1 when a file could not be
// read, 2 for a usage error.
int import_pgbouncer_command(std::span<char* const> args);

}  // namespace sluice::proxy
