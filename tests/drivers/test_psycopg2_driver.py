"""psycopg2 with its defaults (simple query protocol, client-side parameters, an implicit
transaction opened by the first statement) through sluice in transaction mode: 20 threads,
one connection each, on a pool of 3 servers, committing and rolling back.
"""

from __future__ import annotations

import threading

import psycopg2
import psycopg2.errors
import psycopg2.extras

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

THREADS = 20
ROUNDS = 10


class Psycopg2Test(DriverTestCase):
    pool_size = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("""
            CREATE TABLE p2_ledger (thread int NOT NULL, round int NOT NULL, kind text NOT NULL,
                                    amount int NOT NULL, UNIQUE (thread, round, kind));
            CREATE TABLE p2_totals (thread int PRIMARY KEY, total int NOT NULL);
        """)

    def test_threads_commit_and_rollback(self):
        failures: list[str] = []

        def worker(t: int) -> None:
            try:
                conn = psycopg2.connect(self.url(), connect_timeout=10)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(f"thread {t}: connect: {exc}")
                return
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO p2_totals (thread, total) VALUES (%s, 0)", (t,))
                conn.commit()
                for r in range(ROUNDS):
                    self._round(conn, t, r)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(f"thread {t}: {type(exc).__name__}: {exc}")
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertFalse(any(th.is_alive() for th in threads), "a thread hung")
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        # Per round: 'credit' 10 and 'debit' -3 committed; 'bogus' rows rolled back.
        self.assertEqual(
            self.admin_sql("SELECT count(*), sum(amount), count(*) FILTER (WHERE kind = 'bogus')"
                           " FROM p2_ledger"),
            f"{THREADS * ROUNDS * 2}|{THREADS * ROUNDS * 7}|0")
        self.assertEqual(self.admin_sql("SELECT count(*), sum(total) FROM p2_totals"),
                         f"{THREADS}|{THREADS * ROUNDS * 7}")
        self.assertEqual(self.admin_sql("SELECT count(*) FROM p2_totals t WHERE total <>"
                                        " (SELECT sum(amount) FROM p2_ledger l"
                                        "  WHERE l.thread = t.thread)"), "0")
        self.assert_daemon_serving()

    def _round(self, conn, t: int, r: int) -> None:
        # Committed: two ledger rows and the running total, in one transaction.
        with conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO p2_ledger (thread, round, kind, amount) VALUES %s",
                [(t, r, "credit", 10), (t, r, "debit", -3)])
            cur.execute("UPDATE p2_totals SET total = total + %s WHERE thread = %s", (7, t))
            cur.execute("SELECT total FROM p2_totals WHERE thread = %s", (t,))
            (total,) = cur.fetchone()
            assert total == (r + 1) * 7, f"thread {t} round {r}: total {total} in transaction"
        conn.commit()
        # Rolled back by the client.
        with conn.cursor() as cur:
            cur.execute("INSERT INTO p2_ledger VALUES (%s, %s, 'bogus', 1000)", (t, r))
            cur.execute("UPDATE p2_totals SET total = total + 1000 WHERE thread = %s", (t,))
        conn.rollback()
        # Rolled back after a server error (a unique violation) in the transaction.
        with conn.cursor() as cur:
            cur.execute("UPDATE p2_totals SET total = total + 1000 WHERE thread = %s", (t,))
            try:
                cur.execute("INSERT INTO p2_ledger VALUES (%s, %s, 'credit', 1)", (t, r))
                raise AssertionError("the duplicate insert succeeded")
            except psycopg2.errors.UniqueViolation:
                pass
        conn.rollback()
        # A server-side (named) cursor, which lives in its transaction.
        with conn.cursor(name=f"c{t}") as cur:
            cur.itersize = 3
            cur.execute("SELECT round, kind, amount FROM p2_ledger WHERE thread = %s"
                        " ORDER BY round, kind", (t,))
            seen = list(cur)
        conn.commit()
        assert len(seen) == (r + 1) * 2, f"thread {t} round {r}: cursor saw {len(seen)}"
        # Autocommit statements, each on whichever server is free.
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT total FROM p2_totals WHERE thread = %s", (t,))
                assert cur.fetchone()[0] == (r + 1) * 7
                cur.execute("SELECT %s::int + 1, %s::text", (r, "x"))
                assert cur.fetchone() == (r + 1, "x")
        finally:
            conn.autocommit = False


if __name__ == "__main__":
    harness.main()
