"""Named prepared statements through sluice in transaction mode, message by message.

Each scenario runs twice, once against PostgreSQL directly and once through sluice, and the
two transcripts of replies (types, rows, command tags, SQLSTATEs and messages) must be equal:
sluice renames statements per server and replays Parses, and none of that may show. Most
scenarios use a pool of one server, so every client shares it; the Describe-on-another-backend
scenario uses a second daemon with two.
"""

from __future__ import annotations

import random
import threading

import driver_harness as dh
import harness
import pgwire
from driver_harness import DriverTestCase
from extended_wire import (bind, close, describe, errors, exchange, execute, flush, kinds, parse,
                           query, read_replies, rows, send, sync)

INT4 = 23


class StatementSemanticsTest(DriverTestCase):
    # Each test gets a fresh daemon with a pool of one server, so every client shares it.
    daemon_per_test = True
    pool_size = 1

    def setUp(self):
        super().setUp()
        self.conns = []
        self.daemons = [self.sluice]

    def tearDown(self):
        for conn in self.conns:
            conn.close()
        for daemon in self.daemons[1:]:
            daemon.stop()
        super().tearDown()

    # -- connections ----------------------------------------------------------------------

    def _track(self, conn):
        self.conns.append(conn)
        return conn

    def direct(self):
        """PostgreSQL itself, as the same role sluice logs in as."""
        return self._track(self.pg.connect(self.upstream_user, self.upstream_password))

    def client(self):
        """Through sluice (pool of one server), or PostgreSQL under SLUICE_DRIVERS_DIRECT."""
        return self._track(pgwire.connect(harness.HOST, self.target_port, self.target_user,
                                          self.target_password, "postgres"))

    def pool_of_two(self):
        """A second daemon with a pool of two servers: returns a connect function for it."""
        port = self.target_port
        if not dh.DIRECT:
            daemon = self.launch_tx_sluice(2)
            self.daemons.append(daemon)
            port = daemon.port
        return lambda: self._track(pgwire.connect(
            harness.HOST, port, self.target_user, self.target_password, "postgres"))

    def assert_same_as_postgres(self, scenario):
        """Runs scenario(connect) against PostgreSQL and through sluice; the transcripts must
        match. Returns the transcript."""
        expected = scenario(self.direct)
        actual = scenario(self.client)
        if actual != expected:
            diff = [f"{i}: postgres={e!r}\n{' ' * len(str(i))}  sluice  ={a!r}"
                    for i, (e, a) in enumerate(zip(expected, actual)) if e != a]
            self.fail(f"transcripts differ (postgres {len(expected)} replies, sluice "
                      f"{len(actual)}); first differences:\n" + "\n".join(diff[:10]) +
                      f"\npostgres: {expected}\nsluice:   {actual}\n"
                      f"sluice log:\n{self.sluice_log_excerpt(30)}")
        self.assert_daemons_alive()
        return actual

    def assert_daemons_alive(self):
        for daemon in self.daemons:
            if daemon is not None:
                self.assertTrue(daemon.alive(), f"sluice died; log:\n{daemon.log_tail()}")

    # -- scenarios ------------------------------------------------------------------------

    def test_same_name_different_sql_per_client(self):
        """asyncpg's counter starts at 1 in every process: two clients' "s1" are different
        statements, and each keeps getting its own results from the one shared server."""
        def scenario(connect):
            a, b, c = connect(), connect(), connect()
            out = exchange(a, parse("s1", "SELECT 'a:' || $1::text AS v"), sync())
            out += exchange(b, parse("s1", "SELECT 1000 + $1::int AS v"), sync())
            out += exchange(c, parse("s1", "SELECT 'a:' || $1::text AS v"), sync())  # same as a
            for i in range(15):
                for conn in (a, b, c):
                    out += exchange(conn, bind("s1", [str(i)]), execute(), sync())
            # Pipelined from both before either reads.
            send(a, bind("s1", ["x"]), execute(), sync())
            send(b, bind("s1", ["7"]), execute(), sync())
            out += read_replies(a) + read_replies(b)
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(rows(out)[:3], [("a:0",), ("1000",), ("a:0",)])
        self.assertEqual(rows(out)[-2:], [("a:x",), ("1007",)])
        self.assertEqual(errors(out), [])

    def test_same_name_different_sql_concurrently(self):
        """Six clients at once, each with its own "s1" and "s2", on one server."""
        failures: list[str] = []

        def worker(n: int):
            rng = random.Random(n)
            try:
                conn = self.client()
                out = exchange(conn, parse("s1", f"SELECT $1::int * {n + 2} AS v"),
                               parse("s2", f"SELECT 'c{n}-' || $1::text AS v"), sync())
                if kinds(out) != "11Z":
                    failures.append(f"client {n}: Parse got {out}")
                    return
                for i in range(60):
                    if rng.random() < 0.5:
                        got = exchange(conn, bind("s1", [str(i)]), execute(), sync())
                        want = [("2",), ("D", (str(i * (n + 2)),)), ("C", "SELECT 1"), ("Z", "I")]
                    else:
                        got = exchange(conn, bind("s2", [str(i)]), execute(), sync())
                        want = [("2",), ("D", (f"c{n}-{i}",)), ("C", "SELECT 1"), ("Z", "I")]
                    if got != want:
                        failures.append(f"client {n} round {i}: got {got}, want {want}")
                        return
                    if i % 20 == 19:  # drop and re-create s2 with other SQL, then back
                        got = exchange(conn, close("S", "s2"),
                                       parse("s2", f"SELECT 'c{n}-' || $1::text AS v"), sync())
                        if got != [("3",), ("1",), ("Z", "I")]:
                            failures.append(f"client {n}: Close/Parse got {got}")
                            return
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(f"client {n}: {exc!r}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertEqual(failures, [], f"sluice log:\n{self.sluice_log_excerpt(30)}")
        self.assert_daemons_alive()

    def test_parse_of_a_name_in_use_is_42P05(self):
        def scenario(connect):
            a, b = connect(), connect()
            out = exchange(a, parse("s1", "SELECT 41 + $1::int AS v"), sync())
            out += exchange(b, parse("s1", "SELECT 'other' AS v"), sync())
            # Same SQL again, then other SQL: both 42P05; what follows up to Sync is skipped.
            out += exchange(a, parse("s1", "SELECT 41 + $1::int AS v"), bind("s1", ["1"]),
                            execute(), sync())
            out += exchange(a, parse("s1", "SELECT 'changed' AS v"), sync())
            out += exchange(a, bind("s1", ["1"]), execute(), sync())  # still the first SQL
            out += exchange(b, bind("s1"), execute(), sync())
            # Inside a transaction block: the error aborts it, ROLLBACK recovers.
            out += exchange(a, query("BEGIN"))
            out += exchange(a, parse("s1", "SELECT 1"), sync())
            out += exchange(a, query("SELECT 1"))
            out += exchange(a, query("ROLLBACK"))
            out += exchange(a, bind("s1", ["2"]), execute(), sync())
            # A pipeline: the first Parse works, the duplicate fails, the rest is skipped.
            out += exchange(a, parse("s2", "SELECT 2"), parse("s2", "SELECT 2"),
                            parse("s3", "SELECT 3"), sync())
            out += exchange(a, bind("s2"), execute(), sync())
            out += exchange(a, bind("s3"), execute(), sync())
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["42P05", "42P05", "42P05", "25P02", "42P05", "26000"])
        self.assertIn(("D", ("42",)), out)
        self.assertIn(("D", ("other",)), out)
        self.assertIn(("D", ("43",)), out)

    def test_unknown_name_is_26000_and_skips_to_sync(self):
        def scenario(connect):
            a = connect()
            out = exchange(a, bind("nosuch"), execute(), sync())
            out += exchange(a, describe("S", "nosuch"), sync())
            # Everything after the error up to Sync is ignored, including a good Parse.
            out += exchange(a, bind("nosuch"), parse("s9", "SELECT 9"), bind("s9"), execute(),
                            sync())
            out += exchange(a, bind("s9"), execute(), sync())  # so s9 does not exist
            out += exchange(a, describe("P", "noportal"), sync())
            out += exchange(a, execute("noportal"), sync())
            out += exchange(a, close("S", "nosuch"), close("P", "noportal"), sync())
            out += exchange(a, parse("s9", "SELECT 9"), bind("s9"), execute(), sync())
            out += exchange(a, query("SELECT 'still here'"))
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["26000", "26000", "26000", "26000", "34000", "34000"])
        self.assertEqual(rows(out), [("9",), ("still here",)])

    def test_failed_parse_leaves_no_trace(self):
        def scenario(connect):
            a = connect()
            out = exchange(a, parse("s1", "SELEC 1"), sync())
            out += exchange(a, bind("s1"), execute(), sync())
            out += exchange(a, parse("s1", "SELECT 'good' AS v"), bind("s1"), execute(), sync())
            out += exchange(a, parse("s2", "SELECT * FROM no_such_table"), sync())
            out += exchange(a, parse("s2", "SELECT 2 AS v"), bind("s2"), execute(), sync())
            # In one batch: a good Parse before the failure stays (statements are not
            # transactional), the one after it is skipped.
            out += exchange(a, parse("s3", "SELECT 3 AS v"), parse("s4", "SELECT nonsense("),
                            parse("s5", "SELECT 5 AS v"), sync())
            out += exchange(a, bind("s3"), execute(), sync())
            out += exchange(a, bind("s5"), execute(), sync())
            out += exchange(a, parse("s3", "SELECT 3 AS v"), sync())  # exists: 42P05
            out += exchange(a, parse("s4", "SELECT 4 AS v"), parse("s5", "SELECT 5 AS v"),
                            bind("s4"), execute(), bind("s5"), execute(), sync())
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["42601", "26000", "42P01", "42601", "26000", "42P05"])
        self.assertEqual(rows(out), [("good",), ("2",), ("3",), ("4",), ("5",)])

    def test_skipped_parse_is_free_in_the_next_pipelined_batch(self):
        """A Parse that the server skipped (an earlier message in its batch failed) leaves no
        statement behind, even when the client re-Parses the name in the very next batch,
        sent before any reply arrived (a pipelining driver)."""
        def scenario(connect):
            a = connect()
            out = exchange(a, parse("z", "SELECT 1/$1::int"), bind("z", ["0"]), execute(),
                           parse("p6", "SELECT 6 AS v"), bind("p6"), execute(), sync(),
                           parse("p6", "SELECT 6 AS v"), bind("p6"), execute(), sync())
            # The same with an error that sluice itself raises (an unknown statement).
            out += exchange(a, bind("nosuch"), parse("p7", "SELECT 7 AS v"), sync(),
                            parse("p7", "SELECT 7 AS v"), bind("p7"), execute(), sync())
            # And with a Parse that fails on the server.
            out += exchange(a, parse("p8", "SELECT nonsense("), parse("p9", "SELECT 9 AS v"),
                            sync(), parse("p8", "SELECT 8 AS v"), parse("p9", "SELECT 9 AS v"),
                            bind("p8"), execute(), bind("p9"), execute(), sync())
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["22012", "26000", "42601"])
        self.assertEqual(rows(out), [("6",), ("7",), ("8",), ("9",)])

    def test_close_then_reparse_with_other_sql(self):
        def scenario(connect):
            a, b = connect(), connect()
            out = exchange(a, parse("s1", "SELECT 'first' AS v"), bind("s1"), execute(), sync())
            out += exchange(b, parse("s1", "SELECT 'first' AS v"), sync())  # shared SQL
            out += exchange(a, close("S", "s1"), sync())
            out += exchange(a, bind("s1"), execute(), sync())
            out += exchange(a, parse("s1", "SELECT 'second' AS v"), bind("s1"), execute(), sync())
            out += exchange(b, bind("s1"), execute(), sync())  # b's s1 is untouched
            # All in one pipeline: close, re-parse with a third SQL, run.
            out += exchange(a, close("S", "s1"), parse("s1", "SELECT 'third' AS v"), bind("s1"),
                            execute(), close("S", "s1"), close("S", "s1"), sync())
            out += exchange(a, bind("s1"), execute(), sync())
            out += exchange(a, close("S", "never-was"), sync())
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(rows(out), [("first",), ("second",), ("first",), ("third",)])
        self.assertEqual(errors(out), ["26000", "26000"])

    def test_deallocate_and_discard_spare_other_clients(self):
        def scenario(connect):
            a, b = connect(), connect()
            out = []
            for conn in (a, b):  # same SQL: sluice may share one server-side statement
                out += exchange(conn, parse("s1", "SELECT 1 AS v"), parse("s2", "SELECT 2 AS v"),
                                parse("S3", "SELECT 3 AS v"), sync())
            run = lambda conn, name: exchange(conn, bind(name), execute(), sync())  # noqa: E731
            out += exchange(a, query("DEALLOCATE s1"))
            out += run(a, "s1") + run(b, "s1") + run(a, "s2")
            out += exchange(a, query('DEALLOCATE PREPARE "S3"'))
            out += run(a, "S3") + run(b, "S3")
            out += exchange(a, query("DEALLOCATE nosuch"))
            out += exchange(a, query("DEALLOCATE ALL"))
            out += run(a, "s2") + run(b, "s2") + run(b, "s1")
            out += exchange(a, parse("s1", "SELECT 10 AS v"), parse("s2", "SELECT 20 AS v"),
                            sync())
            out += run(a, "s1") + run(b, "s1")
            out += exchange(a, query("DISCARD ALL"))
            out += run(a, "s1") + run(b, "s1") + run(b, "s2")
            # DEALLOCATE is not transactional: a rollback does not bring s9 back.
            out += exchange(a, parse("s9", "SELECT 9 AS v"), sync())
            out += exchange(a, query("BEGIN"))
            out += exchange(a, query("DEALLOCATE s9"))
            out += exchange(a, query("ROLLBACK"))
            out += run(a, "s9")
            # DISCARD ALL cannot run in a transaction block: nothing is discarded.
            out += exchange(a, parse("s9", "SELECT 9 AS v"), sync())
            out += exchange(a, query("BEGIN"))
            out += exchange(a, query("DISCARD ALL"))
            out += exchange(a, query("ROLLBACK"))
            out += run(a, "s9")
            out += exchange(a, query("deallocate all"))
            out += run(a, "s9") + run(b, "s2")
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out),
                         ["26000", "26000", "26000", "26000", "26000", "26000", "25001", "26000"])
        self.assertIn(("C", "DEALLOCATE"), out)
        self.assertIn(("C", "DEALLOCATE ALL"), out)
        self.assertIn(("C", "DISCARD ALL"), out)

    def test_deallocate_in_a_multi_statement_query(self):
        """psql scripts send several statements in one simple Query."""
        def scenario(connect):
            a, b = connect(), connect()
            run = lambda conn, name: exchange(conn, bind(name), execute(), sync())  # noqa: E731
            out = []
            for conn in (a, b):
                out += exchange(conn, parse("s1", "SELECT 1 AS v"), parse("s2", "SELECT 2 AS v"),
                                sync())
            out += exchange(a, query("SELECT 'x'; DEALLOCATE s1; SELECT 'y'"))
            out += run(a, "s1") + run(a, "s2") + run(b, "s1")
            out += exchange(a, query("DEALLOCATE ALL; SELECT 'z'"))
            out += run(a, "s2") + run(b, "s1") + run(b, "s2")  # b's statements are b's
            out += exchange(a, parse("s3", "SELECT 3 AS v"), sync())
            out += exchange(a, query("SELECT 'w'; DISCARD ALL"))
            out += run(a, "s3") + run(b, "s1")
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["26000", "26000", "25001"])

    def test_deallocate_through_the_extended_protocol(self):
        """DEALLOCATE is a utility statement: it can come in an unnamed Parse, as psycopg's
        pipeline mode sends it."""
        def scenario(connect):
            a, b = connect(), connect()
            run = lambda conn, name: exchange(conn, bind(name), execute(), sync())  # noqa: E731
            out = []
            for conn in (a, b):
                out += exchange(conn, parse("s1", "SELECT 1 AS v"), parse("s2", "SELECT 2 AS v"),
                                sync())
            out += exchange(a, parse("", "DEALLOCATE s1"), bind(""), execute(), sync())
            out += run(a, "s1") + run(a, "s2") + run(b, "s1")
            out += exchange(a, parse("", "DEALLOCATE ALL"), bind(""), execute(), sync())
            out += run(a, "s2") + run(b, "s1") + run(b, "s2")
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(errors(out), ["26000", "26000"])

    def test_pipeline_replies_in_postgres_order(self):
        def scenario(connect):
            a, b = connect(), connect()
            # b prepares the same SQL first, so the server may already have it.
            out = exchange(b, parse("q", "SELECT $1::int + 1 AS v"), sync())
            out += exchange(a, parse("p1", "SELECT $1::int + 1 AS v"), bind("p1", ["1"]),
                            execute(), parse("p2", "SELECT $1::text AS w"), bind("p2", ["x"]),
                            execute(), sync())
            out += exchange(a, bind("p1", ["5"]), execute(), bind("p2", ["y"]), execute(), sync())
            # Describe of statements and portals, unnamed statements, Close, two Syncs.
            out += exchange(a, parse("p3", "SELECT $1::int AS a, 'b'::text AS b"),
                            describe("S", "p3"), bind("p3", ["3"]), describe("P", ""), execute(),
                            parse("", "SELECT 4"), bind(""), execute(), close("S", "p2"), sync(),
                            bind("p1", ["9"]), execute(), sync())
            # A portal read in parts.
            out += exchange(a, parse("p4", "SELECT g FROM generate_series(1, 5) g"),
                            bind("p4", portal="cur"), execute("cur", 2), execute("cur", 2),
                            execute("cur", 2), sync())
            # An error at Execute: the rest of the batch is skipped, the next batch runs.
            out += exchange(a, bind("p1", ["1"]), execute(), parse("p5", "SELECT 1/$1::int"),
                            bind("p5", ["0"]), execute(), parse("p6", "SELECT 6"), bind("p6"),
                            execute(), sync(), parse("p66", "SELECT 66"), bind("p66"), execute(),
                            sync())
            # Statements with no result and an empty query.
            out += exchange(a, parse("p7", "SET application_name = 'x'"), describe("S", "p7"),
                            bind("p7"), execute(), parse("", ""), bind(""), execute(), sync())
            # Parse/Describe/Flush, then Bind/Execute/Sync: asyncpg's pattern.
            send(a, parse("p8", "SELECT $1::int * 2 AS v"), describe("S", "p8"), flush())
            out += read_replies(a, count=3)
            out += exchange(a, bind("p8", ["21"]), execute(), sync())
            return out

        out = self.assert_same_as_postgres(scenario)
        self.assertEqual(kinds(out[2:11]), "12DC12DCZ")  # after b's Parse and Sync
        self.assertIn(("D", ("42",)), out)

    def test_describe_statement_on_another_backend(self):
        """The client's statement was prepared on one server; its Describe('S') lands on the
        other (the first is held by another client's transaction)."""
        connect = self.pool_of_two()
        a, b, c = connect(), connect(), connect()
        got = exchange(a, parse("s1", "SELECT pg_backend_pid() AS pid, $1::int AS n"),
                       bind("s1", ["1"]), execute(), sync())
        self.assertEqual(kinds(got), "12DCZ", got)
        first_pid = rows(got)[0][0]
        # Hold first_pid's server in another client's transaction; free the other one.
        held = [b]
        pid_b = b.query("BEGIN; SELECT pg_backend_pid()")[0][0]
        if pid_b != first_pid:
            pid_c = c.query("BEGIN; SELECT pg_backend_pid()")[0][0]
            held = [c]
            b.query("COMMIT")
            if not dh.DIRECT:
                self.assertEqual(pid_c, first_pid)
        got = exchange(a, describe("S", "s1"), sync())
        self.assertEqual(got, [("t", (INT4,)), ("T", (("pid", INT4), ("n", INT4))), ("Z", "I")])
        got = exchange(a, bind("s1", ["2"]), execute(), sync())
        self.assertEqual(kinds(got), "2DCZ", got)
        if not dh.DIRECT:
            self.assertNotEqual(rows(got)[0][0], first_pid, "the Describe ran on the same server")
        # Parse/Describe/Flush, then Bind/Execute/Sync, while the pool is busy.
        send(a, parse("s2", "SELECT pg_backend_pid() AS pid, $1::text AS t"), describe("S", "s2"),
             flush())
        got = read_replies(a, count=3)
        self.assertEqual(got, [("1",), ("t", (25,)), ("T", (("pid", INT4), ("t", 25)))])
        got = exchange(a, bind("s2", ["z"]), execute(), sync())
        self.assertEqual(kinds(got), "2DCZ", got)
        for conn in held:
            conn.query("COMMIT")
        # Now both statements on whichever server comes next, many times.
        for i in range(20):
            got = exchange(a, describe("S", "s1"), bind("s1", [str(i)]), execute(),
                           describe("S", "s2"), bind("s2", ["w"]), execute(), sync())
            self.assertEqual(kinds(got), "tT2DCtT2DCZ", got)
        self.assert_daemons_alive()

    def test_cached_plan_must_not_change_result_type(self):
        """ALTER TABLE changes what `SELECT *` returns. PostgreSQL refuses to run the old
        plan (0A000) on every execution; through sluice the first Bind may fail the same way,
        and re-executing afterwards works. Closing and re-preparing (what drivers do on
        0A000) works on both."""
        self.admin_sql("DROP TABLE IF EXISTS plan_t; CREATE TABLE plan_t (a int);"
                       "INSERT INTO plan_t VALUES (1);")
        a, other = self.client(), self.direct()
        got = exchange(a, parse("star", "SELECT * FROM plan_t"), bind("star"), execute(), sync())
        self.assertEqual(got, [("1",), ("2",), ("D", ("1",)), ("C", "SELECT 1"), ("Z", "I")])
        other.query("ALTER TABLE plan_t ADD COLUMN b int DEFAULT 7")
        first = exchange(a, bind("star"), execute(), sync())
        harness.log(f"first Bind after ALTER TABLE: {first}")
        self.assertIn(first, ([("E", "0A000", "cached plan must not change result type"),
                               ("Z", "I")],
                              [("2",), ("D", ("1", "7")), ("C", "SELECT 1"), ("Z", "I")]))
        again = exchange(a, bind("star"), execute(), sync())
        harness.log(f"re-executing: {again}")
        if dh.DIRECT:  # what PostgreSQL itself does: the statement stays broken
            self.assertEqual(errors(again), ["0A000"])
        else:
            self.assertEqual(again, [("2",), ("D", ("1", "7")), ("C", "SELECT 1"), ("Z", "I")])
        # The drivers' recovery: Close, Parse again, run.
        got = exchange(a, close("S", "star"), parse("star", "SELECT * FROM plan_t"),
                       describe("S", "star"), bind("star"), execute(), sync())
        self.assertEqual(got, [("3",), ("1",), ("t", ()), ("T", (("a", INT4), ("b", INT4))),
                               ("2",), ("D", ("1", "7")), ("C", "SELECT 1"), ("Z", "I")])
        self.assert_daemons_alive()


if __name__ == "__main__":
    harness.main()
