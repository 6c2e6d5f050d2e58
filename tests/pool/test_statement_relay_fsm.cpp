// statement_relay_fsm, driven the way the daemon drives it: through lease_fsm, which hands it the
// client messages it rewrites (Parse, Bind, Describe, Close, Query; held back while
// must_wait_for_replies) and the replies it matches; the output segments are the bytes the
// server and the client get.
//
// The server is a small model of PostgreSQL's extended-query protocol (model_backend below): it
// keeps named statements and portals, answers each message the way PostgreSQL does, and skips to
// Sync after an error. The same model, fed the client's own messages, stands for "a direct
// PostgreSQL": the client must see the same replies through sluice as without it.
#include "pool/statement_relay_fsm.hpp"

#include "pool/lease_fsm.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pool/local_parse_answer.hpp"
#include "pool/statement_registry.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/pool/model_backend.hpp"
#include "tests/pool/statement_relay_world.hpp"
#include "tests/pool/wire_fixtures.hpp"
#include "tests/protocol/hex.hpp"

namespace sluice::pool {
namespace {

using protocol::test::to_hex;
using verdict = statement_relay_fsm::verdict;

using namespace testing;

// --- Parse --------------------------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: a named Parse is sent under the statement's server name",
          "[pool][statements][relay_fsm]") {
  world w;
  const auto r = w.round_trip(0, 0, fe::parse("s1", "SELECT $1", {23}) + fe::sync());
  CHECK(types(r.to_server) == "PS");
  const auto sent = only(r.to_server, 'P');
  const auto parse = protocol::decode_parse(span_of(sent.body));
  REQUIRE(parse);
  const auto s = w.statement("SELECT $1", {23});
  CHECK(parse->name == s->server_name);
  CHECK(parse->name == "sluice_" + std::to_string(s->id));
  CHECK(parse->query == "SELECT $1");
  CHECK(parse->param_types == std::vector<std::uint32_t>{23});
  CHECK(sent.wire == s->parse_message);

  CHECK(describe_replies(r.to_client) == "1 Z");
  CHECK(w.clients[0].at("s1") == s);
  CHECK(w.servers[0].cache.contains(s->id));
  CHECK(s->verified.load());
  CHECK(w.counters.client_parses == 1);
  CHECK(w.counters.server_parses == 1);
  CHECK(w.counters.parses_saved == 0);
}

TEST_CASE("statement_relay_fsm: a Parse the server already has is answered by a no-op Close",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    int client;
    const char* name;
  };
  const auto r = GENERATE(values<row>({
      {"another client, another name", 1, "t1"},
      {"another client, the same name", 1, "s1"},
      {"the same client, another name", 0, "t1"},
  }));
  CAPTURE(r.what);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s = w.statement("SELECT 1");

  const auto second = w.round_trip(r.client, 0, fe::parse(r.name, "SELECT 1") + fe::sync());
  CHECK(types(second.to_server) == "CS");
  const auto close_message = only(second.to_server, 'C');  // decoded views point into it
  const auto close = protocol::decode_close(span_of(close_message.body));
  REQUIRE(close);
  CHECK(close->kind == 'S');
  CHECK(close->name != s->server_name);  // the server's statement stays
  CHECK(close->name != r.name);
  CHECK(w.servers[0].pg.statements.contains(s->server_name));
  // Its CloseComplete is the client's ParseComplete, in its place.
  CHECK(describe_replies(second.to_client) == "1 Z");
  CHECK(w.clients[r.client].at(r.name) == s);
  CHECK(w.counters.client_parses == 2);
  CHECK(w.counters.server_parses == 1);
  CHECK(w.counters.parses_saved == 1);
}

TEST_CASE("statement_relay_fsm: the same statement on another server is prepared there",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto r = w.round_trip(1, 1, fe::parse("t1", "SELECT 1") + fe::sync());
  CHECK(types(r.to_server) == "PS");
  CHECK(only(r.to_server, 'P').wire == w.statement("SELECT 1")->parse_message);
  CHECK(describe_replies(r.to_client) == "1 Z");
  CHECK(w.servers[1].cache.contains(w.statement("SELECT 1")->id));
}

TEST_CASE("statement_relay_fsm: the same name in two clients maps to each client's own SQL",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "__asyncpg_stmt_1__", "SELECT 1");
  w.prepare(1, 0, "__asyncpg_stmt_1__", "SELECT 2");
  CHECK(w.clients[0].at("__asyncpg_stmt_1__")->query == "SELECT 1");
  CHECK(w.clients[1].at("__asyncpg_stmt_1__")->query == "SELECT 2");
  CHECK(w.clients[0].at("__asyncpg_stmt_1__") != w.clients[1].at("__asyncpg_stmt_1__"));
}

// --- Bind and Describe of a statement the server lacks ------------------------------------------

TEST_CASE("statement_relay_fsm: Bind or Describe on a server without the statement injects it",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    std::string request;
    const char* to_server;
    const char* to_client;
  };
  const auto r = GENERATE(values<row>({
      {"Bind", fe::bind("s1", {"42"}, "p") + fe::execute("p") + fe::sync(), "PBES",
       "2 D C[SELECT 1] Z"},
      {"Describe statement", fe::describe('S', "s1") + fe::sync(), "PDS", "t T Z"},
      {"Describe then Bind",
       fe::describe('S', "s1") + fe::bind("s1", {"7"}) + fe::execute() + fe::sync(), "PDBES",
       "t T 2 D C[SELECT 1] Z"},
      {"Bind after Flush", fe::bind("s1", {"1"}) + fe::flush() + fe::execute() + fe::sync(),
       "PBHES", "2 D C[SELECT 1] Z"},
  }));
  CAPTURE(r.what);
  world w;
  w.prepare(0, 0, "s1", "SELECT $1", {23});
  const auto s = w.statement("SELECT $1", {23});
  REQUIRE_FALSE(w.servers[1].cache.contains(s->id));

  const auto result = w.round_trip(0, 1, r.request);
  CHECK(types(result.to_server) == r.to_server);
  CHECK(describe_replies(result.to_client) == r.to_client);
  // The injected Parse comes first, under the server name; its ParseComplete is swallowed.
  const auto sent = split(result.to_server);
  CHECK(sent[0].wire == s->parse_message);
  CHECK(w.servers[1].cache.contains(s->id));
  // The client's messages name the server's statement, and nothing else changes.
  const auto client_messages = split(r.request);
  for (std::size_t i = 1, j = 0; i < sent.size(); ++i, ++j) {
    const auto& to = sent[i];
    const auto& from = client_messages[j];
    CHECK(to.type == from.type);
    if (to.type == 'B') {
      const auto a = protocol::decode_bind(span_of(to.body));
      const auto b = protocol::decode_bind(span_of(from.body));
      REQUIRE(a);
      REQUIRE(b);
      CHECK(a->statement == s->server_name);
      CHECK(a->portal == b->portal);
      // Formats, parameter values and result formats: byte for byte.
      CHECK(to_hex(span_of(to.body).subspan(a->params_offset)) ==
            to_hex(span_of(from.body).subspan(b->params_offset)));
    } else if (to.type == 'D') {
      const auto d = protocol::decode_describe(span_of(to.body));
      REQUIRE(d);
      CHECK(d->kind == 'S');
      CHECK(d->name == s->server_name);
    } else {
      CHECK(to_hex(to.wire) == to_hex(from.wire));
    }
  }

  // Now the server has it: no second injection.
  const auto again = w.round_trip(0, 1, fe::bind("s1", {"1"}) + fe::execute() + fe::sync());
  CHECK(types(again.to_server) == "BES");
  CHECK(describe_replies(again.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: the same statement is injected once per pipeline",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto r = w.round_trip(0, 1,
                              fe::bind("s1") + fe::execute() + fe::bind("s1") + fe::execute() +
                                  fe::describe('S', "s1") + fe::sync());
  CHECK(types(r.to_server) == "PBEBEDS");
  CHECK(describe_replies(r.to_client) == "2 D C[SELECT 1] 2 D C[SELECT 1] t T Z");
}

// --- Close --------------------------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: Close('S') forgets the client's name, not the server's statement",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 0, "t1", "SELECT 1");
  const auto s = w.statement("SELECT 1");

  const auto r = w.round_trip(0, 0, fe::close('S', "s1") + fe::sync());
  CHECK(types(r.to_server) == "CS");
  const auto close_message = only(r.to_server, 'C');  // decoded views point into it
  const auto close = protocol::decode_close(span_of(close_message.body));
  REQUIRE(close);
  CHECK(close->name != s->server_name);
  CHECK(describe_replies(r.to_client) == "3 Z");
  CHECK_FALSE(w.clients[0].contains("s1"));
  CHECK(w.servers[0].cache.contains(s->id));
  CHECK(w.servers[0].pg.statements.contains(s->server_name));

  // The other client's name still works, without a Parse.
  const auto other = w.round_trip(1, 0, fe::bind("t1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "BES");
  CHECK(describe_replies(other.to_client) == "2 D C[SELECT 1] Z");
  // The closed name is unknown now, as PostgreSQL would have it.
  const auto gone = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(describe_replies(gone.to_client) == "E[26000 prepared statement \"s1\" does not exist] Z");
}

TEST_CASE("statement_relay_fsm: Close of a name never prepared is acknowledged",
          "[pool][statements][relay_fsm]") {
  world w;
  const std::string request = fe::close('S', "nope") + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(types(r.to_server) == "CS");
  model_backend pg;
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(describe_replies(r.to_client) == "3 Z");
}

TEST_CASE("statement_relay_fsm: Close then Parse of the same name in one batch",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto r = w.round_trip(0, 0,
                              fe::close('S', "s1") + fe::parse("s1", "SELECT 2") + fe::bind("s1") +
                                  fe::execute() + fe::sync());
  CHECK(types(r.to_server) == "CPBES");
  CHECK(describe_replies(r.to_client) == "3 1 2 D C[SELECT 1] Z");
  CHECK(w.clients[0].at("s1")->query == "SELECT 2");
}

// --- Errors sluice raises: 42P05 and 26000 ------------------------------------------------------

TEST_CASE("statement_relay_fsm: 26000 is raised as PostgreSQL raises it",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    std::string failing;  // the message sluice answers with an error
    const char* error;
  };
  const auto r = GENERATE(values<row>({
      {"Bind of an unknown name", fe::bind("nope"),
       "E[26000 prepared statement \"nope\" does not exist]"},
      {"Describe of an unknown name", fe::describe('S', "nope"),
       "E[26000 prepared statement \"nope\" does not exist]"},
  }));
  // Where the client's messages are cut: all at once, or the Sync after the error came back.
  const bool sync_later = GENERATE(false, true);
  CAPTURE(r.what, sync_later);

  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s1 = w.statement("SELECT 1");
  model_backend pg;  // the direct PostgreSQL, with the same history
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());

  // Everything after the failing message up to the Sync is ignored, including statement work.
  const std::string rest = fe::bind("s1") + fe::execute() + fe::parse("s2", "SELECT 3") +
                           fe::close('S', "s1") + fe::describe('S', "s1") + fe::query("SELECT 1");
  auto l = w.attach(0, 0);
  std::string to_server, to_client;
  if (!sync_later) {
    const auto x = w.exchange(l, 0, r.failing + rest + fe::sync());
    to_server = x.to_server;
    to_client = x.to_client;
  } else {
    const auto first = w.exchange(l, 0, r.failing + rest);
    CHECK(types(first.to_server) == "D");
    CHECK(describe_replies(first.to_client) == r.error);
    CHECK_FALSE(l.idle());  // still skipping until the client's Sync
    const auto second = w.exchange(l, 0, rest + fe::sync());
    to_server = first.to_server + second.to_server;
    to_client = first.to_client + second.to_client;
  }
  CHECK(l.idle());
  // A failing Describe stands in, so the server too skips to the Sync.
  CHECK(types(to_server) == "DS");
  const auto d_message = only(to_server, 'D');  // decoded views point into it
  const auto d = protocol::decode_describe(span_of(d_message.body));
  REQUIRE(d);
  CHECK(d->kind == 'S');
  CHECK_FALSE(d->name.starts_with("sluice_" + std::to_string(s1->id)));
  CHECK(describe_replies(to_client) == std::string(r.error) + " Z");
  if (!sync_later) CHECK(describe_replies(to_client) == direct(r.failing + rest + fe::sync(), pg));

  // Nothing changed, and the client carries on.
  CHECK(w.clients[0].size() == 1);
  CHECK(w.clients[0].at("s1") == s1);
  const auto next = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(next.to_server) == "BES");
  CHECK(describe_replies(next.to_client) == "2 D C[SELECT 1] Z");
}

// A Parse of a name the client already has goes to the server under the name of the client's
// existing statement: PostgreSQL parses and analyses the query first (a syntax error wins), and
// then refuses the taken name (42P05), which sluice rewords for the client's name. Nothing is
// created, and the rest of the batch is skipped as PostgreSQL skips it.
TEST_CASE("statement_relay_fsm: a duplicate name gets PostgreSQL's own answer",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    std::string failing;
    const char* error;
  };
  const auto r = GENERATE(values<row>({
      {"other SQL", fe::parse("s1", "SELECT 2"),
       "E[42P05 prepared statement \"s1\" already exists]"},
      {"same SQL", fe::parse("s1", "SELECT 1"),
       "E[42P05 prepared statement \"s1\" already exists]"},
      {"bad SQL", fe::parse("s1", "bad sql"), "E[42601 syntax error at or near \"bad\"]"},
  }));
  const int server = GENERATE(0, 1);  // 1 lacks the client's statement: it is injected first
  CAPTURE(r.what, server);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s1 = w.statement("SELECT 1");
  model_backend pg;
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  const std::string request =
      r.failing + fe::bind("s1") + fe::execute() + fe::parse("s2", "SELECT 3") + fe::sync();
  const auto x = w.round_trip(0, server, request);
  CHECK(describe_replies(x.to_client) == std::string(r.error) + " Z");
  CHECK(describe_replies(x.to_client) == direct(request, pg));
  const auto parses = split(x.to_server);
  REQUIRE_FALSE(parses.empty());
  // The client's Parse (and, on server 1, the injected one before it) goes under the existing
  // statement's name; the skipped s2 is sent as usual.
  int under_existing_name = 0;
  for (const auto& m : parses) {
    if (m.type != 'P') continue;
    const auto sent = protocol::decode_parse(span_of(m.body));
    REQUIRE(sent);
    if (sent->query == "SELECT 3") continue;
    CHECK(sent->name == s1->server_name);
    ++under_existing_name;
  }
  CHECK(under_existing_name == (server == 0 ? 1 : 2));
  // Nothing changed, and the client carries on.
  CHECK(w.clients[0].size() == 1);
  CHECK(w.clients[0].at("s1") == s1);
  CHECK(w.cache_mismatch().empty());
  const auto next = w.round_trip(0, server, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(describe_replies(next.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: a raised error after earlier replies keeps their order",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const std::string request =
      fe::bind("s1") + fe::execute() + fe::bind("nope") + fe::execute() + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(types(r.to_server) == "BEDS");
  CHECK(describe_replies(r.to_client) ==
        "2 D C[SELECT 1] E[26000 prepared statement \"nope\" does not exist] Z");
}

TEST_CASE("statement_relay_fsm: a raised error after a server error in the same batch is skipped",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  const std::string request =
      fe::parse("x", "bad sql") + fe::bind("nope") + fe::execute() + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(describe_replies(r.to_client) == "E[42601 syntax error at or near \"bad\"] Z");
  CHECK(describe_replies(r.to_client) == direct(request, pg));
}

// --- A Parse that fails, and batches rolled back ------------------------------------------------

TEST_CASE("statement_relay_fsm: a Parse the server rejects leaves no trace",
          "[pool][statements][relay_fsm]") {
  world w;
  const std::string request = fe::parse("s1", "bad sql") + fe::bind("s1") + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(types(r.to_server) == "PBS");
  model_backend pg;
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(describe_replies(r.to_client) == "E[42601 syntax error at or near \"bad\"] Z");
  const auto s = w.statement("bad sql");
  CHECK(w.clients[0].empty());
  CHECK_FALSE(w.servers[0].cache.contains(s->id));
  CHECK_FALSE(s->verified.load());

  // The name is free: a good Parse of it is prepared (again under a server name) and works.
  const auto retry = w.round_trip(0, 0, fe::parse("s1", "SELECT 1") + fe::sync());
  CHECK(describe_replies(retry.to_client) == "1 Z");
  // Another client's Parse of the bad SQL is sent to the server again, and fails again.
  const auto other = w.round_trip(1, 0, fe::parse("t", "bad sql") + fe::sync());
  CHECK(types(other.to_server) == "PS");
  CHECK(describe_replies(other.to_client) == "E[42601 syntax error at or near \"bad\"] Z");
}

TEST_CASE("statement_relay_fsm: messages after a failure in the batch are rolled back",
          "[pool][statements][relay_fsm]") {
  // What fails first, before the statement work that the server then skips.
  struct row {
    const char* what;
    std::string failing;
  };
  const auto r = GENERATE(values<row>({
      {"a Parse", fe::parse("x", "bad sql")},
      {"an unnamed Parse", fe::parse("", "bad sql")},
      {"an Execute", fe::bind("boom") + fe::execute()},
      {"a portal", fe::execute("no portal")},
  }));
  CAPTURE(r.what);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(0, 0, "boom", "UPDATE t SET x = 1 / 0 -- boom");
  w.prepare(1, 0, "other", "SELECT 2");  // on server 0, not known to client 0
  const auto s1 = w.statement("SELECT 1");
  const auto s2 = w.statement("SELECT 2");
  model_backend pg;
  pg.receive(fe::parse("s1", "SELECT 1") + fe::parse("boom", "UPDATE t SET x = 1 / 0 -- boom") +
             fe::sync());

  const std::string request = r.failing +
                              fe::parse("new", "SELECT 3") +       // a Parse sent to the server
                              fe::parse("answered", "SELECT 2") +  // one answered by a no-op Close
                              fe::close('S', "s1") +               // a Close
                              fe::sync();
  const auto result = w.round_trip(0, 0, request);
  CHECK(describe_replies(result.to_client) == direct(request, pg));
  CHECK(types(result.to_client).ends_with("EZ"));
  // As if the skipped messages were never sent.
  CHECK(w.clients[0].size() == 2);
  CHECK(w.clients[0].at("s1") == s1);
  CHECK_FALSE(w.clients[0].contains("new"));
  CHECK_FALSE(w.clients[0].contains("answered"));
  CHECK_FALSE(w.clients[0].contains("x"));
  CHECK_FALSE(w.servers[0].cache.contains(w.statement("SELECT 3")->id));
  CHECK(w.servers[0].cache.contains(s1->id));
  CHECK(w.servers[0].cache.contains(s2->id));

  // And the client's statements work as before.
  const auto next = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(next.to_server) == "BES");
  CHECK(describe_replies(next.to_client) == "2 D C[SELECT 1] Z");
  const auto reparse = w.round_trip(0, 0, fe::parse("new", "SELECT 3") + fe::sync());
  CHECK(types(reparse.to_server) == "PS");
  CHECK(describe_replies(reparse.to_client) == "1 Z");
}

// A skipped batch must be undone newest first: each tentative change was made on top of the
// ones before it. statement_relay_fsm::skip_to_sync rolls the queue back oldest first, so a
// Close and a Parse of the same name in a skipped batch leave the name unmapped, whatever it
// was before.
//   1. s1 → SELECT 1. Batch: Execute (fails), Close s1, Parse s1 'SELECT 2', Sync.
//      PostgreSQL skips both: s1 is still SELECT 1. sluice: the Close's roll back
//      (try_emplace) finds s1 taken by the tentative SELECT 2, then the Parse's roll back
//      erases s1: the client's next Bind s1 gets 26000.
//   2. no s1. Batch: Execute (fails), Parse s1, Close s1, Sync. PostgreSQL: no s1. sluice: the
//      Parse's roll back finds nothing, then the Close's puts s1 back: s1 exists.
// In pool/statement_relay_fsm.cpp, skip_to_sync: `roll_back(pending_.front())` walking front
// to back; the skipped entries should be rolled back from the back.
TEST_CASE("statement_relay_fsm: a skipped Close and Parse of one name roll back in order",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    bool prepared_before;
    std::string batch;
  };
  const auto r = GENERATE(values<row>({
      {"Close then Parse", true,
       fe::execute("no portal") + fe::close('S', "s1") + fe::parse("s1", "SELECT 2") + fe::sync()},
      {"Parse then Close", false,
       fe::execute("no portal") + fe::parse("s1", "SELECT 2") + fe::close('S', "s1") + fe::sync()},
  }));
  CAPTURE(r.what);
  world w;
  model_backend pg;
  if (r.prepared_before) {
    w.prepare(0, 0, "s1", "SELECT 1");
    pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  }
  const auto skipped = w.round_trip(0, 0, r.batch);
  CHECK(describe_replies(skipped.to_client) == direct(r.batch, pg));

  const std::string next = fe::bind("s1") + fe::execute() + fe::sync();
  const auto result = w.round_trip(0, 0, next);
  CHECK(describe_replies(result.to_client) == direct(next, pg));
  CHECK(w.clients[0].contains("s1") == r.prepared_before);
}

// A Close of a name whose Parse is still in flight takes the tentative statement as "the
// mapping to put back if the Close is skipped". When that Parse then fails (the server's own
// error, not a skip), its roll back finds the name already gone, and the skipped Close's roll
// back puts the failed statement back under the name:
//   Parse b 'bad sql', Close b, Sync → server: E (42601), Close skipped, Z.
//   PostgreSQL: no b. sluice: b → 'bad sql'; a later Bind b injects the bad Parse and the client
//   gets 42601 instead of 26000, and Parse b gets 42P05 instead of ParseComplete.
// In pool/statement_relay_fsm.cpp, roll_back `case kind::close_statement: try_emplace(...)`
// restores entry.statement without knowing it never existed; rolling back the skipped entries
// newest first, before the failed entry itself, would undo it in the right order.
TEST_CASE("statement_relay_fsm: a skipped Close does not restore a statement whose Parse failed",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  const std::string request = fe::parse("b", "bad sql") + fe::close('S', "b") + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK_FALSE(w.clients[0].contains("b"));
  const std::string next = fe::parse("b", "SELECT 1") + fe::sync();
  const auto again = w.round_trip(0, 0, next);
  CHECK(describe_replies(again.to_client) == direct(next, pg));
}

// Batches pipelined behind a Sync are rewritten on the tentative state of the batches before
// them: a Parse not yet confirmed counts as done. When that earlier batch fails, the later one
// was already sent as if the statement existed. The server's error then names sluice's
// statement, or there is no error at all, or sluice raises the wrong one:
//   Execute (fails), Parse a, Sync, Bind a, Sync, sent together (libpq pipeline mode, pgx
//   batches): PostgreSQL says 26000 prepared statement "a" does not exist; through sluice the
//   Bind names sluice_<id>, which the server also lacks: 26000 prepared statement
//   "sluice_<id>" does not exist — or, if the statement was on the server already, BindComplete.
// must_wait_for_replies holds back a Parse, Bind, Describe, Close or DEALLOCATE naming a
// statement whose Parse or Close, in a batch already closed by its Sync, is still unconfirmed.
TEST_CASE("statement_relay_fsm: a pipelined batch sees only what PostgreSQL kept",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    std::string request;
  };
  const auto r = GENERATE(values<row>({
      {"Bind of a skipped Parse's name", fe::execute("no portal") + fe::parse("a", "SELECT 1") +
                                             fe::sync() + fe::bind("a") + fe::sync()},
      {"Describe of a skipped Parse's name, on a server that has it",
       fe::execute("no portal") + fe::parse("a", "SELECT 2") + fe::sync() + fe::describe('S', "a") +
           fe::sync()},
      {"DEALLOCATE of a failed Parse's name",
       fe::parse("a", "bad sql") + fe::sync() + fe::query("DEALLOCATE a")},
  }));
  CAPTURE(r.what);
  world w;
  w.prepare(1, 0, "other", "SELECT 2");
  model_backend pg;
  const auto result = w.round_trip(0, 0, r.request);
  CHECK(describe_replies(result.to_client) == direct(r.request, pg));
}

TEST_CASE("statement_relay_fsm: a Parse behind a Sync waits for the same name's earlier Parse",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    const char* first_sql;
    const char* replies;
  };
  const auto r = GENERATE(values<row>({
      {"the earlier Parse fails: this one succeeds", "bad sql",
       "E[42601 syntax error at or near \"bad\"] Z 1 Z"},
      {"the earlier Parse succeeds: this one is a duplicate", "SELECT 1",
       "1 Z E[42P05 prepared statement \"a\" already exists] Z"},
  }));
  CAPTURE(r.what);
  world w;
  model_backend pg;
  auto l = w.attach(0, 0);
  const std::string request =
      fe::parse("a", r.first_sql) + fe::sync() + fe::parse("a", "SELECT 2") + fe::sync();
  // Only the first batch goes until its replies are in.
  const auto first = l.from_client(request);
  CHECK(types(first) == "PS");
  CHECK(l.blocked());
  CHECK(l.from_client("").empty());  // still waiting
  auto to_client = l.from_server(w.servers[0].pg.receive(first));
  const auto second = l.resume();
  CHECK_FALSE(l.blocked());
  to_client += l.from_server(w.servers[0].pg.receive(second));
  CHECK(l.idle());
  CHECK(describe_replies(to_client) == direct(request, pg));
  CHECK(describe_replies(to_client) == r.replies);
}

// Decisions behind a Sync rest on what the batches before it leave behind; while one of those
// may still fail and roll its changes back, statement messages wait. Without such changes
// pending (a pipeline of statements already prepared), nothing waits.
TEST_CASE("statement_relay_fsm: statement messages behind a Sync wait only for changes",
          "[pool][statements][relay_fsm]") {
  world w;
  auto l = w.attach(0, 0);
  const auto sent =
      l.from_client(fe::parse("a", "SELECT 1") + fe::sync() + fe::parse("b", "SELECT 1") +
                    fe::parse("", "SELECT 1") + fe::sync());
  CHECK(types(sent) == "PS");
  CHECK(l.blocked());
  l.from_server(w.servers[0].pg.receive(sent));
  CHECK(types(l.resume()) == "CPS");
  CHECK_FALSE(l.blocked());
  // Statements already in place: a pipeline of Binds goes at once.
  w.prepare(1, 1, "p", "SELECT 1");
  auto m = w.attach(1, 1);
  const auto batch = fe::bind("p") + fe::execute() + fe::sync();
  CHECK(types(m.from_client(batch + batch + batch)) == "BESBESBES");
  CHECK_FALSE(m.blocked());
  // Within one batch nothing waits: a second Parse of a name gets PostgreSQL's 42P05 for the
  // statement the first created.
  auto n = w.attach(1, 0);
  const auto same_batch = n.from_client(fe::parse("c", "SELECT 3") + fe::parse("c", "SELECT 3"));
  CHECK(types(same_batch) == "PP");
  CHECK_FALSE(n.blocked());
}

// --- Eviction -----------------------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: at capacity the least recently used statement is closed",
          "[pool][statements][relay_fsm]") {
  world w(2);
  w.prepare(0, 0, "a", "SELECT 'a'");
  w.prepare(0, 0, "b", "SELECT 'b'");
  const auto a = w.statement("SELECT 'a'");
  const auto b = w.statement("SELECT 'b'");
  const bool touch_a = GENERATE(false, true);
  CAPTURE(touch_a);
  if (touch_a) {
    const auto used = w.round_trip(0, 0, fe::bind("a") + fe::execute() + fe::sync());
    REQUIRE(types(used.to_server) == "BES");
  }
  const auto& evicted = touch_a ? b : a;
  const auto& kept = touch_a ? a : b;

  const auto r = w.round_trip(0, 0, fe::parse("c", "SELECT 'c'") + fe::sync());
  CHECK(types(r.to_server) == "CPS");
  const auto close_message = only(r.to_server, 'C');  // decoded views point into it
  const auto close = protocol::decode_close(span_of(close_message.body));
  REQUIRE(close);
  CHECK(close->kind == 'S');
  CHECK(close->name == evicted->server_name);
  // The Close's CloseComplete is swallowed: the client sees its ParseComplete only.
  CHECK(describe_replies(r.to_client) == "1 Z");
  CHECK_FALSE(w.servers[0].cache.contains(evicted->id));
  CHECK_FALSE(w.servers[0].pg.statements.contains(evicted->server_name));
  CHECK(w.servers[0].cache.contains(kept->id));
  CHECK(w.servers[0].cache.contains(w.statement("SELECT 'c'")->id));
  CHECK(w.servers[0].cache.size() == 2);

  // The client still has its name: the next use prepares it again, evicting the next one.
  const std::string name = touch_a ? "b" : "a";
  const auto again = w.round_trip(0, 0, fe::bind(name) + fe::execute() + fe::sync());
  CHECK(types(again.to_server) == "CPBES");
  CHECK(describe_replies(again.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: an eviction Close the server skips puts the statement back",
          "[pool][statements][relay_fsm]") {
  world w(2);
  w.prepare(0, 0, "a", "SELECT 'a'");
  w.prepare(0, 0, "b", "SELECT 'b'");
  const auto a = w.statement("SELECT 'a'");
  const auto c = w.statement("SELECT 'c'");
  // The Execute fails first, so the server skips the Close of `a` and the Parse of `c`.
  const auto r =
      w.round_trip(0, 0, fe::execute("no portal") + fe::parse("c", "SELECT 'c'") + fe::sync());
  CHECK(types(r.to_server) == "ECPS");
  CHECK(describe_replies(r.to_client) == "E[34000 portal \"no portal\" does not exist] Z");
  CHECK(w.servers[0].pg.statements.contains(a->server_name));
  CHECK(w.servers[0].cache.contains(a->id));
  CHECK_FALSE(w.servers[0].cache.contains(c->id));
  CHECK_FALSE(w.clients[0].contains("c"));
  // `a` is used without a Parse: the server still has it.
  const auto use = w.round_trip(0, 0, fe::bind("a") + fe::execute() + fe::sync());
  CHECK(types(use.to_server) == "BES");
  CHECK(describe_replies(use.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: an injected Parse that is skipped is forgotten",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "a", "SELECT 'a'");
  const auto a = w.statement("SELECT 'a'");
  // On server 1 the Bind of `a` injects a Parse, which the server skips.
  const auto r = w.round_trip(0, 1, fe::execute("no portal") + fe::bind("a") + fe::sync());
  CHECK(types(r.to_server) == "EPBS");
  CHECK(describe_replies(r.to_client) == "E[34000 portal \"no portal\" does not exist] Z");
  CHECK_FALSE(w.servers[1].cache.contains(a->id));
  const auto use = w.round_trip(0, 1, fe::bind("a") + fe::execute() + fe::sync());
  CHECK(types(use.to_server) == "PBES");
  CHECK(describe_replies(use.to_client) == "2 D C[SELECT 1] Z");
}

// The eviction Close for a statement whose own Parse fails in the same batch is skipped, and its
// roll back restores the statement into the server's cache although the server never had it:
// skip_to_sync rolls back oldest first, so the failed Parse's erase runs before the Close's
// restore. Afterwards the cache claims the server holds the bad statement; another client's
// Parse of the same SQL is then answered by a no-op Close (ParseComplete) instead of
// PostgreSQL's 42601, and its Bind goes out without a Parse (26000 naming sluice_<id>).
//   capacity 1; Parse x 'bad sql' (fails), Parse y 'SELECT 2' (evicts 'bad sql': Close, Parse),
//   Sync → the cache contains 'bad sql'.
// In pool/statement_relay_fsm.cpp, skip_to_sync (order of roll_back) together with
// roll_back's `case kind::evict_close: server_.restore(...)`.
TEST_CASE("statement_relay_fsm: a failed Parse's statement is not restored by its eviction",
          "[pool][statements][relay_fsm]") {
  world w(1);
  const auto r =
      w.round_trip(0, 0, fe::parse("x", "bad sql") + fe::parse("y", "SELECT 2") + fe::sync());
  CHECK(types(r.to_server) == "PCPS");
  CHECK(describe_replies(r.to_client) == "E[42601 syntax error at or near \"bad\"] Z");
  const auto bad = w.statement("bad sql");
  CHECK_FALSE(w.servers[0].cache.contains(bad->id));

  const std::string request = fe::parse("z", "bad sql") + fe::sync();
  const auto other = w.round_trip(1, 0, request);
  model_backend pg;
  CHECK(describe_replies(other.to_client) == direct(request, pg));
}

// The most likely way to meet the roll back order bug: a small cache, a batch that uses a
// statement the same batch evicted, and an error before both (a unique violation in the first
// Execute, say). Nothing but a busy cache and an ordinary error is needed.
//   capacity 2, cache [b, a] (a least recent). Batch: Execute (fails), Bind c (evicts a: Close
//   a, Parse c), Bind a (evicts b: Close b, Parse a), Sync. The server skips all of it and keeps
//   a and b. Rolled back oldest first: restore(a) is a no-op (a is in the cache again,
//   tentatively), erase(c), restore(b), erase(a) → the cache lists only b while the server
//   has a and b. The next Bind a injects a Parse the server refuses: the client gets
//   42P05 prepared statement "sluice_<id>" already exists, for a Bind.
// In pool/statement_relay_fsm.cpp, skip_to_sync: roll back the skipped entries from the newest.
TEST_CASE("statement_relay_fsm: a skipped batch rolls back newest first",
          "[pool][statements][relay_fsm]") {
  world w(2);
  w.prepare(0, 1, "c", "SELECT 'c'");
  w.prepare(0, 0, "a", "SELECT 'a'");
  w.prepare(0, 0, "b", "SELECT 'b'");
  model_backend pg;
  pg.receive(fe::parse("c", "SELECT 'c'") + fe::parse("a", "SELECT 'a'") +
             fe::parse("b", "SELECT 'b'") + fe::sync());

  const std::string batch = fe::execute("no portal") + fe::bind("c") + fe::execute() +
                            fe::bind("a") + fe::execute() + fe::sync();
  const auto skipped = w.round_trip(0, 0, batch);
  CHECK(types(skipped.to_server) == "ECPBECPBES");
  CHECK(describe_replies(skipped.to_client) == direct(batch, pg));
  CHECK(w.cache_mismatch().empty());

  const std::string next = fe::bind("a") + fe::execute() + fe::sync();
  const auto use = w.round_trip(0, 0, next);
  CHECK(describe_replies(use.to_client) == direct(next, pg));
}

// --- Stale plans --------------------------------------------------------------------------------

// After DDL PostgreSQL may refuse a cached plan (0A000 "cached plan must not change result
// type"). When the refused Bind opened its batch in an implicit transaction, nothing of the batch
// ran: sluice closes the statement, prepares it afresh and runs the batch again, and the client
// sees only the second run (issue 13.9). The batch describes its result, so the client reads
// the new rows with the new RowDescription.
TEST_CASE("statement_relay_fsm: a refused plan is healed when nothing has run yet",
          "[pool][statements][relay_fsm][heal]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s = w.statement("SELECT 1");
  w.servers[0].pg.next_bind_error = {"0A000", "cached plan must not change result type"};
  const auto r =
      w.round_trip(0, 0, fe::bind("s1") + fe::describe('P', "") + fe::execute() + fe::sync());
  CHECK(types(r.to_server) == "BDESCPBDES");
  CHECK(describe_replies(r.to_client) == "2 T D C[SELECT 1] Z");
  const auto sent = split(r.to_server);
  const auto close = protocol::decode_close(span_of(sent[4].body));
  REQUIRE(close);
  CHECK(close->name == s->server_name);
  CHECK(sent[5].wire == s->parse_message);
  CHECK(w.servers[0].cache.contains(s->id));
  CHECK(w.counters.plans_healed == 1);
  // Once healed, the next use is a plain Bind again.
  const auto next = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(next.to_server) == "BES");
}

// Inside a transaction block the failed Bind has aborted the transaction: running it again
// would hide that, so the client sees the refusal, and the statement is prepared afresh on its
// next use. The same when more was pipelined behind the batch (a second run would overtake it),
// and when the batch does not describe its result (the client would read rows of the new shape
// with the RowDescription it kept).
TEST_CASE("statement_relay_fsm: a refused plan reaches the client where a rerun is unsafe",
          "[pool][statements][relay_fsm][heal]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s = w.statement("SELECT 1");
  const auto use = fe::bind("s1") + fe::describe('P', "") + fe::execute() + fe::sync();
  SECTION("without a Describe") {
    w.servers[0].pg.next_bind_error = {"0A000", "cached plan must not change result type"};
    const auto refused = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
    CHECK(describe_replies(refused.to_client) ==
          "E[0A000 cached plan must not change result type] Z");
  }
  SECTION("inside a transaction block") {
    auto l = w.attach(0, 0);
    w.exchange(l, 0, fe::query("BEGIN"));
    w.servers[0].pg.next_bind_error = {"0A000", "cached plan must not change result type"};
    const auto refused = w.exchange(l, 0, use);
    CHECK(types(refused.to_server) == "BDES");
    CHECK(describe_replies(refused.to_client) ==
          "E[0A000 cached plan must not change result type] Z");
    w.exchange(l, 0, fe::query("ROLLBACK"));
  }
  SECTION("with a batch pipelined behind it") {
    w.servers[0].pg.next_bind_error = {"0A000", "cached plan must not change result type"};
    const auto refused = w.round_trip(0, 0, use + fe::query("SELECT 1"));
    CHECK(describe_replies(refused.to_client) ==
          "E[0A000 cached plan must not change result type] Z T D C[SELECT 1] Z");
  }
  CHECK(w.counters.plans_healed == 0);
  CHECK_FALSE(w.servers[0].cache.contains(s->id));  // stale: prepared afresh on next use
  const auto next = w.round_trip(0, 0, use);
  CHECK(types(next.to_server) == "CPBDES");
  CHECK(describe_replies(next.to_client) == "2 T D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: other errors on a Bind do not make a statement stale",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* sqlstate;
    const char* message;
  };
  const auto r = GENERATE(values<row>({
      {"22P02", "invalid input syntax for type integer: \"x\""},
      {"0A000", "some other unsupported feature"},
      {"XX000", "cached plan must not change result type"},
  }));
  CAPTURE(r.sqlstate, r.message);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.servers[0].pg.next_bind_error = {r.sqlstate, r.message};
  w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  const auto next = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(next.to_server) == "BES");
}

// --- DEALLOCATE and DISCARD ALL -----------------------------------------------------------------

TEST_CASE("statement_relay_fsm: DEALLOCATE is answered for the client alone",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* sql;
    const char* tag;
    std::vector<std::string> left;  // client 0's names afterwards
  };
  const auto r = GENERATE(values<row>({
      {"DEALLOCATE s1", "DEALLOCATE", {"s2"}},
      {"deallocate prepare s1;", "DEALLOCATE", {"s2"}},
      {"DEALLOCATE \"s1\"", "DEALLOCATE", {"s2"}},
      {"DEALLOCATE ALL", "DEALLOCATE ALL", {}},
      {"DEALLOCATE PREPARE ALL", "DEALLOCATE ALL", {}},
  }));
  CAPTURE(r.sql);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(0, 0, "s2", "SELECT 2");
  w.prepare(1, 0, "s1", "SELECT 1");
  const auto s1 = w.statement("SELECT 1");

  const auto result = w.round_trip(0, 0, fe::query(r.sql));
  // The server gets an empty Query, so the reply comes in its place...
  CHECK(types(result.to_server) == "Q");
  const auto q_message = only(result.to_server, 'Q');  // decoded views point into it
  const auto q = protocol::decode_query(span_of(q_message.body));
  REQUIRE(q);
  CHECK(q->sql.empty());
  // ...and its EmptyQueryResponse becomes the client's CommandComplete.
  CHECK(describe_replies(result.to_client) == "C[" + std::string(r.tag) + "] Z");
  std::vector<std::string> left;
  for (const auto& [name, s] : w.clients[0]) left.push_back(name);
  std::sort(left.begin(), left.end());
  CHECK(left == r.left);
  // The server and the other client keep the statement.
  CHECK(w.servers[0].cache.contains(s1->id));
  CHECK(w.servers[0].pg.statements.contains(s1->server_name));
  const auto other = w.round_trip(1, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "BES");
  CHECK(describe_replies(other.to_client) == "2 D C[SELECT 1] Z");
  // PostgreSQL's own answer to a Bind of the deallocated name.
  const auto gone = w.round_trip(0, 0, fe::bind("s1") + fe::sync());
  CHECK(describe_replies(gone.to_client) == "E[26000 prepared statement \"s1\" does not exist] Z");
}

TEST_CASE("statement_relay_fsm: DEALLOCATE of a name the client lacks goes to the server",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(1, 0, "s1", "SELECT 1");  // another client's name does not count
  const std::string request = fe::query("DEALLOCATE s1");
  const auto r = w.round_trip(0, 0, request);
  CHECK(to_hex(r.to_server) == to_hex(request));
  model_backend pg;
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(describe_replies(r.to_client) == "E[26000 prepared statement \"s1\" does not exist] Z");
  CHECK(w.clients[1].contains("s1"));
}

// A client's DISCARD ALL is DEALLOCATE ALL for that client alone plus what resets its session:
// the server keeps the statements other clients use.
TEST_CASE("statement_relay_fsm: DISCARD ALL clears the client's names, not the server's",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 0, "t1", "SELECT 2");
  w.prepare(1, 1, "t2", "SELECT 3");
  const std::string request = fe::query("DISCARD ALL");
  const auto r = w.round_trip(0, 0, request);
  const auto sent = only(r.to_server, 'Q');
  const auto query = protocol::decode_query(span_of(sent.body));
  REQUIRE(query);
  CHECK(query->sql == "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL");
  CHECK(describe_replies(r.to_client) == "C[DISCARD ALL] Z");
  CHECK(w.clients[0].empty());
  CHECK(w.servers[0].cache.size() == 2);
  CHECK(w.servers[0].pg.named().size() == 2);
  // Other clients keep their names, and their statements stay where they are.
  CHECK(w.clients[1].size() == 2);
  const auto other = w.round_trip(1, 0, fe::bind("t1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "BES");
  CHECK(describe_replies(other.to_client) == "2 D C[SELECT 1] Z");
  // The client itself starts afresh, as after DISCARD ALL on PostgreSQL.
  const auto gone = w.round_trip(0, 0, fe::bind("s1") + fe::sync());
  CHECK(describe_replies(gone.to_client) == "E[26000 prepared statement \"s1\" does not exist] Z");
}

TEST_CASE("statement_relay_fsm: a DISCARD ALL that fails clears nothing",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  auto l = w.attach(0, 0);
  const auto to_server = l.from_client(fe::query("DISCARD ALL"));
  CHECK(types(to_server) == "Q");
  const auto to_client = l.from_server(
      be::error("25001", "DISCARD ALL cannot run inside a transaction block") + be::ready('T'));
  CHECK(describe_replies(to_client) ==
        "E[25001 DISCARD ALL cannot run inside a transaction block] Z");
  CHECK(l.idle());
  CHECK(w.clients[0].contains("s1"));
  CHECK(w.servers[0].cache.size() == 1);
}

TEST_CASE("statement_relay_fsm: other simple queries pass through",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  for (const char* sql : {"SELECT 1", "", "DISCARD PLANS", "bad sql", "SELECT 1; SELECT 2",
                          "SELECT 1; DEALLOCATE nope", "DEALLOCATE nope; SELECT 1"}) {
    CAPTURE(sql);
    const std::string request = fe::query(sql);
    model_backend pg;
    const auto r = w.round_trip(0, 0, request);
    CHECK(to_hex(r.to_server) == to_hex(request));
    CHECK(describe_replies(r.to_client) == direct(request, pg));
  }
  CHECK(w.clients[0].contains("s1"));
}

// The fsm applies a DISCARD ALL's effect when its CommandComplete arrives, to the maps as they
// are then: a Parse the client pipelined after the DISCARD ALL (sent before the reply came
// back) is recorded first and then wiped, although PostgreSQL ran it after the DISCARD ALL and
// kept it. The server's cache likewise loses the statement the server now holds.
//   Query 'DISCARD ALL', Parse s1 'SELECT 1', Sync (one write) → s1 unknown afterwards.
// In pool/statement_relay_fsm.cpp, on_server_message: `client_.clear(); server_.clear();` on
// "DISCARD ALL". Rare: drivers wait for a simple Query's ReadyForQuery before the next message.
TEST_CASE("statement_relay_fsm: a Parse pipelined after DISCARD ALL survives it",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  const std::string request = fe::query("DISCARD ALL") + fe::parse("s1", "SELECT 1") + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  const std::string next = fe::bind("s1") + fe::execute() + fe::sync();
  const auto use = w.round_trip(0, 0, next);
  CHECK(describe_replies(use.to_client) == direct(next, pg));
}

// --- SQL PREPARE and EXECUTE -------------------------------------------------------------------

std::string query_text(const std::string& bytes) {
  const auto m = only(bytes, 'Q');
  const auto q = protocol::decode_query(span_of(m.body));
  REQUIRE(q);
  return std::string(q->sql);
}

TEST_CASE("statement_relay_fsm: SQL PREPARE is renamed and EXECUTE follows the client",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto prepare = fe::query("PREPARE p (int) AS SELECT $1");
  const auto r = w.round_trip(0, 0, prepare);
  REQUIRE(w.clients[0].contains("p"));
  const auto s = w.clients[0].at("p");
  CHECK(s->from_sql());
  // The PREPARE, then a Describe of its own that tells sluice the parameter types.
  CHECK(types(r.to_server) == "QDS");
  CHECK_FALSE(s->protocol_parse().empty());
  const auto sent = query_text(r.to_server);
  CHECK(sent.starts_with("PREPARE " + s->server_name));
  CHECK(sent.ends_with("(int) AS SELECT $1"));
  CHECK(describe_replies(r.to_client) == direct(prepare, pg));
  CHECK(describe_replies(r.to_client) == "C[PREPARE] Z");
  CHECK(w.servers[0].cache.contains(s->id));

  const auto execute = fe::query("EXECUTE p(42)");
  const auto here = w.round_trip(0, 0, execute);
  CHECK(query_text(here.to_server) == "EXECUTE " + s->server_name + "(42)");
  CHECK(describe_replies(here.to_client) == direct(execute, pg));
  CHECK(describe_replies(here.to_client) == "T D C[SELECT 1] Z");

  // On a server without it: prepared and executed in one round trip, the PREPARE's
  // CommandComplete swallowed.
  const auto there = w.round_trip(0, 1, execute);
  CHECK(types(there.to_server) == "Q");
  CHECK(query_text(there.to_server).starts_with("PREPARE " + s->server_name));
  CHECK(query_text(there.to_server).ends_with("EXECUTE " + s->server_name + "(42)"));
  CHECK(describe_replies(there.to_client) == direct(execute, pg));
  CHECK(w.servers[1].cache.contains(s->id));
  const auto again = w.round_trip(0, 1, execute);
  CHECK(query_text(again.to_server) == "EXECUTE " + s->server_name + "(42)");
  CHECK(describe_replies(again.to_client) == "T D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: SQL PREPARE of a statement the server has sends an empty query",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  const auto prepare = fe::query("PREPARE p AS SELECT 1");
  w.round_trip(0, 0, prepare);
  const auto r = w.round_trip(1, 0, fe::query("PREPARE q AS SELECT 1"));
  CHECK(query_text(r.to_server).empty());
  CHECK(describe_replies(r.to_client) == "C[PREPARE] Z");
  CHECK(w.clients[1].at("q") == w.clients[0].at("p"));
  // A Parse of the same text is another statement: the SQL kind never shares with it.
  w.prepare(1, 0, "parsed", "SELECT 1");
  CHECK(w.clients[1].at("parsed") != w.clients[0].at("p"));
}

TEST_CASE("statement_relay_fsm: SQL PREPARE of a taken name gets 42P05",
          "[pool][statements][relay_fsm][sql_prepare]") {
  const bool taken_by_parse = GENERATE(false, true);
  CAPTURE(taken_by_parse);
  world w;
  model_backend pg;
  const std::string first =
      taken_by_parse ? fe::parse("p", "SELECT 1") + fe::sync() : fe::query("PREPARE p AS SELECT 1");
  w.round_trip(0, 0, first);
  pg.receive(first);
  const auto request = fe::query("PREPARE p AS SELECT 2");
  const auto r = w.round_trip(0, 0, request);
  CHECK(types(r.to_server) == "Q");
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(describe_replies(r.to_client) == "E[42P05 prepared statement \"p\" already exists] Z");
}

TEST_CASE("statement_relay_fsm: a SQL PREPARE the server rejects leaves no trace",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto request = fe::query("PREPARE p AS bad sql");
  const auto r = w.round_trip(0, 0, request);
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(w.clients[0].empty());
  CHECK(w.servers[0].cache.size() == 0);
  const auto retry = w.round_trip(0, 0, fe::query("PREPARE p AS SELECT 1"));
  CHECK(describe_replies(retry.to_client) == "C[PREPARE] Z");
}

TEST_CASE("statement_relay_fsm: EXECUTE of an unknown name gets PostgreSQL's own error",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto request = fe::query("EXECUTE nope(1)");
  const auto r = w.round_trip(0, 0, request);
  CHECK(to_hex(r.to_server) == to_hex(request));
  CHECK(describe_replies(r.to_client) == direct(request, pg));
}

TEST_CASE("statement_relay_fsm: an EXECUTE that fails after its PREPARE keeps the statement",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto prepare = fe::query("PREPARE p AS SELECT 1/0 AS boom");
  w.round_trip(0, 0, prepare);
  pg.receive(prepare);
  const auto s = w.clients[0].at("p");
  const auto execute = fe::query("EXECUTE p");
  const auto r = w.round_trip(0, 1, execute);
  CHECK(describe_replies(r.to_client) == direct(execute, pg));
  CHECK(describe_replies(r.to_client) == "E[22012 division by zero] Z");
  CHECK(w.servers[1].cache.contains(s->id));
  CHECK(w.servers[1].pg.statements.contains(s->server_name));
  const auto again = w.round_trip(0, 1, execute);
  CHECK(query_text(again.to_server) == "EXECUTE " + s->server_name);
}

TEST_CASE("statement_relay_fsm: SQL PREPARE at capacity closes the least recently used",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w(1);
  w.round_trip(0, 0, fe::query("PREPARE a AS SELECT 1"));
  const auto a = w.clients[0].at("a");
  const auto r = w.round_trip(0, 0, fe::query("PREPARE b AS SELECT 2"));
  CHECK(types(r.to_server) == "CQDS");
  const auto close_message = only(r.to_server, 'C');
  const auto close = protocol::decode_close(span_of(close_message.body));
  REQUIRE(close);
  CHECK(close->name == a->server_name);
  CHECK(describe_replies(r.to_client) == "C[PREPARE] Z");
  CHECK_FALSE(w.servers[0].pg.statements.contains(a->server_name));
  // `a` is prepared again where it is executed.
  const auto use = w.round_trip(0, 0, fe::query("EXECUTE a"));
  CHECK(types(use.to_server) == "CQ");
  CHECK(describe_replies(use.to_client) == "T D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: DEALLOCATE of a SQL-prepared name is the client's alone",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  w.round_trip(0, 0, fe::query("PREPARE p AS SELECT 1"));
  w.round_trip(1, 0, fe::query("PREPARE p AS SELECT 1"));
  const auto r = w.round_trip(0, 0, fe::query("DEALLOCATE p"));
  CHECK(query_text(r.to_server).empty());
  CHECK(describe_replies(r.to_client) == "C[DEALLOCATE] Z");
  CHECK_FALSE(w.clients[0].contains("p"));
  const auto other = w.round_trip(1, 0, fe::query("EXECUTE p"));
  CHECK(describe_replies(other.to_client) == "T D C[SELECT 1] Z");
}

// The statement is prepared on a new server with `prepare_sql + "; " + execute` as one Query.
// A definition that ends in a "--" comment swallows the "; EXECUTE ..." that follows it, so the
// server only prepares: the PREPARE's CommandComplete is swallowed as planned and the client
// gets a bare ReadyForQuery for its EXECUTE: no rows, no CommandComplete, no error.
//   PREPARE p AS SELECT 1 -- note   (server 0), then EXECUTE p on server 1 → client sees "Z".
// In pool/statement_relay_fsm.cpp, on_query case cmd::execute: `prepare_sql + "; " + execute`
// (a newline before the ';' would end the comment).
TEST_CASE("statement_relay_fsm: EXECUTE elsewhere of a PREPARE ending in a line comment",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto prepare = fe::query("PREPARE p AS SELECT 1 -- note");
  w.round_trip(0, 0, prepare);
  pg.receive(prepare);
  const auto execute = fe::query("EXECUTE p");
  const auto r = w.round_trip(0, 1, execute);
  CHECK(describe_replies(r.to_client) == direct(execute, pg));
}

// PostgreSQL keeps protocol-level and SQL-level prepared statements in one namespace: a Bind
// or Describe may name a statement made by SQL PREPARE (sluice makes it on another server with a
// Parse of the parameter types PostgreSQL reported), and EXECUTE may name one made by Parse (the
// Parse goes first, in a batch of its own).
TEST_CASE("statement_relay_fsm: protocol and SQL statements share one namespace",
          "[pool][statements][relay_fsm][sql_prepare]") {
  struct row {
    const char* what;
    std::string prepare;
    std::string use;
  };
  const auto r = GENERATE(values<row>({
      {"Bind of a SQL-prepared name", fe::query("PREPARE p AS SELECT 1"),
       fe::bind("p") + fe::execute() + fe::sync()},
      {"Describe of a SQL-prepared name", fe::query("PREPARE p AS SELECT 1"),
       fe::describe('S', "p") + fe::sync()},
      {"EXECUTE of a Parse-prepared name", fe::parse("p", "SELECT 1") + fe::sync(),
       fe::query("EXECUTE p")},
  }));
  CAPTURE(r.what);
  world w;
  model_backend pg;
  w.round_trip(0, 0, r.prepare);
  pg.receive(r.prepare);
  for (int server : {0, 1}) {
    CAPTURE(server);
    const auto result = w.round_trip(0, server, r.use);
    CHECK(describe_replies(result.to_client) == direct(r.use, pg));
  }
}

// A statement whose plan PostgreSQL refuses (0A000 "cached plan must not change result type",
// after DDL) is marked stale when a Bind fails, and re-prepared on its next use. An EXECUTE
// failing the same way is not: the statement stays on the server under its name, and since a
// client's DEALLOCATE and PREPARE never reach the server (the same definition is the same
// statement, already "on the server"), the client cannot get rid of the error the way it
// would on a direct PostgreSQL.
//   PREPARE p AS SELECT 1; (DDL); EXECUTE p → 0A000; DEALLOCATE p; PREPARE p AS SELECT 1;
//   EXECUTE p → PostgreSQL: rows; sluice: 0A000 again, for as long as the server keeps it.
// In pool/statement_relay_fsm.cpp, on_server_message: mark_stale only for `entry.request == 'B'`.
TEST_CASE("statement_relay_fsm: an EXECUTE refused for a changed plan can recover",
          "[pool][statements][relay_fsm][sql_prepare]") {
  world w;
  model_backend pg;
  const auto prepare = fe::query("PREPARE p AS SELECT 1");
  w.round_trip(0, 0, prepare);
  pg.receive(prepare);
  const auto s = w.clients[0].at("p");
  w.servers[0].pg.stale.insert(s->server_name);
  pg.stale.insert("p");
  const auto execute = fe::query("EXECUTE p");
  const auto refused = w.round_trip(0, 0, execute);
  CHECK(describe_replies(refused.to_client) == direct(execute, pg));
  const std::string recover = fe::query("DEALLOCATE p") + prepare + execute;
  const auto r = w.round_trip(0, 0, recover);
  CHECK(describe_replies(r.to_client) == direct(recover, pg));
}

// --- DEALLOCATE the other ways: extended protocol, multi-statement Query --------------------

TEST_CASE("statement_relay_fsm: DEALLOCATE through the extended protocol is the client's alone",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* sql;
    const char* tag;
    std::size_t left;  // client 0's names afterwards
  };
  const auto r = GENERATE(values<row>({
      {"DEALLOCATE s1", "DEALLOCATE", 1},
      {"deallocate prepare s1", "DEALLOCATE", 1},
      {"DEALLOCATE ALL", "DEALLOCATE ALL", 0},
  }));
  CAPTURE(r.sql);
  world w;
  model_backend pg;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(0, 0, "s2", "SELECT 2");
  w.prepare(1, 0, "s1", "SELECT 1");
  pg.receive(fe::parse("s1", "SELECT 1") + fe::parse("s2", "SELECT 2") + fe::sync());
  const std::string request =
      fe::parse("", r.sql) + fe::bind("") + fe::describe('P', "") + fe::execute() + fe::sync();
  const auto result = w.round_trip(0, 0, request);
  // An empty statement stands in; its EmptyQueryResponse becomes the CommandComplete.
  const auto parse_message = only(result.to_server, 'P');
  const auto parse = protocol::decode_parse(span_of(parse_message.body));
  REQUIRE(parse);
  CHECK(parse->name.empty());
  CHECK(parse->query.empty());
  CHECK(describe_replies(result.to_client) == "1 2 n C[" + std::string(r.tag) + "] Z");
  CHECK(w.clients[0].size() == r.left);
  CHECK_FALSE(w.clients[0].contains("s1"));
  CHECK(w.servers[0].pg.statements.contains(w.clients[1].at("s1")->server_name));
  const auto other = w.round_trip(1, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "BES");
}

TEST_CASE("statement_relay_fsm: DEALLOCATE of an unknown name through the extended protocol",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  const std::string request =
      fe::parse("", "DEALLOCATE nope") + fe::bind("") + fe::execute() + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(to_hex(r.to_server) == to_hex(request));
}

// In a failed transaction PostgreSQL refuses everything but COMMIT and ROLLBACK with 25P02, the
// commands sluice otherwise answers itself included: a DEALLOCATE keeps the statement, a Parse
// (even of SQL some server already holds) creates no name, DISCARD ALL clears nothing. After
// the ROLLBACK the client finds exactly what PostgreSQL kept.
TEST_CASE("statement_relay_fsm: a failed transaction refuses what sluice would answer",
          "[pool][statements][relay_fsm][failed_transaction]") {
  struct row {
    const char* what;
    std::string request;
  };
  const auto r = GENERATE(values<row>({
      {"DEALLOCATE", fe::query("DEALLOCATE s1")},
      {"DEALLOCATE ALL", fe::query("DEALLOCATE ALL")},
      {"extended DEALLOCATE",
       fe::parse("", "DEALLOCATE s1") + fe::bind("") + fe::execute() + fe::sync()},
      {"Parse of SQL a server holds", fe::parse("s2", "SELECT 2") + fe::sync()},
      {"Parse of new SQL", fe::parse("s2", "SELECT 7") + fe::sync()},
      {"Parse of bad SQL", fe::parse("s2", "bad sql") + fe::sync()},
      {"Parse of a taken name", fe::parse("s1", "SELECT 8") + fe::sync()},
      {"PREPARE", fe::query("PREPARE s2 AS SELECT 2")},
      {"DISCARD ALL", fe::query("DISCARD ALL")},
      {"Bind", fe::bind("s1") + fe::execute() + fe::sync()},
  }));
  CAPTURE(r.what);
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 0, "t2", "SELECT 2");  // the server holds SELECT 2 for another client
  model_backend pg;
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());

  auto l = w.attach(0, 0);
  for (const auto& step : {fe::query("BEGIN"), fe::query("SELECT 1 boom")}) {
    const auto x = w.exchange(l, 0, step);
    CHECK(describe_replies(x.to_client) == direct(step, pg));
  }
  REQUIRE(pg.status == 'E');
  const auto refused = w.exchange(l, 0, r.request);
  CHECK(describe_replies(refused.to_client) == direct(r.request, pg));
  const auto seen = describe_replies(refused.to_client);
  const bool refused_as_postgresql_does =
      seen.find("25P02") != std::string::npos || seen.find("42601") != std::string::npos;
  CHECK(refused_as_postgresql_does);
  const auto rollback = fe::query("ROLLBACK");
  const auto x = w.exchange(l, 0, rollback);
  CHECK(describe_replies(x.to_client) == direct(rollback, pg));
  CHECK(l.idle());
  // Afterwards: the client's names are PostgreSQL's.
  for (const auto& use :
       {fe::bind("s1") + fe::execute() + fe::sync(), fe::bind("s2") + fe::execute() + fe::sync()}) {
    const auto after = w.round_trip(0, 0, use);
    CHECK(describe_replies(after.to_client) == direct(use, pg));
  }
  CHECK(w.cache_mismatch().empty());
}

// A DEALLOCATE that PostgreSQL never runs keeps the name: one in a batch that fails before its
// Execute, or one after a failing statement of a multi-statement Query ("SELECT 1/0;
// DEALLOCATE s1"). sluice drops the client's name only tentatively, and gives it back.
TEST_CASE("statement_relay_fsm: a DEALLOCATE that never runs keeps the name",
          "[pool][statements][relay_fsm]") {
  struct row {
    const char* what;
    std::string request;
  };
  const auto r = GENERATE(values<row>({
      {"extended, skipped", fe::execute("no portal") + fe::parse("", "DEALLOCATE s1") +
                                fe::bind("") + fe::execute() + fe::sync()},
      {"multi-statement, an earlier statement fails",
       fe::query("SELECT 1/0 AS boom; DEALLOCATE s1")},
  }));
  CAPTURE(r.what);
  world w;
  model_backend pg;
  w.prepare(0, 0, "s1", "SELECT 1");
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  const auto result = w.round_trip(0, 0, r.request);
  CHECK(describe_replies(result.to_client) == direct(r.request, pg));
  const std::string next = fe::bind("s1") + fe::execute() + fe::sync();
  const auto use = w.round_trip(0, 0, next);
  CHECK(describe_replies(use.to_client) == direct(next, pg));
}

// An extended-protocol DEALLOCATE answered by sluice belongs to the unnamed portal bound from
// it, for one Execute: a later Execute of the unnamed portal bound from a named statement whose
// query is empty gets PostgreSQL's own EmptyQueryResponse.
TEST_CASE("statement_relay_fsm: an extended DEALLOCATE's tag does not outlive its portal",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  w.prepare(0, 0, "s1", "SELECT 1");
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  const std::string request = fe::parse("", "DEALLOCATE s1") + fe::bind("") + fe::execute() +
                              fe::sync() + fe::parse("empty", "") + fe::bind("empty") +
                              fe::execute() + fe::sync();
  const auto r = w.round_trip(0, 0, request);
  CHECK(describe_replies(r.to_client) == direct(request, pg));
}

TEST_CASE("statement_relay_fsm: DEALLOCATE inside a multi-statement Query",
          "[pool][statements][relay_fsm]") {
  const bool on_server = GENERATE(true, false);
  CAPTURE(on_server);
  world w;
  model_backend pg;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 0, "t1", "SELECT 1");
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  const auto s = w.statement("SELECT 1");
  const int server = on_server ? 0 : 1;
  const auto request = fe::query("SELECT 2; DEALLOCATE s1; SELECT 3");
  const auto r = w.round_trip(0, server, request);
  // The server's statement is deallocated under its own name, prepared first where missing, so
  // the reply is PostgreSQL's own.
  CHECK(types(r.to_server) == (on_server ? "Q" : "PQ"));
  const auto sent = query_text(r.to_server);
  CHECK(sent.starts_with("SELECT 2; DEALLOCATE " + s->server_name + ";"));
  CHECK(sent.ends_with("SELECT 3"));
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK_FALSE(w.clients[0].contains("s1"));
  CHECK_FALSE(w.servers[server].pg.statements.contains(s->server_name));
  CHECK_FALSE(w.servers[server].cache.contains(s->id));
  // Another client's name for it is prepared again on its next use there.
  const auto other = w.round_trip(1, server, fe::bind("t1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "CPBES");
  CHECK(describe_replies(other.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: DEALLOCATE ALL or DISCARD ALL inside a multi-statement Query",
          "[pool][statements][relay_fsm]") {
  world w;
  model_backend pg;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 0, "t1", "SELECT 2");
  pg.receive(fe::parse("s1", "SELECT 1") + fe::sync());
  const auto request = fe::query("SELECT 1; DEALLOCATE ALL");
  const auto r = w.round_trip(0, 0, request);
  CHECK(to_hex(r.to_server) == to_hex(request));
  CHECK(describe_replies(r.to_client) == direct(request, pg));
  CHECK(w.clients[0].empty());
  CHECK(w.servers[0].cache.size() == 0);
  CHECK(w.cache_mismatch().empty());
  const auto other = w.round_trip(1, 0, fe::bind("t1") + fe::execute() + fe::sync());
  CHECK(types(other.to_server) == "PBES");
  CHECK(describe_replies(other.to_client) == "2 D C[SELECT 1] Z");
}

TEST_CASE("statement_relay_fsm: a server that lost a statement gets it prepared again",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  const auto s = w.statement("SELECT 1");
  // Someone deallocated it behind sluice's back.
  w.servers[0].pg.statements.erase(s->server_name);
  const auto lost = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(lost.to_client) == "EZ");
  CHECK_FALSE(w.servers[0].cache.contains(s->id));
  const auto next = w.round_trip(0, 0, fe::bind("s1") + fe::execute() + fe::sync());
  CHECK(types(next.to_server) == "PBES");
  CHECK(describe_replies(next.to_client) == "2 D C[SELECT 1] Z");
}

// --- Unnamed statements and portals -------------------------------------------------------------

TEST_CASE("statement_relay_fsm: unnamed statements and portals pass through unchanged",
          "[pool][statements][relay_fsm]") {
  world w;
  const std::string request = fe::parse("", "SELECT $1", {23}) + fe::describe('S', "") +
                              fe::bind("", {"5"}) + fe::describe('P', "") + fe::execute() +
                              fe::bind("", {"6"}, "named portal") + fe::execute("named portal") +
                              fe::close('P', "named portal") + fe::close('S', "") + fe::flush() +
                              fe::sync();
  auto l = w.attach(0, 0);
  const auto to_server = l.from_client(request);
  CHECK(to_hex(to_server) == to_hex(request));
  const auto replies = w.servers[0].pg.receive(to_server);
  const auto to_client = l.from_server(replies);
  CHECK(to_hex(to_client) == to_hex(replies));
  CHECK(describe_replies(to_client) == "1 t T 2 T D C[SELECT 1] 2 D C[SELECT 1] 3 3 Z");
  CHECK(l.idle());
  CHECK(w.clients[0].empty());
  CHECK(w.servers[0].cache.size() == 0);
  CHECK(w.counters.client_parses == 0);
}

// --- idle() -------------------------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: idle only once every reply is in",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(0, 1, "other", "SELECT 2");  // so that server 1 gets an injected Parse below

  struct row {
    const char* what;
    int server;
    std::string request;
  };
  const auto r = GENERATE(values<row>({
      {"Parse Sync", 0, fe::parse("s2", "SELECT 3") + fe::sync()},
      {"Parse answered by a Close", 0, fe::parse("s3", "SELECT 1") + fe::sync()},
      {"injected Parse", 1, fe::bind("s1") + fe::execute() + fe::sync()},
      {"raised error", 0, fe::bind("nope") + fe::execute() + fe::sync()},
      {"DEALLOCATE", 0, fe::query("DEALLOCATE s1")},
      {"two Syncs", 0, fe::bind("s1") + fe::sync() + fe::bind("s1") + fe::sync()},
      {"server error", 0, fe::parse("bad", "bad sql") + fe::bind("s1") + fe::sync()},
  }));
  CAPTURE(r.what);
  auto l = w.attach(0, r.server);
  CHECK(l.idle());
  const auto to_server = l.from_client(r.request);
  CHECK_FALSE(l.idle());
  const auto replies = split(w.servers[r.server].pg.receive(to_server));
  REQUIRE_FALSE(replies.empty());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    CAPTURE(i);
    CHECK_FALSE(l.idle());
    l.from_server(replies[i].wire);
  }
  CHECK(l.idle());
}

TEST_CASE("statement_relay_fsm: a batch without its Sync is idle once answered",
          "[pool][statements][relay_fsm]") {
  // The fsm owes the client nothing; whether the server may go is the release policy's call
  // (an open extended batch keeps it).
  world w;
  auto l = w.attach(0, 0);
  const auto to_server = l.from_client(fe::parse("s1", "SELECT 1") + fe::flush());
  CHECK(types(to_server) == "PH");
  CHECK_FALSE(l.idle());
  CHECK(describe_replies(l.from_server(w.servers[0].pg.receive(to_server))) == "1");
  CHECK(l.idle());
}

TEST_CASE("statement_relay_fsm: a failed batch is not idle until the client's Sync",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  auto l = w.attach(0, 0);
  // The server's error arrives before the client has sent its Sync.
  auto to_server = l.from_client(fe::bind("s1") + fe::execute("no portal") + fe::flush());
  CHECK(describe_replies(l.from_server(w.servers[0].pg.receive(to_server))) ==
        "2 E[34000 portal \"no portal\" does not exist]");
  CHECK_FALSE(l.idle());
  // The client's next messages are dropped, as the server would ignore them; the Sync passes.
  to_server = l.from_client(fe::parse("s2", "SELECT 2") + fe::bind("s1") + fe::execute());
  CHECK(to_server.empty());
  CHECK_FALSE(l.idle());
  CHECK_FALSE(w.clients[0].contains("s2"));
  to_server = l.from_client(fe::sync());
  CHECK(types(to_server) == "S");
  CHECK_FALSE(l.idle());
  CHECK(describe_replies(l.from_server(w.servers[0].pg.receive(to_server))) == "Z");
  CHECK(l.idle());
}

// PostgreSQL ignores every message but Sync while it skips a failed batch, a simple Query
// included (postgres.c: `if (ignore_till_sync && firstchar != EOF) continue;`). skip_to_sync
// stops at the first queued request that is not extended-protocol, so a Query the client
// pipelined into the failed batch stays queued: it takes the Sync's ReadyForQuery and the
// Sync's entry is left owing a reply that never comes. idle() stays false (the server is never
// released) and every later reply is matched one request late: a Parse answered by a no-op
// Close then reaches the client as CloseComplete instead of ParseComplete.
//   Parse x 'bad sql', Query 'SELECT 1', Sync → server: E, Z → fsm not idle.
// In pool/statement_relay_fsm.cpp, skip_to_sync: `is_extended(pending_.front().request)`
// should skip everything up to the first Sync ('S'), not only P/B/D/E/C.
TEST_CASE("statement_relay_fsm: a Query inside a failed batch is skipped like the server skips it",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(1, 0, "t1", "SELECT 1");  // on the server, for the no-op Close below
  model_backend pg;
  auto l = w.attach(0, 0);
  const std::string request = fe::parse("x", "bad sql") + fe::query("SELECT 1") + fe::sync();
  const auto first = w.exchange(l, 0, request);
  CHECK(describe_replies(first.to_client) == direct(request, pg));
  CHECK(l.idle());
  const std::string next = fe::parse("s1", "SELECT 1") + fe::sync();
  const auto second = w.exchange(l, 0, next);
  CHECK(describe_replies(second.to_client) == direct(next, pg));
  CHECK(l.idle());
}

// --- Asynchronous messages ----------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: asynchronous messages anywhere are forwarded in place",
          "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "s1", "SELECT 1");
  w.prepare(1, 1, "t1", "SELECT 2");
  // On server 1: a no-op Close for `a` (server has SELECT 2), an injected Parse for s1, a raised
  // error, DEALLOCATE: every kind of replaced and swallowed reply.
  const std::string request = fe::parse("a", "SELECT 2") + fe::bind("s1") + fe::execute() +
                              fe::sync() + fe::bind("nope") + fe::sync() +
                              fe::query("DEALLOCATE s1");
  const std::string expected =
      "1 2 D C[SELECT 1] Z E[26000 prepared statement \"nope\" does "
      "not exist] Z C[DEALLOCATE] Z";
  const auto async_message =
      GENERATE(be::notice("hello"), be::parameter_status("TimeZone", "UTC"), be::notification());
  // Anywhere before the last ReadyForQuery: that one ends the lease, and what the server says
  // afterwards reaches an idle server in the pool, not this client.
  const auto position = GENERATE(range(0, 10));
  CAPTURE(position);
  auto l = w.attach(0, 1);
  auto& pg = w.servers[1].pg;
  // Replies are delivered one message at a time, so that each verdict stands alone; the
  // client's held bytes go on as soon as they may.
  std::string to_server = l.from_client(request);
  std::string to_client;
  int delivered = 0;
  while (!to_server.empty()) {
    const auto replies = split(pg.receive(to_server));
    for (const auto& m : replies) {
      if (delivered++ == position) to_client += l.from_server(async_message);
      to_client += l.from_server(m.wire);
    }
    to_server = l.resume();
  }
  CHECK(delivered == 10);
  CHECK(l.idle());
  // The async message is there once, unchanged, and the rest is exactly as without it.
  const auto got = split(to_client);
  const auto it = std::find_if(got.begin(), got.end(),
                               [&](const message& m) { return m.wire == async_message; });
  REQUIRE(it != got.end());
  std::string without;
  for (const auto& m : got)
    if (&m != &*it) without += m.wire;
  CHECK(describe_replies(without) == expected);
}

// --- Counters -----------------------------------------------------------------------------------

TEST_CASE("statement_relay_fsm: counters", "[pool][statements][relay_fsm]") {
  world w;
  w.prepare(0, 0, "a", "SELECT 1");                            // client 1, server 1
  w.prepare(1, 0, "b", "SELECT 1");                            // client 2, saved 1
  w.round_trip(1, 1, fe::bind("b") + fe::sync());              // injected: server 2
  w.round_trip(0, 0, fe::parse("", "SELECT 1") + fe::sync());  // unnamed: not counted
  CHECK(w.counters.client_parses == 2);
  CHECK(w.counters.server_parses == 2);
  CHECK(w.counters.parses_saved == 1);
}

// Batches whose roll back does not depend on the order of its steps (see "a skipped batch rolls
// back newest first" and the tests around it): with a small cache, one statement message per
// batch; with a large one, any number, but no name parsed or closed twice.
TEST_CASE("statement_relay_fsm: random batches see what a direct PostgreSQL sends",
          "[pool][statements][relay_fsm][random]") {
  const auto seed = GENERATE(range<std::uint64_t>(1, 17));
  const auto capacity = GENERATE(as<std::size_t>{}, 1, 2, 3, 100);
  CAPTURE(seed, capacity);
  random_options options;
  options.capacity = capacity;
  options.max_statement_messages = capacity < 100 ? 1 : 100;
  options.distinct_parse_close_names = true;
  seeded_choices choices(seed);
  random_run run(choices, options);
  const auto problem = run.run(400);
  INFO(problem);
  CHECK(problem.empty());
  // The run took both paths.
  CHECK(run.server_batches > 100);
  CHECK(run.local_answers > 0);
}

// Anything goes: several statements per batch under a small cache, the same name parsed and
// closed in one batch, batches pipelined behind Syncs.
TEST_CASE("statement_relay_fsm: random batches and pipelines, unrestricted",
          "[pool][statements][relay_fsm][random]") {
  const auto seed = GENERATE(range<std::uint64_t>(1, 9));
  const auto mode = GENERATE(client_mode::waits, client_mode::pipelines);
  const auto capacity = GENERATE(as<std::size_t>{}, 2, 100);
  CAPTURE(seed, mode == client_mode::waits ? "waits" : "pipelines", capacity);
  random_options options;
  options.mode = mode;
  options.async_notices = seed % 2 == 0;
  options.capacity = capacity;
  seeded_choices choices(seed);
  random_run run(choices, options);
  const auto problem = run.run(400);
  INFO(problem);
  CHECK(problem.empty());
}

}  // namespace
}  // namespace sluice::pool
