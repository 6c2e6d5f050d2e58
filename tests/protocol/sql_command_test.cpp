#include "protocol/sql_command.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace sluice::protocol {
namespace {

using kind = sql_command::kind;

struct row {
  const char* sql;
  kind what;
  const char* name;       // for kind::deallocate, prepare, execute
  const char* rest = "";  // for kind::prepare, execute
};

std::string describe(kind k) {
  switch (k) {
    case kind::other:
      return "other";
    case kind::deallocate:
      return "deallocate";
    case kind::deallocate_all:
      return "deallocate_all";
    case kind::discard_all:
      return "discard_all";
    case kind::prepare:
      return "prepare";
    case kind::execute:
      return "execute";
  }
  return "?";
}

void check_row(const row& r) {
  CAPTURE(r.sql);
  const auto command = classify_sql_command(r.sql);
  CHECK(describe(command.what) == describe(r.what));
  if (r.what == kind::deallocate || r.what == kind::prepare || r.what == kind::execute)
    CHECK(command.name == r.name);
  if (r.what == kind::prepare || r.what == kind::execute) CHECK(command.rest == r.rest);
}

TEST_CASE("sql_command: DEALLOCATE, DISCARD ALL and everything else", "[protocol][sql_command]") {
  const auto r = GENERATE(values<row>({
      // DEALLOCATE name: folded to lower case unless quoted, as PostgreSQL folds identifiers.
      {"DEALLOCATE s1", kind::deallocate, "s1"},
      {"deallocate s1", kind::deallocate, "s1"},
      {"DeAlLoCaTe S1", kind::deallocate, "s1"},
      {"DEALLOCATE \"S1\"", kind::deallocate, "S1"},
      {"DEALLOCATE \"my stmt\"", kind::deallocate, "my stmt"},
      {"DEALLOCATE \"a\"\"b\"", kind::deallocate, "a\"b"},
      {"DEALLOCATE \"\"\"\"", kind::deallocate, "\""},
      {"DEALLOCATE \"all\"", kind::deallocate, "all"},  // a statement named all
      {"DEALLOCATE \"ALL\"", kind::deallocate, "ALL"},
      {"DEALLOCATE __asyncpg_stmt_1__", kind::deallocate, "__asyncpg_stmt_1__"},
      {"DEALLOCATE s$1", kind::deallocate, "s$1"},
      {"DEALLOCATE PREPARE x", kind::deallocate, "x"},
      {"deallocate prepare \"X\"", kind::deallocate, "X"},
      {"DEALLOCATE PREPARE prepare", kind::deallocate, "prepare"},
      // Blanks, comments and trailing semicolons.
      {"  DEALLOCATE\n\ts1  ", kind::deallocate, "s1"},
      {"DEALLOCATE s1;", kind::deallocate, "s1"},
      {"DEALLOCATE s1 ; ;", kind::deallocate, "s1"},
      {"DEALLOCATE s1; -- done", kind::deallocate, "s1"},
      {"DEALLOCATE /* which */ s1", kind::deallocate, "s1"},
      {"DEALLOCATE s1 -- trailing comment", kind::deallocate, "s1"},
      {"DEALLOCATE s1 /* c */ ;", kind::deallocate, "s1"},
      {"DEALLOCATE -- line\n s1", kind::deallocate, "s1"},
      // ALL.
      {"DEALLOCATE ALL", kind::deallocate_all, ""},
      {"deallocate all;", kind::deallocate_all, ""},
      {"DEALLOCATE PREPARE ALL", kind::deallocate_all, ""},
      {"DEALLOCATE prepare all ;", kind::deallocate_all, ""},
      // DISCARD ALL.
      {"DISCARD ALL", kind::discard_all, ""},
      {"discard all;", kind::discard_all, ""},
      {"Discard  All ;  ", kind::discard_all, ""},
      {"DISCARD /* everything */ ALL", kind::discard_all, ""},
      {"\nDISCARD ALL\n", kind::discard_all, ""},
      // Not one of them: forwarded as it is.
      {"", kind::other, ""},
      {"   ", kind::other, ""},
      {";", kind::other, ""},
      {"SELECT 1", kind::other, ""},
      {"DELETE FROM t", kind::other, ""},
      {"DROP TABLE deallocate", kind::other, ""},
      {"DEALLOCATE", kind::other, ""},
      {"DEALLOCATE;", kind::other, ""},
      {"DEALLOCATE a b", kind::other, ""},
      {"DEALLOCATE 'a'", kind::other, ""},
      {"DEALLOCATE a.b", kind::other, ""},
      {"DEALLOCATE \"unterminated", kind::other, ""},
      {"DEALLOCATE /* unterminated", kind::other, ""},
      {"\"DEALLOCATE\" s1", kind::other, ""},  // a quoted keyword is an identifier
      {"DEALLOCATE \"PREPARE\" x", kind::other, ""},
      {"DISCARD PLANS", kind::other, ""},
      {"DISCARD TEMP", kind::other, ""},
      {"DISCARD SEQUENCES", kind::other, ""},
      {"DISCARD", kind::other, ""},
      {"DISCARD ALL ALL", kind::other, ""},
      {"DISCARD \"ALL\"", kind::other, ""},
      {"DISCARDALL", kind::other, ""},
      {"DEALLOCATEALL", kind::other, ""},
      // Several statements: other, even when each is one of the commands.
      {"DEALLOCATE s1; DEALLOCATE s2", kind::other, ""},
      {"DEALLOCATE s1; SELECT 1", kind::other, ""},
      {"DISCARD ALL; SELECT 1", kind::other, ""},
      {"SELECT 1; DISCARD ALL", kind::other, ""},
      {"SELECT 1; DEALLOCATE ALL", kind::other, ""},
  }));
  check_row(r);
}

TEST_CASE("sql_command: PREPARE and EXECUTE", "[protocol][sql_command]") {
  const auto r = GENERATE(values<row>({
      {"PREPARE p AS SELECT 1", kind::prepare, "p", " AS SELECT 1"},
      {"prepare P AS SELECT 1", kind::prepare, "p", " AS SELECT 1"},
      {"PREPARE \"P q\" AS SELECT 1", kind::prepare, "P q", " AS SELECT 1"},
      {"PREPARE p (int, text) AS SELECT $1, $2", kind::prepare, "p",
       " (int, text) AS SELECT $1, $2"},
      {"PREPARE p(int) AS SELECT $1", kind::prepare, "p", "(int) AS SELECT $1"},
      {"  PREPARE p AS SELECT 1;", kind::prepare, "p", " AS SELECT 1;"},  // the rest, byte for byte
      {"PREPARE p AS SELECT 'a;b'", kind::prepare, "p", " AS SELECT 'a;b'"},
      {"PREPARE p AS SELECT 'it''s; fine'", kind::prepare, "p", " AS SELECT 'it''s; fine'"},
      {"PREPARE p AS SELECT $$a;b$$", kind::prepare, "p", " AS SELECT $$a;b$$"},
      {"PREPARE p AS SELECT $1 -- ;\n", kind::prepare, "p", " AS SELECT $1 -- ;\n"},
      {"PREPARE p AS SELECT 1 /* ; */", kind::prepare, "p", " AS SELECT 1 /* ; */"},
      {"EXECUTE p", kind::execute, "p", ""},
      {"execute P(1, 'x')", kind::execute, "p", "(1, 'x')"},
      {"EXECUTE p (1, 'a;b');", kind::execute, "p", " (1, 'a;b');"},
      {"EXECUTE \"a\"\"b\"", kind::execute, "a\"b", ""},
      // Not a statement PREPARE/EXECUTE.
      {"PREPARE TRANSACTION 'gid'", kind::other, ""},
      {"prepare transaction 'gid'", kind::other, ""},
      {"PREPARE", kind::other, ""},
      {"EXECUTE", kind::other, ""},
      {"EXECUTE ;", kind::other, ""},
      {"EXPLAIN EXECUTE p", kind::other, ""},
      {"EXECUTEp", kind::other, ""},
      {"PREPARE p AS SELECT 1; SELECT 2", kind::other, ""},
      {"EXECUTE p; EXECUTE q", kind::other, ""},
      {"PREPARE p AS SELECT 'unterminated", kind::other, ""},
      {"PREPARE \"unterminated AS SELECT 1", kind::other, ""},
  }));
  check_row(r);
}

// PREPARE is an unreserved keyword: PostgreSQL's grammar reads "DEALLOCATE prepare" as the
// statement named prepare, and "DEALLOCATE PREPARE x" as the statement named x.
TEST_CASE("sql_command: a statement named prepare", "[protocol][sql_command]") {
  check_row({"DEALLOCATE prepare", kind::deallocate, "prepare"});
  check_row({"DEALLOCATE PREPARE prepare", kind::deallocate, "prepare"});
  check_row({"DEALLOCATE PREPARE ALL", kind::deallocate_all, ""});
  check_row({"DEALLOCATE PREPARE s1", kind::deallocate, "s1"});
}

// PostgreSQL's lexer treats a comment as whitespace wherever it is, so a statement that starts
// with one is the same command. classify_sql_command's cheap rejection looks at the first
// non-blank byte only ("must be d/D") and so classifies these as `other`.
//
// Why it matters: the relay then forwards the text. A "/* app */ DISCARD ALL" makes the server
// drop every sluice_<id> statement while the server's statement cache still lists them, so the
// next Bind of any client on that server is sent without its Parse and fails with 26000
// (prepared statement "sluice_<id>" does not exist). "/* app */ DEALLOCATE s1" reaches the
// server with the client's name, which the server never had: 26000 for a statement the client
// did prepare.
// Bug in protocol/sql_command.cpp, classify_sql_command: `if (first != 'd') return out;`
TEST_CASE("sql_command: a leading comment does not hide the command", "[protocol][sql_command]") {
  const auto r = GENERATE(values<row>({
      {"/* app=web */ DISCARD ALL", kind::discard_all, ""},
      {"-- pool reset\nDISCARD ALL", kind::discard_all, ""},
      {"/* app */ DEALLOCATE s1", kind::deallocate, "s1"},
      {"-- x\nDEALLOCATE ALL", kind::deallocate_all, ""},
      {"\fDISCARD ALL", kind::discard_all, ""},  // form feed is whitespace to PostgreSQL too
  }));
  check_row(r);
}

// PostgreSQL's block comments nest: "/* a /* b */" is still open, and "/* a /* b */ c */" is one
// comment. Found by fuzzing (tests/fuzz/regressions/sql_command): the first "*/" was taken as
// the end, so an open comment hid nothing and "/* /* */ PREPARE p AS ..." was prepared by sluice
// where PostgreSQL answers 42601 (unterminated /* comment); a closed nested one was read as SQL.
TEST_CASE("sql_command: nested block comments are one comment, as in PostgreSQL",
          "[protocol][sql_command]") {
  const auto r = GENERATE(values<row>({
      {"/* a /* b */ DEALLOCATE x", kind::other, ""},
      {"/* /* */ PREPARE p AS SELECT 1", kind::other, ""},
      {"/* /* */ EXECUTE p", kind::other, ""},
      {"/* a /* b */ DISCARD ALL", kind::other, ""},
      {"/* a /* b */ c */ DEALLOCATE x", kind::deallocate, "x"},
      {"/* a /* b */ c */ DISCARD ALL", kind::discard_all, ""},
      {"DEALLOCATE /* a /* b */ c */ x", kind::deallocate, "x"},
      {"DEALLOCATE x /* a /* b */", kind::other, ""},
      {"/* a /* b */ c */ EXECUTE p", kind::execute, "p", ""},
  }));
  check_row(r);
}

// A piece of nothing but comments after a ';' is no statement to PostgreSQL (it answers the
// query as if the piece were not there). Found by fuzzing (regressions/sql_command): it counted
// as a second statement, so "PREPARE p AS SELECT 1; -- done" was not renamed and went to the
// server under the client's own name.
TEST_CASE("sql_command: a trailing comment is not a second statement", "[protocol][sql_command]") {
  const auto r = GENERATE(values<row>({
      {"PREPARE p AS SELECT 1; -- done", kind::prepare, "p", " AS SELECT 1; -- done"},
      {"EXECUTE p; /* done */", kind::execute, "p", "; /* done */"},
      {"/* a */ discard all; -- b\n-- c", kind::discard_all, ""},
      {"DEALLOCATE x; -- y", kind::deallocate, "x"},
      {"PREPARE p AS SELECT 1; -- done\nSELECT 2", kind::other, ""},
  }));
  check_row(r);
}

TEST_CASE("sql_command: split_statements drops comment-only pieces", "[protocol][sql_command]") {
  using views = std::vector<std::string_view>;
  const auto [sql, expected] = GENERATE(table<std::string_view, views>({
      {"SELECT 1; -- c", views{"SELECT 1"}},
      {"-- a\n; /* b */ ; SELECT 2", views{" SELECT 2"}},
      {"/* only */", views{}},
      {"SELECT 1 -- c\n; SELECT 2", views{"SELECT 1 -- c\n", " SELECT 2"}},
  }));
  CAPTURE(sql);
  views got;
  REQUIRE(split_statements(sql, got));
  CHECK(got == expected);
}

}  // namespace
}  // namespace sluice::protocol
