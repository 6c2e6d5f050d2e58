#include "pool/session_params.hpp"
#include "pool/shared_session_params.hpp"

#include <catch2/catch.hpp>

#include <string>

using sluice::pool::guc_name_equal;
using sluice::pool::record_sync;
using sluice::pool::session_params;
using sluice::pool::sync_sql;

TEST_CASE("names compare case-insensitively and keep their first spelling",
          "[pool][session_params]") {
  session_params p;
  p.set("DateStyle", "ISO, MDY");
  CHECK(p.get("datestyle") == "ISO, MDY");
  CHECK(p.get("DATESTYLE") == "ISO, MDY");
  p.set("datestyle", "German, DMY");
  CHECK(p.size() == 1);
  CHECK(p.entries().begin()->first == "DateStyle");
  CHECK(p.get("DateStyle") == "German, DMY");
  CHECK_FALSE(p.get("TimeZone"));
  CHECK(p.erase("DATESTYLE"));
  CHECK_FALSE(p.erase("DateStyle"));
  CHECK(p.empty());
  CHECK(guc_name_equal("TimeZone", "timezone"));
  CHECK_FALSE(guc_name_equal("TimeZone", "timezones"));
}

TEST_CASE("which names are tracked", "[pool][session_params]") {
  session_params p;
  for (const char* name : {"client_encoding", "DateStyle", "TimeZone", "IntervalStyle",
                           "application_name", "standard_conforming_strings", "search_path"}) {
    CAPTURE(name);
    p.set(name, "x");
    CHECK(p.is_tracked(name));
  }
  p.set("server_version", "16.4");  // a fact the server reports, not a setting
  p.set("is_superuser", "off");
  CHECK_FALSE(p.is_tracked("server_version"));
  CHECK_FALSE(p.is_tracked("is_superuser"));

  p.set_tracked("statement_timeout", "5s");  // a startup parameter the client gave
  CHECK(p.is_tracked("STATEMENT_TIMEOUT"));
  p.set("statement_timeout", "6s");  // a later report keeps it tracked
  CHECK(p.is_tracked("statement_timeout"));
  CHECK(p.get("statement_timeout") == "6s");

  for (const char* not_setting : {"user", "database", "options", "replication", "_pq_.x", ""}) {
    CAPTURE(not_setting);
    p.set_tracked(not_setting, "v");
    CHECK_FALSE(p.get(not_setting));
  }
}

TEST_CASE("sync_sql quotes names as identifiers and values as literals",
          "[pool][session_params][sync_sql]") {
  struct row {
    const char* name;
    const char* value;
    const char* sql;
  };
  const auto r = GENERATE(values<row>({
      {"application_name", "app", R"(SET "application_name" TO 'app')"},
      {"application_name", "", R"(SET "application_name" TO '')"},
      {"application_name", "O'Brien", R"(SET "application_name" TO 'O''Brien')"},
      {"application_name", "''", R"(SET "application_name" TO '''''')"},
      {"application_name", "x'; DROP TABLE t; --",
       R"(SET "application_name" TO 'x''; DROP TABLE t; --')"},
      {"application_name", R"(C:\tmp)", R"(SET "application_name" TO E'C:\\tmp')"},
      {"application_name", R"(it's \n)", R"(SET "application_name" TO E'it''s \\n')"},
      {"application_name", "caf\xc3\xa9", "SET \"application_name\" TO 'caf\xc3\xa9'"},
      {"DateStyle", "ISO, MDY", R"(SET "DateStyle" TO 'ISO, MDY')"},
      {"TimeZone", "Europe/Berlin", R"(SET "TimeZone" TO 'Europe/Berlin')"},
      {"standard_conforming_strings", "off", R"(SET "standard_conforming_strings" TO 'off')"},
      {"my\"var", "1", R"(SET "my""var" TO '1')"},
      {"myapp.tenant", "42", R"(SET "myapp.tenant" TO '42')"},
      // List settings: one literal per element, as SET would quote one literal as one name.
      {"search_path", R"("$user", public)", R"(SET "search_path" TO '$user', 'public')"},
      {"search_path", "$user,public", R"(SET "search_path" TO '$user', 'public')"},
      {"search_path", R"( MySchema , "Other ""q""" )",
       R"(SET "search_path" TO 'myschema', 'Other "q"')"},
      {"search_path", R"("it's")", R"(SET "search_path" TO 'it''s')"},
      {"search_path", R"("a,b")", R"(SET "search_path" TO 'a,b')"},
      {"temp_tablespaces", "fast, slow", R"(SET "temp_tablespaces" TO 'fast', 'slow')"},
      // Empty or malformed lists: the raw value through set_config.
      {"search_path", "", R"(SELECT pg_catalog.set_config('search_path', '', false))"},
      {"search_path", "  ", R"(SELECT pg_catalog.set_config('search_path', '  ', false))"},
      {"search_path", R"("open)", R"(SELECT pg_catalog.set_config('search_path', '"open', false))"},
      {"search_path", "a,,b", R"(SELECT pg_catalog.set_config('search_path', 'a,,b', false))"},
      {"search_path", "a b", R"(SELECT pg_catalog.set_config('search_path', 'a b', false))"},
  }));
  CAPTURE(r.name, r.value);
  session_params client, server;
  client.set_tracked(r.name, r.value);
  CHECK(sync_sql(client, server) == r.sql);  // missing on the server
  server.set(r.name, "something else");
  CHECK(sync_sql(client, server) == r.sql);  // different on the server
  server.set(r.name, r.value);
  CHECK(sync_sql(client, server).empty());  // the same
}

TEST_CASE("sync_sql is empty when nothing differs", "[pool][session_params][sync_sql]") {
  session_params client, server;
  CHECK(sync_sql(client, server).empty());
  for (auto* p : {&client, &server}) {
    p->set("client_encoding", "UTF8");
    p->set("TimeZone", "UTC");
  }
  CHECK(sync_sql(client, server).empty());
  server.set("timezone", "UTC");  // another spelling of the same name
  CHECK(sync_sql(client, server).empty());
}

TEST_CASE("sync_sql syncs only tracked names, in name order", "[pool][session_params][sync_sql]") {
  session_params client, server;
  client.set("TimeZone", "UTC");
  client.set("application_name", "a");
  client.set("DateStyle", "ISO, MDY");
  client.set("server_version", "17.0");  // differs, but is not a setting
  server.set("server_version", "16.4");
  server.set("TimeZone", "Europe/Paris");
  server.set("application_name", "b");
  server.set("DateStyle", "ISO, MDY");
  CHECK(sync_sql(client, server) == R"(SET "application_name" TO 'a'; SET "TimeZone" TO 'UTC')");
}

TEST_CASE("list settings compare by their elements", "[pool][session_params][sync_sql]") {
  struct row {
    const char* client;
    const char* server;
    bool same;
  };
  const auto r = GENERATE(values<row>({
      {"$user,public", R"("$user", public)", true},
      {"public", "PUBLIC", true},  // unquoted elements are lowercased
      {"public", R"("public")", true},
      {R"("Public")", "public", false},  // quoted ones keep case
      {"a, b", "b, a", false},           // order matters
      {"a", "a, a", false},
      {"", "  ", true},
      {R"("open)", R"("open)", true},
      {R"("open)", "open", false},
  }));
  CAPTURE(r.client, r.server);
  session_params client, server;
  client.set("search_path", r.client);
  server.set("search_path", r.server);
  CHECK(sync_sql(client, server).empty() == r.same);
}

TEST_CASE("a setting another client's startup packet brought is reset",
          "[pool][session_params][sync_sql]") {
  session_params alice, bob, server;
  for (auto* p : {&alice, &bob, &server}) p->set("application_name", "psql");
  alice.set_tracked("statement_timeout", "5s");
  alice.set_tracked("search_path", "alice");

  const auto for_alice = sync_sql(alice, server);
  CHECK(for_alice == R"(SET "search_path" TO 'alice'; SET "statement_timeout" TO '5s')");
  record_sync(alice, server);
  CHECK(sync_sql(alice, server).empty());
  CHECK(server.is_tracked("statement_timeout"));

  // Bob never asked for either: the server must not keep Alice's.
  CHECK(sync_sql(bob, server) == R"(RESET "search_path"; RESET "statement_timeout")");
  record_sync(bob, server);
  CHECK(sync_sql(bob, server).empty());
  CHECK_FALSE(server.get("statement_timeout"));

  // Untracked facts on the server are never reset.
  server.set("server_version", "16.4");
  CHECK(sync_sql(bob, server).empty());
}

TEST_CASE("after record_sync nothing differs", "[pool][session_params][sync_sql]") {
  session_params client, server;
  server.set("client_encoding", "SQL_ASCII");
  server.set("DateStyle", "Postgres, DMY");
  server.set("server_version", "16.4");
  server.set_tracked("work_mem", "64MB");
  client.set("client_encoding", "UTF8");
  client.set("DateStyle", "ISO, MDY");
  client.set_tracked("search_path", "$user, public");
  client.set_tracked("lock_timeout", "1s");
  CHECK_FALSE(sync_sql(client, server).empty());
  record_sync(client, server);
  CHECK(sync_sql(client, server).empty());
  CHECK(server.get("server_version") == "16.4");
  CHECK_FALSE(server.get("work_mem"));
}

TEST_CASE("tracked_settings is canonical and follows every change",
          "[pool][session_params][sync_sql]") {
  session_params client, server;
  client.set_tracked("TimeZone", "UTC");
  client.set("server_version", "15.4");  // untracked: never part of the string
  server.set("timezone", "UTC");         // same setting, other spelling of the name
  CHECK(client.tracked_settings() == server.tracked_settings());
  CHECK(sync_sql(client, server).empty());

  server.set("TimeZone", "Europe/Paris");  // a ParameterStatus after the string was built
  CHECK(client.tracked_settings() != server.tracked_settings());
  CHECK(sync_sql(client, server) == "SET \"TimeZone\" TO 'UTC'");
  record_sync(client, server);
  CHECK(client.tracked_settings() == server.tracked_settings());

  server.set_tracked("statement_timeout", "5s");  // brought by another client
  CHECK(sync_sql(client, server) == "RESET \"statement_timeout\"");
  CHECK(server.erase("statement_timeout"));
  CHECK(sync_sql(client, server).empty());
}

TEST_CASE("an equivalent list spelling is recorded so the next lease compares equal",
          "[pool][session_params][sync_sql]") {
  session_params client, server;
  client.set_tracked("search_path", "$user,public");
  server.set("search_path", "\"$user\", public");
  CHECK(client.tracked_settings() != server.tracked_settings());
  CHECK(sync_sql(client, server).empty());  // the same path: nothing to run
  record_sync(client, server);
  CHECK(client.tracked_settings() == server.tracked_settings());
}

TEST_CASE("shared_session_params copies on the first change only",
          "[pool][session_params][shared]") {
  sluice::pool::shared_session_params first;
  first.edit().set_tracked("TimeZone", "UTC");
  auto second = first.share();
  CHECK(&first.get() == &second.get());  // one record for both

  second.set("TimeZone", "UTC");  // the value it already has: still shared
  CHECK(&first.get() == &second.get());

  second.set("TimeZone", "Asia/Tokyo");  // a real change: second gets its own record
  CHECK(&first.get() != &second.get());
  CHECK(first.get().get("TimeZone") == "UTC");
  CHECK(second.get().get("TimeZone") == "Asia/Tokyo");
  CHECK(first.get().tracked_settings() != second.get().tracked_settings());

  auto& own = second.edit();  // sole owner now: no further copy
  CHECK(&own == &second.get());
}

TEST_CASE("a settings audit makes both records say what the server has",
          "[pool][session_params][audit]") {
  session_params reported;  // what the server reports by ParameterStatus
  reported.set("TimeZone", "UTC");
  reported.set("application_name", "");
  session_params baseline;  // the client right after login: its startup work_mem
  baseline.set("TimeZone", "UTC");
  baseline.set_tracked("work_mem", "12MB");

  session_params client = baseline;
  client.set_tracked("search_path", "tenant_a");
  client.set_tracked("app.tenant", "a");
  session_params server = client;

  SECTION("new session-level settings join both records") {
    sluice::pool::apply_settings_audit({{"work_mem", "12MB"},
                                        {"search_path", "tenant_a"},
                                        {"app.tenant", "a"},
                                        {"statement_timeout", "2s"}},
                                       reported, baseline, client, server);
    CHECK(client.get("statement_timeout") == "2s");
    CHECK(client.is_tracked("statement_timeout"));
    CHECK(server.get("statement_timeout") == "2s");
    CHECK(sync_sql(client, server).empty());
  }
  SECTION("a setting the server no longer overrides leaves both") {
    sluice::pool::apply_settings_audit({{"work_mem", "12MB"}}, reported, baseline, client, server);
    CHECK_FALSE(client.get("search_path"));
    CHECK_FALSE(server.get("search_path"));
    CHECK_FALSE(client.get("app.tenant"));
    // Another client on this server gets only the work_mem the server still has reset.
    session_params other;
    other.set("TimeZone", "UTC");
    CHECK(sync_sql(other, server) == "RESET \"work_mem\"");
  }
  SECTION("a reset startup setting returns to its startup value for the client") {
    sluice::pool::apply_settings_audit({}, reported, baseline, client, server);
    CHECK(client.get("work_mem") == "12MB");  // RESET returns there, as on PostgreSQL
    CHECK_FALSE(server.get("work_mem"));      // the server is at its default now
    CHECK(sync_sql(client, server) == "SET \"work_mem\" TO '12MB'");
  }
  SECTION("reported settings are left to ParameterStatus") {
    client.set("TimeZone", "Asia/Tokyo");
    server.set("TimeZone", "Asia/Tokyo");
    sluice::pool::apply_settings_audit({}, reported, baseline, client, server);
    CHECK(client.get("TimeZone") == "Asia/Tokyo");
    CHECK(server.get("TimeZone") == "Asia/Tokyo");
  }
}

TEST_CASE("sync_sql sets the session authorization before the role",
          "[pool][session_params][sync_sql]") {
  session_params client, server;
  client.set_tracked("role", "reader");
  client.set_tracked("session_authorization", "other");
  // SET SESSION AUTHORIZATION resets the role, so it must come first.
  CHECK(sync_sql(client, server) ==
        "SET \"session_authorization\" TO 'other'; SET \"role\" TO 'reader'");
}
