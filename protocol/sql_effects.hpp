#pragma once
// What a statement's text says about the session state it leaves behind on a server: the part
// of a PostgreSQL session that outlives a transaction, which a transaction-mode pooler must
// account for before the server serves another client.
//
// A look at the text, not a parse: first words of each statement, and function names anywhere
// (a DO body or a string included, the safe side). What it cannot see (a function that runs SET
// inside its body) is what a pooler must either audit or document.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol {

struct sql_effects {
  // SET (not LOCAL), RESET, SET SESSION ..., DISCARD, set_config(..., false), DO, CALL: the
  // session's settings may differ afterwards.
  bool settings = false;
  // The settings SET, RESET or set_config() name in the text (lower case), where it names them
  // plainly: the custom ones ("app.tenant") are found only this way when reading a session's
  // settings back, as PostgreSQL does not list them in pg_settings.
  std::vector<std::string> setting_names;
  // LISTEN: a subscription that belongs to the server session. (UNLISTEN only ever removes
  // one, which a pooler that never lets a LISTEN through can let pass.)
  bool listen = false;
  // DECLARE name ... WITH HOLD: a cursor that outlives its transaction. `cursor` holds the name,
  // folded as PostgreSQL folds identifiers.
  bool holdable_cursor = false;
  // CLOSE name (`cursor`), or CLOSE ALL (`all_cursors`).
  bool closes_cursor = false;
  bool all_cursors = false;
  std::string cursor;
  // INSERT without RETURNING, COPY ... FROM, nextval(), setval(): a sequence may have moved, and
  // lastval()/currval() would read it back from this server session.
  bool advances_sequence = false;
  // lastval() or currval(): reads what this server session's sequences last returned.
  bool reads_sequence = false;

  // DEALLOCATE as a word anywhere: the text may drop prepared statements (not a session effect,
  // so not in any(); a pooler that renames statements looks closer at such a text).
  bool mentions_deallocate = false;

  bool any() const {
    return settings || listen || holdable_cursor || closes_cursor || advances_sequence ||
           reads_sequence;
  }
};

sql_effects inspect_sql(std::string_view sql);

}  // namespace sluice::protocol
