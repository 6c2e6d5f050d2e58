// Fuzz target: the SQL command classifier (protocol/sql_command), which runs on every simple
// Query a client sends and decides which ones sluice answers itself (PREPARE, EXECUTE,
// DEALLOCATE, DISCARD ALL). The input is the query text.
//
// Checked on every input, besides no crash and no sanitizer report:
// - a command sluice acts on is one whole statement: split_statements accepts the text and
//   finds exactly one (sluice must never act on half of a multi-statement Query, nor on text
//   PostgreSQL would reject as unterminated);
// - PREPARE/EXECUTE carry a name, and `rest` is the end of the text, byte for byte;
// - split_statements gives non-blank views into the text, in order, without overlap, and each
//   statement on its own splits to itself.
#include <cctype>
#include <cstdint>
#include <string_view>
#include <vector>

#include "protocol/sql_command.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

bool blank(std::string_view s) {
  for (const char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const auto in = fuzz::as_chars(data, size);
  const std::string_view sql(in.data(), in.size());

  std::vector<std::string_view> statements;
  const bool split = protocol::split_statements(sql, statements);
  if (split) {
    const char* previous_end = sql.data();
    for (const auto statement : statements) {
      SLUICE_FUZZ_CHECK(fuzz::within(in, statement));
      SLUICE_FUZZ_CHECK(statement.data() >= previous_end);
      SLUICE_FUZZ_CHECK(!blank(statement));
      previous_end = statement.data() + statement.size();
      std::vector<std::string_view> again;
      SLUICE_FUZZ_CHECK(protocol::split_statements(statement, again));
      SLUICE_FUZZ_CHECK(again.size() == 1 && again[0] == statement);
    }
  }

  const auto command = protocol::classify_sql_command(sql);
  using kind = protocol::sql_command::kind;
  if (command.what == kind::other) return 0;
  SLUICE_FUZZ_CHECK(split);
  SLUICE_FUZZ_CHECK(statements.size() == 1);
  if (command.what == kind::prepare || command.what == kind::execute) {
    SLUICE_FUZZ_CHECK(!command.name.empty());
    SLUICE_FUZZ_CHECK(sql.ends_with(command.rest));
  } else {
    SLUICE_FUZZ_CHECK(command.rest.empty());
    if (command.what != kind::deallocate) SLUICE_FUZZ_CHECK(command.name.empty());
  }
  return 0;
}
