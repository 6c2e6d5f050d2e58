#pragma once
// The admin console: a client that logs in to the database "sluice" or "pgbouncer" (when no
// configured database has that name) talks to the daemon itself, the way PgBouncer's
// "pgbouncer" database works, so pgbouncer_exporter, dashboards and habits work unchanged.
//
// Flow: the session authenticates the client as any other, then checks console_access_of(); a
// user in neither admin_users nor stats_users is refused with 42501 once authenticated, as
// PostgreSQL refuses a role without CONNECT privilege (PgBouncer 1.25 refuses before asking
// for the password, with 08P01 "not allowed"; checking the password first tells someone without
// it nothing about the lists). Then every message goes to one admin_console, which answers it.
//
// Both query protocols work: a simple Query answers RowDescription, DataRows, CommandComplete
// and ReadyForQuery; Parse/Bind/Describe/Execute/Sync answer as PostgreSQL would (lib/pq and
// pgx use them), with binary result columns where Bind asks for them. After an error in the
// extended protocol, messages are skipped until Sync (protocol docs, 55.2.3).
//
// Commands: SHOW <table> (see admin_tables.hpp), and SELECT <table> meaning the same, as in
// PgBouncer; for admin_users only (stats_users get 42501): PAUSE [db], RESUME [db], DISABLE db,
// ENABLE db (see console_controls.hpp), KILL_CLIENT id (closes that client) and KILL [db]
// (pauses db and closes its clients, as PgBouncer: new clients wait until RESUME). PAUSE answers
// once the paused pools have no leased server: the session waits for that (take_release_wait)
// before it writes the reply. RELOAD, SHUTDOWN, SUSPEND, RECONNECT, WAIT_CLOSE and SET answer
// 0A000: not supported yet. Anything else is 42601.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/framing.hpp"
#include "proxy/admin_snapshot.hpp"
#include "proxy/client_directory.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/console_controls.hpp"

namespace sluice::proxy {

// The names the console answers to; a configured database of the same name wins.
inline constexpr std::string_view admin_database = "sluice";
inline constexpr std::string_view pgbouncer_admin_database = "pgbouncer";
bool is_admin_database(const config::settings& settings, std::string_view database);

// What a user may do on the console.
enum class console_access {
  none,   // in neither list: refused (42501) after authenticating
  stats,  // in stats_users only: read-only SHOW commands
  admin,  // in admin_users: every command
};
console_access console_access_of(const config::settings& settings, std::string_view user);

// The message a user without access gets, with 42501.
inline constexpr std::string_view console_refusal =
    "not allowed: only admin_users and stats_users may use the sluice admin console";

// One console session's protocol state: its prepared statements and portals. Pure: the caller
// reads messages and writes the replies.
class admin_console {
 public:
  using snapshot_source = std::function<admin_snapshot()>;
  // `controls` null: the commands that change something answer 0A000 (unit tests).
  admin_console(console_access access, snapshot_source snapshot,
                console_controls* controls = nullptr, client_directory* directory = nullptr);

  // The reply to one complete frontend message (Terminate excluded: the session closes).
  std::string answer(const protocol::message_view& message);

  // After a PAUSE: the reply must wait until these pools lease no server.
  struct release_wait {
    std::optional<std::string> database;  // nullopt: every pool
  };
  std::optional<release_wait> take_release_wait() { return std::exchange(release_wait_, {}); }

 private:
  struct portal {
    std::string sql;
    std::vector<std::int16_t> result_formats;  // Bind's: none = text, one = all, else each
  };
  void answer_query(std::string_view sql, std::string& out);
  void answer_extended(const protocol::message_view& message, std::string& out);
  void fail_extended(std::string& out, std::string_view sqlstate, std::string_view text);

  void run_command(std::string_view verb, const std::optional<std::string>& argument,
                   std::string& out);

  console_access access_;
  snapshot_source snapshot_;
  console_controls* controls_;
  client_directory* directory_;
  std::optional<release_wait> release_wait_;
  std::map<std::string, std::string, std::less<>> statements_;  // name -> SQL
  std::map<std::string, portal, std::less<>> portals_;
  bool skipping_to_sync_ = false;  // an extended-protocol error happened
};

}  // namespace sluice::proxy
