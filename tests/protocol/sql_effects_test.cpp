#include "protocol/sql_effects.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace sluice::protocol {
namespace {

// One letter per effect, in a fixed order: s(ettings) l(isten) h(oldable cursor) c(lose)
// a(ll cursors) n(ext: advances a sequence) r(eads a sequence); "-" for none.
std::string letters(const sql_effects& e) {
  std::string out;
  if (e.settings) out += 's';
  if (e.listen) out += 'l';
  if (e.holdable_cursor) out += 'h';
  if (e.closes_cursor) out += 'c';
  if (e.all_cursors) out += 'a';
  if (e.advances_sequence) out += 'n';
  if (e.reads_sequence) out += 'r';
  return out.empty() ? "-" : out;
}

TEST_CASE("sql_effects: what a statement leaves behind in the session", "[protocol][sql_effects]") {
  struct row {
    const char* sql;
    const char* effects;
  };
  const auto r = GENERATE(values<row>({
      {"SELECT abalance FROM pgbench_accounts WHERE aid = 7;", "-"},
      {"UPDATE t SET x = 1", "-"},  // SET inside UPDATE is no SET statement
      {"SELECT * FROM t OFFSET 5", "-"},
      {"SET work_mem = '9MB'", "s"},
      {"set search_path to tenant_a, public", "s"},
      {"SET SESSION search_path = x", "s"},
      {"SET SESSION AUTHORIZATION other", "s"},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", "s"},
      {"SET ROLE admin", "s"},
      {"SET TIME ZONE 'UTC'", "s"},
      {"/* app */ SET x.y = 1", "s"},
      {"SET LOCAL work_mem = '1MB'", "-"},
      {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "-"},
      {"SET CONSTRAINTS ALL DEFERRED", "-"},
      {"RESET work_mem", "s"},
      {"RESET ALL", "s"},
      {"DISCARD ALL", "s"},
      {"DO $$ BEGIN PERFORM 1; END $$", "s"},
      {"CALL my_procedure()", "s"},
      {"SELECT set_config('search_path', 'x', false)", "s"},
      {"SELECT set_config('app.tenant', $1, $2)", "s"},
      {"SELECT set_config('request.jwt', $1, true)", "-"},  // PostgREST: local to the transaction
      {"SELECT set_config('a', 'b', 'true'), set_config('c', 'd', TRUE)", "-"},
      {"SELECT set_config('a', 'b', true), set_config('c', 'd', false)", "s"},
      {"BEGIN; SET LOCAL a.b = 1; SELECT 1; COMMIT", "-"},
      {"SELECT 1; SET a.b = 1", "s"},
      {"LISTEN jobs", "l"},
      {"UNLISTEN *", "-"},
      {"NOTIFY jobs, 'x'", "-"},
      {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "h"},
      {"DECLARE \"_django_curs_1\" NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t", "h"},
      {"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", "-"},
      {"DECLARE c CURSOR FOR SELECT 'with hold'", "-"},
      {"CLOSE c", "c"},
      {"CLOSE ALL", "ca"},
      {"INSERT INTO t (v) VALUES (1)", "n"},
      {"insert into t (v) values (1) returning id", "-"},
      {"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "n"},
      {"COPY t FROM STDIN", "n"},
      {"COPY t TO STDOUT", "-"},
      {"SELECT nextval('s')", "n"},
      {"SELECT pg_catalog.setval('s', 5)", "n"},
      {"SELECT LASTVAL()", "r"},
      {"SELECT currval('t_id_seq')", "r"},
      {"SELECT nextval('s'), lastval()", "nr"},
      {"SELECT 'lastval is a word'", "-"},
      // The one-pass scan and the short cut for a single inert statement
      {"SELECT nextval\t\n ('s')", "n"},
      {"SELECT setvalue(1), my_nextval(2), nextvalue(3)", "-"},  // other functions
      {"SELECT x.currval (1)", "r"},
      {"select 1;", "-"},
      {"select 1;  \n", "-"},
      {"select 1; select 2", "-"},
      {"select 1;set a.b = 1;", "s"},
      {"SELECT ';'; LISTEN x", "l"},
      {"-- comment\nSET a.b = 1", "s"},
      {"-- comment\nSELECT 1", "-"},
      {"\"set\" a.b = 1", "s"},  // a quoted first word: the safe side
      {"(SELECT 1)", "-"},
      {"SET\"constraints", "s"},  // an open quote is no keyword (found by fuzz_sql_effects)
      {"SELECTED_SELECT", "-"},
      {"Insert into t values (1);", "n"},
      {"", "-"},
      {";;", "-"},
  }));
  CAPTURE(r.sql);
  CHECK(letters(inspect_sql(r.sql)) == r.effects);
}

TEST_CASE("sql_effects: cursor names are folded as identifiers", "[protocol][sql_effects]") {
  CHECK(inspect_sql("DECLARE MyCursor CURSOR WITH HOLD FOR SELECT 1").cursor == "mycursor");
  CHECK(inspect_sql("DECLARE \"MyCursor\" CURSOR WITH HOLD FOR SELECT 1").cursor == "MyCursor");
  CHECK(inspect_sql("close MyCursor").cursor == "mycursor");
  // CLOSE ALL among the statements closes every cursor: no single name (found by fuzz_sql_effects)
  CHECK(inspect_sql("CLOSE a; CLOSE ALL").cursor.empty());
  CHECK(inspect_sql("CLOSE ALL; CLOSE a").cursor.empty());
}

TEST_CASE("sql_effects: the settings a statement names", "[protocol][sql_effects]") {
  using names = std::vector<std::string>;
  CHECK(inspect_sql("SET app.tenant = 'a'").setting_names == names{"app.tenant"});
  CHECK(inspect_sql("SET SESSION App.Tenant TO 'a'").setting_names == names{"app.tenant"});
  CHECK(inspect_sql("set \"my.Var\" = 1").setting_names == names{"my.Var"});
  CHECK(inspect_sql("RESET app.tenant").setting_names == names{"app.tenant"});
  CHECK(inspect_sql("RESET ALL").setting_names.empty());
  CHECK(inspect_sql("SELECT set_config('App.X', 'v', false), set_config('y.z', $1, false)")
            .setting_names == names{"app.x", "y.z"});
  CHECK(inspect_sql("SET search_path = a; SET work_mem = '1MB'").setting_names ==
        names{"search_path", "work_mem"});
}

TEST_CASE("sql_effects: malformed text never throws", "[protocol][sql_effects]") {
  for (const char* sql : {"", ";", "'", "\"", "/*", "set_config(", "set_config('a', 'b", "DO $$",
                          "DECLARE", "CLOSE", "SET"})
    CHECK_NOTHROW(inspect_sql(sql));
}

TEST_CASE("sql_effects: DEALLOCATE is noticed anywhere in the text", "[protocol][sql_effects]") {
  CHECK(inspect_sql("SELECT 1; DEALLOCATE s1").mentions_deallocate);
  CHECK(inspect_sql("deallocate prepare ALL").mentions_deallocate);
  CHECK(inspect_sql("Deallocate\"S\"").mentions_deallocate);
  CHECK_FALSE(inspect_sql("SELECT deallocated FROM t").mentions_deallocate);
  CHECK_FALSE(inspect_sql("SELECT 1").mentions_deallocate);
  CHECK_FALSE(inspect_sql("DEALLOCATE s").any());  // dropping a statement is no session effect
}

}  // namespace
}  // namespace sluice::protocol
