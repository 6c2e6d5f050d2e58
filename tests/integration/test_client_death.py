"""A client that dies inside a transaction must not leave its server backend
holding locks: sluice has to notice and release (or close) that connection.
Each test takes a row lock through sluice, kills the client, and then takes
the same lock directly on PostgreSQL with a 1 s lock_timeout."""

import os
import signal
import subprocess
import time

import harness
from harness import HOST, ProxyTestCase

LOCK_ATTEMPTS = 3  # each waits at most lock_timeout = 1s


class ClientDeathTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql("CREATE TABLE locktest (id int PRIMARY KEY, v int);"
                    "INSERT INTO locktest SELECT g, 0 FROM generate_series(1, 10) g;"
                    f"ALTER TABLE locktest OWNER TO {cls.upstream_user};")
        cls.sluice = cls.launch_sluice(pool_mode="session")

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def lock_sql(self, row: int) -> str:
        return f"SELECT id FROM locktest WHERE id = {row} FOR UPDATE"

    def row_is_locked(self, row: int) -> bool:
        """Proves the setup (the lock really is held), so that a later release
        means something."""
        r = harness.psql(self.pg.port, f"SET lock_timeout = '200ms';\n{self.lock_sql(row)};",
                         user=self.pg.superuser, password=self.pg.superuser_password,
                         check=False)
        if r.returncode == 0:
            return False
        self.assertIn("lock timeout", r.stderr)
        return True

    def assert_lock_released(self, row: int, killed_at: float) -> None:
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            r = harness.psql(
                self.pg.port,
                f"SET lock_timeout = '1s';\nBEGIN;\n{self.lock_sql(row)};\nROLLBACK;",
                user=self.pg.superuser, password=self.pg.superuser_password, check=False)
            if r.returncode == 0:
                harness.log(f"row {row} lock taken {time.monotonic() - killed_at:.2f}s after "
                            f"the client died (attempt {attempt})")
                return
            self.assertIn("lock timeout", r.stderr)
        activity = self.pg.psql("SELECT pid, state, query FROM pg_stat_activity "
                                f"WHERE usename = '{self.upstream_user}'")
        self.fail(f"row {row} still locked {time.monotonic() - killed_at:.1f}s after the client "
                  f"died; upstream sessions:\n{activity}")

    def test_killed_psql_releases_lock(self):
        row = 1
        proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-h", HOST, "-p", str(self.sluice.port),
             "-U", self.client_user, "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=harness.client_env(self.client_password), start_new_session=True)
        try:
            proc.stdin.write(f"BEGIN;\n{self.lock_sql(row)};\n\\echo LOCKED\n".encode())
            proc.stdin.flush()
            out = harness.read_until(proc, b"LOCKED", timeout=15)
            if b"LOCKED" not in out:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                self.fail(f"psql never reported the lock; stdout {out!r}, stderr {err!r}")
            self.assertTrue(self.row_is_locked(row))
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()
        self.assert_lock_released(row, killed_at)
        self.assert_serving(self.sluice)

    def test_reset_connection_releases_lock(self):
        row = 2
        conn = self.sluice.connect(self.client_user, self.client_password)
        conn.query("BEGIN")
        self.assertEqual(conn.query(self.lock_sql(row)), [[str(row)]])
        self.assertEqual(conn.transaction_status, "T")
        self.assertTrue(self.row_is_locked(row))
        conn.abort()  # RST
        self.assert_lock_released(row, time.monotonic())
        self.assert_serving(self.sluice)

    def test_closed_without_terminate_releases_lock(self):
        row = 3
        conn = self.sluice.connect(self.client_user, self.client_password)
        conn.query("BEGIN")
        conn.query(self.lock_sql(row))
        self.assertTrue(self.row_is_locked(row))
        conn.close_without_terminate()  # FIN, no 'X'
        self.assert_lock_released(row, time.monotonic())
        self.assert_serving(self.sluice)

    def test_next_client_gets_a_clean_session(self):
        # The dead client's open transaction must not leak into whoever gets
        # that server connection next.
        row = 4
        conn = self.sluice.connect(self.client_user, self.client_password)
        conn.query("BEGIN")
        conn.query(self.lock_sql(row))
        conn.abort()
        for _ in range(3):
            with self.sluice.connect(self.client_user, self.client_password) as fresh:
                self.assertEqual(fresh.transaction_status, "I")
                self.assertEqual(fresh.query("SELECT now() = statement_timestamp()"), [["t"]])
        self.assert_lock_released(row, time.monotonic())


if __name__ == "__main__":
    harness.main()
