"""ruby-pg (Debian's ruby-pg on libpq) through sluice in transaction mode, on a pool of one
server that every client shares: named prepared statements in failed transactions (issue 17
items 1 and 2) and DISCARD ALL (issue 13 item 8). ruby/pg_statements_check.rb runs one case
per test; the test_wire_* tests send the same messages byte by byte and require the replies
PostgreSQL itself sends.

What PostgreSQL does, and what these check:
- In a failed transaction ('E') everything but ROLLBACK/COMMIT gets 25P02, DEALLOCATE and Parse
  included, and nothing changes: a statement DEALLOCATEd there still exists after ROLLBACK, a
  statement Parsed there does not.
- DISCARD ALL drops the statements of the session that sends it, and no one else's.
"""

from __future__ import annotations

import driver_harness as dh
import harness
import pgwire
from driver_harness import DriverTestCase
from extended_wire import bind, describe, errors, exchange, execute, parse, query, rows, sync


class RubyPgStatementsTest(DriverTestCase):
    pool_size = 1  # every client shares one server: what one leaves there, the other meets
    daemon_per_test = True  # and each test starts with sluice's caches empty

    def ruby_check(self, case: str) -> str:
        output = self.run_check(["ruby", str(dh.RUBY_DIR / "pg_statements_check.rb"), case],
                                timeout=60)
        # The program provokes 26000 on purpose and reports any it did not expect as a FAIL
        # line; sluice's own log must not mention a missing or duplicate statement at all.
        if self.sluice is not None:
            self.assertEqual(dh.statement_errors(self.sluice.log_text()), [],
                             self.sluice_log_excerpt(40))
        self.assert_daemon_serving()
        return output

    # -- ruby-pg --------------------------------------------------------------------------

    def test_deallocate_in_failed_transaction(self):
        self.ruby_check("deallocate_in_failed_transaction")

    def test_parse_in_failed_transaction(self):
        self.ruby_check("parse_in_failed_transaction")

    def test_discard_all_drops_only_own_statements(self):
        self.ruby_check("discard_all")

    # -- the same, message by message -----------------------------------------------------

    def wire(self, port: int, password: str) -> pgwire.Connection:
        conn = pgwire.connect(harness.HOST, port, self.target_user, password, "postgres")
        self.addCleanup(conn.close)
        return conn

    def assert_same_replies_as_postgres(self, scenario) -> list:
        """Runs scenario(connect) against PostgreSQL itself and then through the target; the
        two transcripts of replies must be equal. Returns the transcript."""
        expected = scenario(lambda: self.wire(self.pg.port, self.upstream_password))
        actual = scenario(lambda: self.wire(self.target_port, self.target_password))
        self.assertEqual(actual, expected,
                         f"replies differ from PostgreSQL's\nsluice log:\n"
                         f"{self.sluice_log_excerpt(30)}")
        return actual

    def test_wire_deallocate_in_failed_transaction(self):
        def scenario(connect):
            a, b = connect(), connect()
            out = exchange(a, parse("s1", "SELECT 1 AS v"), parse("s2", "SELECT 2 AS v"), sync())
            out += exchange(b, parse("s1", "SELECT 1 AS v"), sync())
            for deallocate in ([query("DEALLOCATE s1")],
                               [parse("", "DEALLOCATE s1"), bind(""), execute(), sync()],
                               [query("DEALLOCATE ALL")],
                               [parse("", "DEALLOCATE ALL"), bind(""), execute(), sync()]):
                out += exchange(a, query("BEGIN"))
                out += exchange(a, query("SELECT 1/0"))
                out += exchange(a, *deallocate)
                out += exchange(a, query("ROLLBACK"))
                out += exchange(b, bind("s1"), execute(), sync())
                out += exchange(a, bind("s1"), execute(), bind("s2"), execute(), sync())
            return out

        out = self.assert_same_replies_as_postgres(scenario)
        self.assertEqual(errors(out), ["22012", "25P02"] * 4)
        self.assertEqual(rows(out), [("1",), ("1",), ("2",)] * 4)

    def test_wire_parse_in_failed_transaction(self):
        def scenario(connect):
            holder, a = connect(), connect()
            out = exchange(holder, parse("held", "SELECT $1::int * 10 AS v"), sync())
            out += exchange(a, query("BEGIN"))
            out += exchange(a, query("SELECT 1/0"))
            # The SQL a server holds, alone and in a pipeline, then new SQL, then SQL PREPARE.
            out += exchange(a, parse("q1", "SELECT $1::int * 10 AS v"), sync())
            out += exchange(a, parse("q2", "SELECT $1::int * 10 AS v"), describe("S", "q2"),
                            bind("q2", ["1"]), execute(), sync())
            out += exchange(a, parse("q3", "SELECT 3 AS v"), sync())
            out += exchange(a, query("PREPARE q4 AS SELECT 4"))
            out += exchange(a, query("ROLLBACK"))
            for name in ("q1", "q2", "q3"):
                out += exchange(a, bind(name, ["1"] if name != "q3" else []), execute(), sync())
            out += exchange(a, query("EXECUTE q4"))
            out += exchange(holder, bind("held", ["2"]), execute(), sync())
            out += exchange(a, parse("q1", "SELECT $1::int * 10 AS v"), bind("q1", ["5"]),
                            execute(), sync())
            return out

        out = self.assert_same_replies_as_postgres(scenario)
        self.assertEqual(errors(out),
                         ["22012"] + ["25P02"] * 4 + ["26000"] * 4)
        self.assertEqual(rows(out), [("20",), ("50",)])

    def test_wire_discard_all(self):
        held = ("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT 1 AS v'")

        def scenario(connect):
            a, b = connect(), connect()
            out = []
            for conn in (a, b):
                out += exchange(conn, parse("s1", "SELECT 1 AS v"), sync())
            out += exchange(a, query("DISCARD ALL"))
            # b's statement is still prepared on its server (sluice's only one): b's own on
            # PostgreSQL, the one sluice shares through sluice; not dropped and made again.
            out += exchange(b, query(held))
            out += exchange(a, bind("s1"), execute(), sync())
            out += exchange(b, bind("s1"), execute(), sync())
            out += exchange(b, describe("S", "s1"), sync())
            out += exchange(a, parse("s1", "SELECT 'again' AS v"), bind("s1"), execute(), sync())
            out += exchange(b, bind("s1"), execute(), sync())
            return out

        out = self.assert_same_replies_as_postgres(scenario)
        self.assertEqual(errors(out), ["26000"])
        self.assertEqual(rows(out), [("1",), ("1",), ("again",), ("1",)])

if __name__ == "__main__":
    harness.main()
