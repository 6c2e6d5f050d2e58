#pragma once
// Recognises the few SQL commands a pooler must handle itself because they act on prepared
// statements, which sluice names differently on each server: PREPARE, EXECUTE,
// DEALLOCATE [PREPARE] name | ALL, and DISCARD ALL. Anything else, including several
// statements in one Query, is `other`.
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol {

struct sql_command {
  enum class kind {
    other,           // not one of the commands below: forwarded as it is
    deallocate,      // DEALLOCATE [PREPARE] name: `name` holds it, folded as PostgreSQL folds it
    deallocate_all,  // DEALLOCATE [PREPARE] ALL
    discard_all,     // DISCARD ALL
    prepare,         // PREPARE name [(types)] AS statement: `rest` is the text after the name
    execute,         // EXECUTE name [(arguments)]: `rest` is the text after the name
  };
  kind what = kind::other;
  std::string name;
  std::string rest;  // prepare/execute: everything after the name, byte for byte
};

sql_command classify_sql_command(std::string_view sql);

// The statement of a PREPARE definition (what follows the name: "[(types)] AS statement"), or ""
// when the definition does not read that way.
std::string_view prepared_statement_body(std::string_view definition);

// The statements of a simple Query, as views into `sql`, blank ones dropped. False when a
// literal, quoted identifier or comment is left open.
bool split_statements(std::string_view sql, std::vector<std::string_view>& statements);

}  // namespace sluice::protocol
