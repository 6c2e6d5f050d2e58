"""psycopg 3 preparing every query (prepare_threshold=0) with a cache of only 3 statements
(prepared_max=3), through sluice in transaction mode: 20 threads, one connection each, on a
pool of 3 servers.

Cycling through more distinct queries than the cache holds makes psycopg send
`DEALLOCATE _pg3_N` for the evicted ones; rolling back a transaction in which statements were
prepared makes it send `DEALLOCATE ALL` (it cannot know what the server kept). psycopg 3.1
sends both, like BEGIN and COMMIT, through the extended protocol (PQsendQueryParams). Half
the connections are in autocommit, so each statement may run on a different server.
"""

from __future__ import annotations

import random
import threading

import psycopg

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

THREADS = 20
ROUNDS = 6
DISTINCT_QUERIES = 8  # more than prepared_max, so statements are evicted and deallocated


class Psycopg3Test(DriverTestCase):
    pool_size = 3
    daemon_per_test = True  # each test starts with clean statement caches in sluice

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE p3_items (thread int NOT NULL, round int NOT NULL,"
                      " k int NOT NULL, PRIMARY KEY (thread, round, k));")

    def connect(self, autocommit: bool) -> psycopg.Connection:
        conn = psycopg.connect(self.url(), prepare_threshold=0, autocommit=autocommit,
                               connect_timeout=10)
        conn.prepared_max = 3
        return conn

    def test_threads_with_evictions_and_rollbacks(self):
        failures: list[str] = []
        deallocations = [0]
        lock = threading.Lock()

        def worker(t: int) -> None:
            rng = random.Random(t)
            autocommit = t % 2 == 0
            try:
                with self.connect(autocommit) as conn:
                    for r in range(ROUNDS):
                        order = list(range(DISTINCT_QUERIES))
                        rng.shuffle(order)
                        for k in order:
                            # A distinct statement per k: more of them than the cache keeps.
                            row = conn.execute(f"SELECT %s::int * {k + 1} AS v, %s::text AS tag",
                                               (t, f"t{t}")).fetchone()
                            if row != (t * (k + 1), f"t{t}"):
                                failures.append(f"thread {t}: query {k} returned {row}")
                        if len(conn._prepared._names) > 3:
                            failures.append(f"thread {t}: cache holds {len(conn._prepared._names)}")
                        if not autocommit:
                            conn.commit()  # so the blocks below are transactions, not savepoints
                        self._round(conn, t, r, rng)
                    with lock:
                        deallocations[0] += conn._prepared._prepared_idx
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(f"thread {t}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertFalse(any(th.is_alive() for th in threads), "a thread hung")
        harness.log(f"psycopg: {deallocations[0]} statements prepared in all")
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        # Committed: rounds' even k per thread; rolled back: every odd k.
        self.assertEqual(self.admin_sql("SELECT count(*), count(*) FILTER (WHERE k % 2 = 1) "
                                        "FROM p3_items WHERE thread < 100"),
                         f"{THREADS * ROUNDS * 2}|0")
        self.assert_no_statement_errors("\n".join(failures))
        self.assert_daemon_serving()

    def test_threads_without_deallocation(self):
        """The same load with a cache big enough that psycopg never sends DEALLOCATE, and no
        rollbacks: tells a DEALLOCATE problem from any other."""
        failures: list[str] = []

        def worker(t: int) -> None:
            try:
                with psycopg.connect(self.url(), prepare_threshold=0, autocommit=t % 2 == 0,
                                     connect_timeout=10) as conn:
                    for r in range(ROUNDS):
                        for k in range(DISTINCT_QUERIES):
                            row = conn.execute(f"SELECT %s::int * {k + 1} AS v, %s::text AS tag",
                                               (t, f"t{t}")).fetchone()
                            if row != (t * (k + 1), f"t{t}"):
                                failures.append(f"thread {t}: query {k} returned {row}")
                        with conn.transaction():
                            conn.execute("INSERT INTO p3_items (thread, round, k) VALUES "
                                         "(%s, %s, %s)", (100 + t, r, 0))
                        if not conn.autocommit:
                            conn.commit()
                    if conn._prepared._maint_commands:
                        failures.append(f"thread {t}: psycopg queued {conn._prepared._maint_commands}")
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(f"thread {t}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertFalse(any(th.is_alive() for th in threads), "a thread hung")
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        self.assertEqual(self.admin_sql("SELECT count(*) FROM p3_items WHERE thread BETWEEN 100 AND 199"),
                         str(THREADS * ROUNDS))

    def test_pipeline_mode(self):
        """psycopg's pipeline mode: prepared statements, executemany and queries sent without
        waiting, on 10 connections at once."""
        failures: list[str] = []

        def worker(t: int) -> None:
            try:
                with psycopg.connect(self.url(), prepare_threshold=0, autocommit=True,
                                     connect_timeout=10) as conn:
                    for r in range(ROUNDS):
                        with conn.pipeline():
                            with conn.transaction():
                                conn.cursor().executemany(
                                    "INSERT INTO p3_items (thread, round, k) VALUES (%s, %s, %s)",
                                    [(200 + t, r, k) for k in range(4)])
                            curs = [conn.execute("SELECT %s::int + %s::int", (t, k))
                                    for k in range(5)]
                        got = [c.fetchone()[0] for c in curs]
                        if got != [t + k for k in range(5)]:
                            failures.append(f"thread {t} round {r}: {got}")
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(f"thread {t}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertFalse(any(th.is_alive() for th in threads), "a thread hung")
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        self.assertEqual(self.admin_sql("SELECT count(*) FROM p3_items WHERE thread >= 200"),
                         str(10 * ROUNDS * 4))

    def _round(self, conn: psycopg.Connection, t: int, r: int, rng: random.Random) -> None:
        insert = "INSERT INTO p3_items (thread, round, k) VALUES (%s, %s, %s)"
        # Committed work, in an explicit transaction block.
        with conn.transaction():
            conn.execute(insert, (t, r, 0))
            conn.execute(insert, (t, r, 2))
            n = conn.execute("SELECT count(*) FROM p3_items WHERE thread = %s AND round = %s",
                             (t, r)).fetchone()[0]
            assert n == 2, f"thread {t} round {r}: {n} rows inside the transaction"
        # Rolled back by an exception: statements were prepared inside, so psycopg follows the
        # ROLLBACK with DEALLOCATE ALL.
        try:
            with conn.transaction():
                conn.execute(insert, (t, r, 1))
                conn.execute(f"SELECT %s::int + {100 + r}", (t,)).fetchone()
                raise _Deliberate()
        except _Deliberate:
            pass
        # Rolled back by a failing statement (a unique violation).
        try:
            with conn.transaction():
                conn.execute(insert, (t, r, 3))
                conn.execute(insert, (t, r, 0))  # already there
        except psycopg.errors.UniqueViolation:
            pass
        # And reading back right after, with the cache emptied.
        got = conn.execute("SELECT array_agg(k ORDER BY k) FROM p3_items WHERE thread = %s "
                           "AND round = %s", (t, r)).fetchone()[0]
        assert got == [0, 2], f"thread {t} round {r}: {got}"
        if not conn.autocommit:
            # connection.rollback() after a failure, outside conn.transaction(): it too sends
            # DEALLOCATE ALL after the ROLLBACK.
            conn.execute(insert, (t, r, 5))
            try:
                conn.execute(f"SELECT 1 / (%s::int - {t})", (t,))
            except psycopg.errors.DivisionByZero:
                conn.rollback()
            conn.commit()


class _Deliberate(Exception):
    pass


if __name__ == "__main__":
    harness.main()
