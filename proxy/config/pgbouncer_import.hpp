#pragma once
// `sluice import-pgbouncer`: a PgBouncer configuration (pgbouncer.ini with its %include files,
// and optionally its auth_file) turned into sluice YAML.
//
// Flow: proxy/config/pgbouncer_ini.hpp reads the files -> import_pgbouncer() takes PgBouncer's
// effective value of each setting it maps (the file's, else PgBouncer's own default, since the
// two poolers' defaults differ: PgBouncer pools in session mode unless told otherwise) and
// writes it under sluice's name -> every setting, database or user parameter sluice does not
// have, or treats differently, becomes a `#` comment at the place it belongs, so nothing is
// dropped silently.
//
// Secrets: a plain password (from the auth_file or a database's connection string) is never
// written out; it becomes a `${NAME}` reference, and `variables` says which to set. md5 hashes
// and SCRAM verifiers are kept, as sluice checks clients against them directly. The output
// passes `sluice --check` once those variables are set.
//
// Pure: no I/O, no environment; the command (proxy/import_pgbouncer_command.hpp) reads files.

#include <string>
#include <vector>

#include "proxy/config/pgbouncer_ini.hpp"

namespace sluice::config::pgbouncer {

// An environment variable the output refers to instead of a password.
struct env_variable {
  std::string name;     // e.g. SLUICE_PASSWORD_ALICE
  std::string purpose;  // e.g. "password of user \"alice\" (userlist.txt:3)"
};

struct import_result {
  std::string yaml;
  std::vector<env_variable> variables;
};

// `users` is the parsed auth_file, or nullptr when none was given: then every user name the
// ini mentions (admin_users, stats_users, [users], a database's user=) gets a `${NAME}`
// password. `ini_name` and `userlist_name` only label the output.
import_result import_pgbouncer(const ini_file& ini, std::string_view ini_name,
                               const userlist* users);

// The variable a user's password is read from: SLUICE_PASSWORD_ + the name in upper case,
// anything but letters and digits as `_`.
std::string password_variable(std::string_view user);

}  // namespace sluice::config::pgbouncer
