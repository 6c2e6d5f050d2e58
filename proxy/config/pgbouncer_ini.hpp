#pragma once
// PgBouncer's file formats, read as PgBouncer reads them, for `sluice import-pgbouncer`:
// pgbouncer.ini (sections of `key = value` lines, `;` or `#` comments, `%include FILE`), the
// connection strings of its [databases] and [users] lines (`key=value` pairs, values optionally
// in single quotes with backslash escapes, as libpq writes them), and the auth_file's
// `"user" "password"` lines.
//
// Pure: an %include is read through the `read_file` callback the caller passes (the command
// reads files; tests pass strings). Problems are returned as `file:line: problem`, never
// with a value in them (values may be passwords).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config::pgbouncer {

// Where a line came from, for comments in the output and for problems.
struct source_line {
  std::string file;
  int line = 0;
};

struct ini_entry {
  std::string key;    // as written (database and user names are case-sensitive)
  std::string value;  // the rest of the line, trimmed
  source_line where;
};

struct ini_section {
  std::string name;  // lower-cased: "pgbouncer", "databases", "users", "peers"
  std::vector<ini_entry> entries;
};

struct ini_file {
  // In file order; a section named twice (or again in an included file) appears twice, as
  // PgBouncer reads it: later lines win.
  std::vector<ini_section> sections;
  std::vector<std::string> problems;  // lines that are not `key = value`, unreadable includes
  std::vector<std::string> included;  // every %include file read, in order
};

// nullopt when the file cannot be read.
using file_reader = std::function<std::optional<std::string>(const std::string& path)>;

// Reads `text` (the contents of `file_name`). An %include's path is passed to `read_file` as
// written: PgBouncer takes a relative one relative to its working directory, not the file's.
ini_file parse_ini(std::string_view text, std::string_view file_name, const file_reader& read_file);

// One `key=value` pair of a connection string.
struct connstr_param {
  std::string key;
  std::string value;
};

struct connstr_result {
  std::vector<connstr_param> params;  // in order
  std::string problem;                // empty when the whole string was read
};

// "host=a port=5 connect_query='set x=1'": keys are lower-cased.
connstr_result parse_connstr(std::string_view text);

struct userlist_entry {
  std::string name;
  std::string secret;  // a password, "md5..." or "SCRAM-SHA-256$..."
  source_line where;
};

struct userlist {
  std::vector<userlist_entry> users;
  std::vector<std::string> problems;
};

// The auth_file format: `"name" "secret" ...`, `""` for a quote inside a field, the rest of the
// line ignored; lines starting with `;` or `#` and blank lines are comments.
userlist parse_userlist(std::string_view text, std::string_view file_name);

// Database names may be written as SQL identifiers: "my db" -> my db, "a""b" -> a"b.
std::string unquote_identifier(std::string_view name);

}  // namespace sluice::config::pgbouncer
