// lease_fsm on its own: what it forwards, when it ends a lease, the limits it measures and what a
// vanished client leaves behind. Bytes are fed the way sockets deliver them: split at every
// boundary, several messages at once, and a message's rest only after its start. Server replies
// are scripted with the wire builders; the prepared-statement side has its own tests
// (test_statement_relay_fsm.cpp), which also run through lease_fsm.
#include "pool/lease_fsm.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "pool/statement_registry.hpp"
#include "tests/pool/fake_clock.hpp"
#include "tests/pool/wire_fixtures.hpp"

namespace sluice::pool {
namespace {

using namespace testing;

std::string flatten(const protocol::output_segments& out) {
  std::string s;
  out.for_each([&](const char* data, std::size_t size) { s.append(data, size); });
  return s;
}

// One lease and the buffers a driver would keep for it: bytes are appended as they "arrive",
// the fsm is offered everything buffered, and what it consumed is dropped.
class lease_harness {
 public:
  explicit lease_harness(lease_fsm::settings settings = {}, bool with_statements = false)
      : settings_(settings) {
    std::optional<statement_relay_fsm> statements;
    if (with_statements)
      statements.emplace(
          client_statements_, cache_,
          [this](std::string_view q, std::span<const std::uint32_t> t) {
            return registry_.intern(q, t);
          },
          counters_);
    fsm = std::make_unique<lease_fsm>(settings_, server_session_view{server_params, tx_status},
                                      client_params, std::move(statements), clock.now);
  }

  // Client bytes arrive; returns what the server is sent.
  std::string client(std::string_view bytes) {
    client_in_ += bytes;
    protocol::output_segments out;
    const auto scanned = fsm->on_client_bytes(span_of(client_in_), out, clock.now);
    client_violation = scanned.violation;
    auto sent = flatten(out);
    client_in_.erase(0, scanned.consumed);
    return sent;
  }
  // Server bytes arrive; returns what the client is sent.
  std::string server(std::string_view bytes) {
    server_in_ += bytes;
    protocol::output_segments out;
    const auto scanned = fsm->on_server_bytes(span_of(server_in_), out, clock.now);
    server_violation = scanned.violation;
    auto sent = flatten(out);
    server_in_.erase(0, scanned.consumed);
    return sent;
  }
  const std::string& client_buffered() const { return client_in_; }
  const std::string& server_buffered() const { return server_in_; }

  fake_clock clock;
  session_params server_params;
  char tx_status = 'I';
  shared_session_params client_params;
  std::unique_ptr<lease_fsm> fsm;
  bool client_violation = false;
  bool server_violation = false;

 private:
  lease_fsm::settings settings_;
  client_statement_map client_statements_;
  server_statement_cache cache_{16};
  statement_registry registry_;
  statement_counters counters_;
  std::string client_in_, server_in_;
};

std::string simple_select_replies(char status = 'I') {
  return be::row_description() + be::data_row() + be::command_complete("SELECT 1") +
         be::ready(status);
}

lease_fsm::settings session_mode() {
  return {.mode = pool_mode::session};
}

// --- Forwarding and byte boundaries -------------------------------------------------------------

TEST_CASE("lease_fsm: bytes pass through unchanged, split at every boundary", "[pool][lease_fsm]") {
  const auto with_statements = GENERATE(false, true);
  CAPTURE(with_statements);
  const std::string request = fe::query("SELECT 1") + fe::parse("", "SELECT $1", {23}) +
                              fe::bind("", {"7"}) + fe::describe('P', "") + fe::execute() +
                              fe::sync();
  const std::string replies = simple_select_replies() + be::parse_complete() + be::bind_complete() +
                              be::row_description() + be::data_row() +
                              be::command_complete("SELECT 1") + be::ready();
  for (std::size_t cut = 0; cut <= request.size(); ++cut) {
    CAPTURE(cut);
    lease_harness h({}, with_statements);
    auto sent = h.client(request.substr(0, cut));
    sent += h.client(request.substr(cut));
    CHECK(sent == request);
    CHECK(h.client_buffered().empty());
    CHECK_FALSE(h.fsm->client_must_be_read());  // complete: only the server can move on
  }
  for (std::size_t cut = 0; cut <= replies.size(); ++cut) {
    CAPTURE(cut);
    lease_harness h({}, with_statements);
    REQUIRE(h.client(request) == request);
    auto got = h.server(replies.substr(0, cut));
    CHECK(h.fsm->ended() == (cut == replies.size()));  // only once the last ReadyForQuery is in
    got += h.server(replies.substr(cut));
    CHECK(got == replies);
    CHECK(h.fsm->ended());
    CHECK(h.fsm->end() == lease_end::released);
  }
}

TEST_CASE("lease_fsm: a large streamed message is forwarded as it arrives", "[pool][lease_fsm]") {
  lease_harness h;
  const std::string big(100'000, 'x');
  const auto request = fe::query("SELECT '" + big + "'");
  // Without the statement fsm a Query is streamed: its first bytes go on before the rest.
  CHECK(h.client(request.substr(0, 1000)) == request.substr(0, 1000));
  CHECK(h.fsm->link().message_partially_sent);
  CHECK(h.fsm->client_must_be_read());  // the server waits for the rest
  CHECK(h.client(request.substr(1000)) == request.substr(1000));
  CHECK_FALSE(h.fsm->link().message_partially_sent);
  CHECK_FALSE(h.fsm->client_must_be_read());
  const std::string rows(50'000, 'r');
  // A server message that needs no inspection streams too, in whatever pieces it arrives.
  const auto huge_row = fe::query(rows);  // any typed message will do as an opaque one
  std::string got = h.server(huge_row.substr(0, 10));
  got += h.server(huge_row.substr(10));
  CHECK(got == huge_row);
}

TEST_CASE("lease_fsm: a message that must be seen whole waits for its rest", "[pool][lease_fsm]") {
  lease_harness h;
  REQUIRE(h.client(fe::query("SELECT 1")) == fe::query("SELECT 1"));
  const auto ready = be::ready();
  CHECK(h.server(ready.substr(0, 3)).empty());
  CHECK(h.fsm->server_read_size(span_of(h.server_buffered())) >= 16384);
  CHECK(h.server(ready.substr(3)) == ready);
  CHECK(h.fsm->ended());
  // An inspected message larger than a read chunk asks for all that is missing.
  lease_harness big;
  REQUIRE(!big.client(fe::query("SELECT 1")).empty());
  const auto error = be::error("XX000", std::string(40'000, 'e'));
  CHECK(big.server(error.substr(0, 100)).empty());
  CHECK(big.fsm->server_read_size(span_of(big.server_buffered())) == error.size() - 100);
}

// --- When the lease ends --------------------------------------------------------------------

TEST_CASE("lease_fsm: a transaction keeps the server until it ends", "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::query("BEGIN"));
  h.server(be::command_complete("BEGIN") + be::ready('T'));
  CHECK_FALSE(h.fsm->ended());
  CHECK(h.tx_status == 'T');
  CHECK(h.fsm->client_must_be_read());  // between statements: the client must say more
  h.client(fe::query("SELECT 1/0"));
  h.server(be::error("22012", "division by zero") + be::ready('E'));
  CHECK_FALSE(h.fsm->ended());  // a failed transaction still needs its ROLLBACK
  h.client(fe::query("ROLLBACK"));
  h.server(be::command_complete("ROLLBACK") + be::ready('I'));
  CHECK(h.fsm->ended());
  CHECK(h.fsm->end() == lease_end::released);
  CHECK(h.tx_status == 'I');
}

TEST_CASE("lease_fsm: pipelined Syncs keep the server until the last is answered",
          "[pool][lease_fsm]") {
  lease_harness h;
  const auto batch = fe::bind("") + fe::execute() + fe::sync();
  h.client(batch + batch + batch);
  CHECK(h.fsm->link().outstanding_syncs == 3);
  const auto answer = be::bind_complete() + be::command_complete("UPDATE 1") + be::ready();
  h.server(answer + answer);
  CHECK_FALSE(h.fsm->ended());
  h.server(answer);
  CHECK(h.fsm->ended());
}

TEST_CASE("lease_fsm: a Flush keeps the server for the Bind that follows", "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::parse("", "SELECT $1") + fe::describe('S', "") + fe::flush());
  CHECK(h.fsm->link().extended_batch_open);
  CHECK(h.fsm->client_must_be_read());
  h.server(be::parse_complete() + be::parameter_description({23}) + be::row_description());
  CHECK_FALSE(h.fsm->ended());
  h.client(fe::bind("", {"1"}) + fe::execute() + fe::sync());
  CHECK_FALSE(h.fsm->link().extended_batch_open);
  h.server(be::bind_complete() + be::data_row() + be::command_complete("SELECT 1") + be::ready());
  CHECK(h.fsm->ended());
}

TEST_CASE("lease_fsm: COPY FROM STDIN reads the client until the copy is done",
          "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::query("COPY t FROM STDIN"));
  CHECK_FALSE(h.fsm->client_must_be_read());
  h.server(be::copy_in_response());
  CHECK(h.fsm->link().copy_in_progress);
  CHECK(h.fsm->client_must_be_read());  // the server waits for the data
  // A Sync inside COPY is ignored by PostgreSQL and must not be counted.
  h.client(fe::copy_data("1\n") + fe::sync() + fe::copy_done());
  CHECK_FALSE(h.fsm->link().copy_in_progress);
  CHECK(h.fsm->link().outstanding_syncs == 1);
  h.server(be::command_complete("COPY 1") + be::ready());
  CHECK(h.fsm->ended());
}

TEST_CASE("lease_fsm: session mode never releases", "[pool][lease_fsm]") {
  lease_harness h(session_mode());
  h.client(fe::query("SELECT 1"));
  h.server(simple_select_replies());
  CHECK_FALSE(h.fsm->ended());
  CHECK(h.fsm->client_must_be_read());
}

TEST_CASE("lease_fsm: nothing of the client's is taken once the lease has ended",
          "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::query("SELECT 1"));
  h.server(simple_select_replies());
  REQUIRE(h.fsm->ended());
  // The next request stays buffered for the session, and the next lease.
  CHECK(h.client(fe::query("SELECT 2")).empty());
  CHECK(h.client_buffered() == fe::query("SELECT 2"));
}

TEST_CASE("lease_fsm: the release point stops the server scan", "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::query("SELECT 1"));
  // A notice that arrives with the ReadyForQuery belongs to the idle server, not this lease.
  const auto notice = be::notice("later");
  CHECK(h.server(simple_select_replies() + notice) == simple_select_replies());
  CHECK(h.server_buffered() == notice);
}

TEST_CASE("lease_fsm: Terminate ends the lease and is not forwarded", "[pool][lease_fsm]") {
  lease_harness h;
  std::string terminate;
  protocol::append_terminate(terminate);
  CHECK(h.client(fe::query("SELECT 1") + terminate) == fe::query("SELECT 1"));
  CHECK(h.client_buffered().empty());
  CHECK(h.fsm->ended());
  CHECK(h.fsm->end() == lease_end::client_gone);
}

TEST_CASE("lease_fsm: a bad length from either side ends the lease", "[pool][lease_fsm]") {
  const std::string bad = std::string("Q") + std::string("\x00\x00\x00\x02", 4);
  lease_harness from_client;
  CHECK(from_client.client(fe::query("SELECT 1") + bad) == fe::query("SELECT 1"));
  CHECK(from_client.client_violation);
  CHECK(from_client.fsm->end() == lease_end::client_violation);

  lease_harness from_server;
  from_server.client(fe::query("SELECT 1"));
  from_server.server(std::string("Z") + std::string("\x00\x00\x00\x01", 4));
  CHECK(from_server.server_violation);
  CHECK(from_server.fsm->end() == lease_end::server_gone);
}

TEST_CASE("lease_fsm: the first reason to end sticks", "[pool][lease_fsm]") {
  lease_harness h;
  h.fsm->end_with(lease_end::client_gone);
  h.fsm->end_with(lease_end::server_gone);
  CHECK(h.fsm->end() == lease_end::client_gone);
}

// --- What the server reports -----------------------------------------------------------------

TEST_CASE("lease_fsm: ParameterStatus updates both sessions; FATAL is noted", "[pool][lease_fsm]") {
  lease_harness h;
  h.client(fe::query("SET TimeZone = 'UTC'"));
  h.server(be::parameter_status("TimeZone", "UTC") + be::command_complete("SET"));
  CHECK(h.server_params.get("TimeZone") == "UTC");
  CHECK(h.client_params.get().get("TimeZone") == "UTC");
  CHECK_FALSE(h.fsm->server_reported_fatal());
  std::string fatal;
  protocol::append_error_response(fatal, {.severity = "FATAL",
                                          .sqlstate = "57P01",
                                          .message = "terminating connection",
                                          .detail = {},
                                          .hint = {}});
  h.server(fatal);
  CHECK(h.fsm->server_reported_fatal());
}

// --- Limits --------------------------------------------------------------------------------------

// "none", "cancel", or "end:<reason>" for one limit check.
std::string describe(const lease_fsm::limit_check& check) {
  using action = lease_fsm::limit_check::action;
  switch (check.what) {
    case action::none:
      return "none";
    case action::cancel_query:
      return "cancel";
    case action::end:
      switch (check.end) {
        case lease_end::query_timeout:
          return "end:query_timeout";
        case lease_end::idle_in_transaction_timeout:
          return "end:idle_in_transaction_timeout";
        case lease_end::client_idle_timeout:
          return "end:client_idle_timeout";
        default:
          return "end:other";
      }
  }
  return "?";
}

TEST_CASE("lease_fsm: query_timeout counts from the request that made the link busy",
          "[pool][lease_fsm][limits]") {
  lease_harness h({.limits = {.query_timeout = std::chrono::milliseconds(100)}});
  CHECK(h.fsm->has_limits());
  CHECK(h.fsm->limit_check_interval() == std::chrono::milliseconds(25));
  h.clock.advance(std::chrono::seconds(5));  // idle time does not count
  h.client(fe::query("SELECT pg_sleep(1)"));
  h.clock.advance(std::chrono::milliseconds(100));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "none");
  h.clock.advance(std::chrono::milliseconds(1));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "cancel");
}

// query_timeout cancels the query, as statement_timeout would, and the session goes on: the
// client gets 57014 saying why, and its next request reaches the server only once the cancel
// has, so the cancel cannot hit it.
TEST_CASE("lease_fsm: query_timeout cancels the query and the session goes on",
          "[pool][lease_fsm][limits]") {
  lease_harness h({.limits = {.query_timeout = std::chrono::milliseconds(100)}});
  h.client(fe::query("SELECT pg_sleep(10)"));
  h.clock.advance(std::chrono::milliseconds(150));
  REQUIRE(describe(h.fsm->check_limits(h.clock.now)) == "cancel");
  h.fsm->begin_query_cancel(h.clock.now);
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "none");  // sent once
  // Pipelined behind it, the next request waits for the cancel's delivery.
  CHECK(h.client(fe::query("SELECT 2")).empty());
  CHECK(h.fsm->client_blocked());
  h.fsm->query_cancel_delivered();
  const auto replies =
      be::error("57014", "canceling statement due to user request") + be::ready('I');
  const auto got = h.server(replies);
  CHECK(describe_replies(got) == "E[57014 canceling statement due to query_timeout] Z");
  CHECK(h.fsm->ended());  // released: the server is fine
  CHECK(h.fsm->end() == lease_end::released);
}

TEST_CASE("lease_fsm: a query the cancel does not stop costs its server",
          "[pool][lease_fsm][limits]") {
  lease_harness h({.limits = {.query_timeout = std::chrono::milliseconds(2000)}});
  h.client(fe::query("SELECT stuck()"));
  h.clock.advance(std::chrono::milliseconds(2001));
  REQUIRE(describe(h.fsm->check_limits(h.clock.now)) == "cancel");
  h.fsm->begin_query_cancel(h.clock.now);
  h.fsm->query_cancel_delivered();
  h.clock.advance(std::chrono::milliseconds(2000));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "none");
  h.clock.advance(std::chrono::milliseconds(1));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "end:query_timeout");
}

TEST_CASE("lease_fsm: only the cancelled query's 57014 is reworded", "[pool][lease_fsm][limits]") {
  lease_harness h({.limits = {.query_timeout = std::chrono::seconds(60)}});
  h.client(fe::query("SELECT 1"));
  // A cancel the client sent itself keeps PostgreSQL's words.
  const auto own = be::error("57014", "canceling statement due to user request") + be::ready();
  CHECK(describe_replies(h.server(own)) == "E[57014 canceling statement due to user request] Z");
}

TEST_CASE("lease_fsm: idle_transaction_timeout counts from the last ReadyForQuery",
          "[pool][lease_fsm][limits]") {
  lease_harness h({.limits = {.idle_transaction_timeout = std::chrono::seconds(1)}});
  h.client(fe::query("BEGIN"));
  h.clock.advance(std::chrono::seconds(3));  // the server's own time does not count
  h.server(be::command_complete("BEGIN") + be::ready('T'));
  h.clock.advance(std::chrono::milliseconds(1000));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "none");
  h.clock.advance(std::chrono::milliseconds(1));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "end:idle_in_transaction_timeout");
}

TEST_CASE("lease_fsm: client_idle_timeout applies outside a transaction, in session mode",
          "[pool][lease_fsm][limits]") {
  auto settings = session_mode();
  settings.limits.client_idle_timeout = std::chrono::seconds(2);
  lease_harness h(settings);
  CHECK(h.fsm->limit_check_interval() == std::chrono::milliseconds(500));
  h.client(fe::query("SELECT 1"));
  h.server(simple_select_replies());
  h.clock.advance(std::chrono::seconds(2));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "none");
  h.clock.advance(std::chrono::milliseconds(1));
  CHECK(describe(h.fsm->check_limits(h.clock.now)) == "end:client_idle_timeout");
}

TEST_CASE("lease_fsm: the limit check interval stays within bounds", "[pool][lease_fsm][limits]") {
  lease_harness tiny({.limits = {.query_timeout = std::chrono::milliseconds(10)}});
  CHECK(tiny.fsm->limit_check_interval() == std::chrono::milliseconds(20));
  lease_harness huge({.limits = {.query_timeout = std::chrono::hours(1)}});
  CHECK(huge.fsm->limit_check_interval() == std::chrono::milliseconds(1000));
  lease_harness none;
  CHECK_FALSE(none.fsm->has_limits());
}

// --- What a vanished client leaves behind -----------------------------------------------------

TEST_CASE("lease_fsm: the exit plan follows what is in flight", "[pool][lease_fsm]") {
  SECTION("nothing in flight: reuse") {
    lease_harness h;
    const auto plan = h.fsm->plan_exit();
    CHECK_FALSE(plan.close);
    CHECK_FALSE(plan.rollback);
    CHECK_FALSE(plan.discard);
  }
  SECTION("a request running: cancel, then close") {
    lease_harness h;
    h.client(fe::query("SELECT pg_sleep(10)"));
    const auto plan = h.fsm->plan_exit();
    CHECK(plan.close);
    CHECK(plan.cancel_first);
  }
  SECTION("a batch without its Sync: close, nothing to cancel") {
    lease_harness h;
    h.client(fe::parse("", "SELECT 1"));
    const auto plan = h.fsm->plan_exit();
    CHECK(plan.close);
    CHECK_FALSE(plan.cancel_first);
  }
  SECTION("half a message sent: close") {
    lease_harness h;
    h.client(fe::query("SELECT 1").substr(0, 7));
    CHECK(h.fsm->plan_exit().close);
  }
  SECTION("inside a transaction: roll back") {
    lease_harness h;
    h.client(fe::query("BEGIN"));
    h.server(be::command_complete("BEGIN") + be::ready('T'));
    const auto plan = h.fsm->plan_exit();
    CHECK_FALSE(plan.close);
    CHECK(plan.rollback);
  }
  SECTION("session mode: discard") {
    lease_harness h(session_mode());
    h.client(fe::query("SELECT 1"));
    h.server(simple_select_replies());
    const auto plan = h.fsm->plan_exit();
    CHECK_FALSE(plan.close);
    CHECK(plan.discard);
  }
}

// --- Statistics ----------------------------------------------------------------------------------

TEST_CASE("lease_fsm: counts queries, transactions and their times as the clock says",
          "[pool][lease_fsm][stats]") {
  lease_harness h(session_mode());
  h.client(fe::query("BEGIN"));
  h.clock.advance(std::chrono::milliseconds(2));
  h.server(be::command_complete("BEGIN") + be::ready('T'));
  h.clock.advance(std::chrono::milliseconds(10));  // the client thinks: a transaction's time
  h.client(fe::query("SELECT 1"));
  h.clock.advance(std::chrono::milliseconds(3));
  h.server(simple_select_replies('T'));
  h.client(fe::query("COMMIT"));
  h.clock.advance(std::chrono::milliseconds(1));
  h.server(be::command_complete("COMMIT") + be::ready('I'));
  const auto& c = h.fsm->counters();
  CHECK(c.totals.queries == 3);
  CHECK(c.totals.query_us == 6'000);
  CHECK(c.totals.transactions == 1);
  CHECK(c.totals.transaction_us == 16'000);
  CHECK(c.query_times.count == 3);
  CHECK(c.transaction_times.count == 1);
  CHECK(c.transaction_times.sum_us == 16'000);
  CHECK(c.totals.bytes_received ==
        fe::query("BEGIN").size() + fe::query("SELECT 1").size() + fe::query("COMMIT").size());
  CHECK(c.totals.bytes_sent == (be::command_complete("BEGIN") + be::ready('T')).size() +
                                   simple_select_replies('T').size() +
                                   (be::command_complete("COMMIT") + be::ready('I')).size());
}

TEST_CASE("lease_fsm: an extended batch is one query, from its first message to its Sync's answer",
          "[pool][lease_fsm][stats]") {
  lease_harness h;
  h.client(fe::parse("", "SELECT 1"));
  h.clock.advance(std::chrono::milliseconds(5));  // the rest of the batch arrives later
  h.client(fe::bind("") + fe::execute() + fe::sync());
  h.clock.advance(std::chrono::milliseconds(1));
  h.server(be::parse_complete() + be::bind_complete() + be::data_row() +
           be::command_complete("SELECT 1") + be::ready());
  CHECK(h.fsm->ended());
  const auto counted = h.fsm->take_counters();
  CHECK(counted.totals.queries == 1);
  CHECK(counted.totals.query_us == 6'000);
  CHECK(counted.totals.transactions == 1);
  CHECK(h.fsm->counters().totals.queries == 0);  // handed over
  CHECK(h.fsm->counters().totals.bytes_sent == 0);
}

TEST_CASE("lease_fsm: pipelined requests count once, when the last is answered",
          "[pool][lease_fsm][stats]") {
  lease_harness h;
  h.client(fe::query("SELECT 1") + fe::query("SELECT 1"));
  h.server(simple_select_replies());
  CHECK(h.fsm->counters().totals.queries == 0);  // a reply is still owed
  h.server(simple_select_replies());
  CHECK(h.fsm->counters().totals.queries == 1);
  CHECK(h.fsm->counters().totals.transactions == 1);
}

TEST_CASE("lease_fsm: errors relayed are counted by SQLSTATE class", "[pool][lease_fsm][stats]") {
  lease_harness h;
  h.client(fe::query("SELEC 1"));
  h.server(be::error("42601", "syntax error") + be::ready());
  const auto& c = h.fsm->counters();
  REQUIRE(c.error_classes.size() == 1);
  CHECK(sqlstate_class_name(c.error_classes[0]) == "42");
  CHECK(c.totals.queries == 1);
}

}  // namespace
}  // namespace sluice::pool
