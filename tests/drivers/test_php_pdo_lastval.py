"""PHP PDO (Debian's php-pgsql) PDO::lastInsertId() after an INSERT outside a transaction,
through sluice in transaction mode (issue 17 item 4): php/lastval_check.php.

lastInsertId() is `SELECT LASTVAL()`, which reads the server session's sequence state. On
PostgreSQL that is always the client's own. In transaction mode the SELECT may run on another
server session, whose lastval() is another client's id: sluice must give the client's own id
(it keeps the server for pool.lastval_window after an autocommit INSERT, while nobody waits) or
SQLSTATE 55000, never another client's. So each id lastInsertId() returns is checked by reading
that row's marker back; 55000 is accepted through sluice only. Inside a transaction the id must
be the client's own every time.
"""

from __future__ import annotations

import re
import threading

import driver_harness as dh
import harness
import pgwire
from driver_harness import DriverTestCase

WORKERS, WORKER_ROUNDS = 8, 40
INTERLEAVED, INTERLEAVE_ROUNDS = 4, 8


class PhpPdoLastvalTest(DriverTestCase):
    pool_size = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE lv_items (id serial PRIMARY KEY, marker text NOT NULL UNIQUE);")

    def php(self, *args: str, port: int | None = None) -> dict:
        """Runs lastval_check.php; asserts it reported no failure; returns its counts."""
        output = self.run_check(["php", str(dh.PHP_DIR / "lastval_check.php"), *args],
                                timeout=120, port=port)
        line = re.search(r"^RESULT (.*)$", output, re.MULTILINE).group(1)
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}

    def check_counts(self, counts: dict, outside: int, inside: int) -> None:
        harness.log(f"lastInsertId(): {counts}")
        self.assertEqual(counts["own"] + counts["sqlstate_55000"], outside, counts)
        self.assertEqual(counts["in_transaction_own"], inside, counts)
        if dh.DIRECT:
            self.assertEqual(counts["sqlstate_55000"], 0, "PostgreSQL itself refused lastval()")

    def test_concurrent_php_processes(self):
        """Eight PHP processes at once on two servers: every id is the process's own."""
        results: list = []
        errors: list = []

        def worker(n: int) -> None:
            try:
                results.append(self.php("worker", f"w{n}", str(WORKER_ROUNDS)))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(f"worker {n}: {exc}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        self.assertFalse(any(t.is_alive() for t in threads), "a PHP process hung")
        self.assertEqual(errors, [], "\n".join(errors)[-8000:])
        total = {k: sum(r[k] for r in results) for k in results[0]}
        self.check_counts(total, WORKERS * WORKER_ROUNDS, WORKERS * WORKER_ROUNDS // 5)
        self.assert_daemon_serving()

    def test_interleaved_connections_on_one_server(self):
        """Four PDO connections in one process on a pool of one server: each inserts, then
        each asks, so every lastInsertId() follows the other connections' INSERTs on the one
        server there is."""
        port = self.target_port
        if not dh.DIRECT:
            daemon = self.launch_tx_sluice(1)
            self.addCleanup(daemon.stop)
            port = daemon.port
        counts = self.php("interleave", "i", str(INTERLEAVE_ROUNDS), str(INTERLEAVED), port=port)
        self.check_counts(counts, INTERLEAVED * INTERLEAVE_ROUNDS, INTERLEAVED * INTERLEAVE_ROUNDS)

    def test_lone_client_keeps_its_server(self):
        """One PHP client alone: after each autocommit INSERT sluice keeps its server for the
        lastInsertId() that follows (nobody waits), so every answer is the client's own id.
        The window is 10 s here instead of the default 100 ms, so timing cannot matter."""
        port = self.target_port
        if not dh.DIRECT:
            daemon = self.launch_sluice(pool_mode="transaction", pool_size=1, log_level="info",
                                        pool={"lastval_window": "10s"})
            self.addCleanup(daemon.stop)
            port = daemon.port
        counts = self.php("worker", "lone", str(WORKER_ROUNDS), port=port)
        self.check_counts(counts, WORKER_ROUNDS, WORKER_ROUNDS // 5)
        self.assertEqual(counts["sqlstate_55000"], 0, counts)

    def test_wire_lastval(self):
        """lastval() message by message on a pool of one server: 55000 on a session that never
        used a sequence (after another client's INSERT on that very server too), the client's
        own value after its INSERT in the same transaction or the same Query."""
        port, password = self.target_port, self.target_password
        if not dh.DIRECT:
            daemon = self.launch_tx_sluice(1)
            self.addCleanup(daemon.stop)
            port = daemon.port

        def connect() -> pgwire.Connection:
            conn = pgwire.connect(harness.HOST, port, self.target_user, password, "postgres")
            self.addCleanup(conn.close)
            return conn

        def sqlstate(conn, sql: str):
            try:
                conn.query(sql)
            except pgwire.ServerError as exc:
                return exc.sqlstate
            return None

        def marker_of(conn, row_id: str) -> str:
            return conn.query(f"SELECT marker FROM lv_items WHERE id = {int(row_id)}")[0][0]

        fresh = connect()
        self.assertEqual(sqlstate(fresh, "SELECT lastval()"), "55000")
        self.assertEqual(sqlstate(fresh, "SELECT currval('lv_items_id_seq')"), "55000")
        other = connect()
        other.query("INSERT INTO lv_items (marker) VALUES ('wire-other')")
        # The only server's sequence state is `other`'s now; `fresh` never used a sequence.
        self.assertEqual(sqlstate(fresh, "SELECT lastval()"), "55000")
        self.assertEqual(fresh.transaction_status, "I")
        # In one transaction: its own.
        fresh.query("BEGIN")
        fresh.query("INSERT INTO lv_items (marker) VALUES ('wire-tx')")
        got = fresh.query("SELECT lastval()")[0][0]
        fresh.query("COMMIT")
        self.assertEqual(marker_of(fresh, got), "wire-tx")
        # In one Query: its own.
        got = fresh.query("INSERT INTO lv_items (marker) VALUES ('wire-q'); SELECT lastval()")[0][0]
        self.assertEqual(marker_of(fresh, got), "wire-q")
        # nextval() and currval() in one transaction.
        fresh.query("BEGIN")
        next_id = fresh.query("SELECT nextval('lv_items_id_seq')")[0][0]
        self.assertEqual(fresh.query("SELECT currval('lv_items_id_seq')")[0][0], next_id)
        fresh.query("COMMIT")
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
