#pragma once
// Session parameters (GUCs) as a client expects them and as a server has them, and the SQL
// that makes a server match a client before the client uses it.
//
// Flow:
//   client record: its startup parameters (set_tracked) + every ParameterStatus it was sent.
//   server record: every ParameterStatus the server sent (set), + what record_sync applied.
//   lease: sql = sync_sql(client, server); if non-empty run it on the server (simple Query,
//          read through ReadyForQuery), and on success record_sync(client, server).
//
// Only tracked names are synced: the ones PostgreSQL reports by ParameterStatus that a
// session changes (default_tracked()), search_path, and any startup parameter the client gave.
// Others in a record (server_version, is_superuser, ...) are facts, not settings.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::pool {

// GUC names compare case-insensitively, ASCII only, as PostgreSQL's guc_name_compare does.
struct guc_name_less {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};
bool guc_name_equal(std::string_view a, std::string_view b);

class session_params {
 public:
  struct entry {
    std::string value;
    bool tracked = false;  // synced by sync_sql (client side) / applied by a sync (server side)
  };
  // Ordered by name: the SQL comes out in a stable order.
  using map = std::map<std::string, entry, guc_name_less>;

  // Record a value (ParameterStatus). A new name is tracked if default_tracked() has it; a
  // known name keeps its flag and its first spelling.
  void set(std::string_view name, std::string_view value);
  // Record a value and track the name: a client's startup parameters. Names that are not
  // settings (user, database, options, replication, _pq_.*) are ignored.
  void set_tracked(std::string_view name, std::string_view value);
  std::optional<std::string_view> get(std::string_view name) const;
  bool is_tracked(std::string_view name) const;
  bool erase(std::string_view name);

  const map& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // client_encoding, DateStyle, TimeZone, IntervalStyle, application_name,
  // standard_conforming_strings, search_path.
  static bool default_tracked(std::string_view name);
  // False for startup-packet keys that are not settings and can never be SET.
  static bool is_setting(std::string_view name);

  // The tracked settings as one canonical string: folded name, NUL, value, NUL, in name
  // order. Two records with equal strings need no sync at all (see sync_sql), and comparing
  // two strings is what a lease costs when nothing changed, instead of walking both maps.
  // Rebuilt only after a change.
  const std::string& tracked_settings() const;

  // The settings that change how PostgreSQL reads a statement's text when it prepares it (name
  // resolution: search_path, role; constants folded at parse time: DateStyle, TimeZone,
  // IntervalStyle; literal syntax: standard_conforming_strings, backslash_quote, ...), as one
  // canonical string like tracked_settings(). Part of a prepared statement's identity.
  const std::string& statement_context() const;
  static bool affects_statements(std::string_view name);

 private:
  map entries_;
  mutable std::string tracked_settings_;
  mutable std::string statement_context_;
  mutable bool tracked_settings_stale_ = true;  // both strings are rebuilt after a change
};

// SQL that makes `server` match `client`, "" when nothing differs:
//   - for every tracked client name whose value differs from (or is missing on) the server:
//     SET "name" TO 'value' - the name quoted as an identifier (GUC lookup ignores case, so
//     quoting is always safe), the value as a string literal with ' doubled; E'' with \ doubled
//     when the value holds a backslash, so the literal reads the same whatever
//     standard_conforming_strings the server has at that moment;
//   - list settings whose elements SET re-quotes (search_path, temp_tablespaces, *_preload_
//     libraries) get one literal per element, SET "search_path" TO '$user', 'public', since a
//     single literal would become one schema named "$user, public". An empty or malformed
//     list goes through SELECT pg_catalog.set_config('name', 'value', false) instead, which
//     takes the raw value (and rejects a malformed one with PostgreSQL's own error);
//   - for every name the server tracks that the client lacks (a setting another client's
//     startup packet brought): RESET "name", so it does not leak to this client.
// Statements are separated by "; ". As one simple Query they run as one implicit
// transaction: all apply or none.
std::string sync_sql(const session_params& client, const session_params& server);

// A server's session-level settings as read back from it (name and current value of every
// setting whose source is 'session': what SET, RESET, set_config() and sluice's own syncs
// left): both records are made to say what the server has. `reported` lists the settings the
// server reports by ParameterStatus, whose records are already right. A setting the server no
// longer overrides (it was RESET) leaves both records, except that the client keeps its
// startup value from `baseline`, as PostgreSQL's RESET returns to it; the next sync restores it.
void apply_settings_audit(const std::vector<std::pair<std::string, std::string>>& session_level,
                          const session_params& reported, const session_params& baseline,
                          session_params& client, session_params& server);

// After sync_sql's SQL succeeded: make the server record say what the server now has.
// (ParameterStatus messages the server sends in reply are recorded with set() as usual.)
void record_sync(const session_params& client, session_params& server);

}  // namespace sluice::pool
