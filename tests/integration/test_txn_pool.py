"""The pool behind transaction mode, seen from both ends: what a client gets
through sluice, what PostgreSQL's pg_stat_activity shows, and what sluice logs.
Each test starts its own sluice (mode: transaction) with the pool settings it is
about: timeout, pre_ping, recycle, idle_timeout, min_size, overflow, a
PostgreSQL restart under load, and max_clients."""

import re
import threading
import time

import harness
import pgwire
from harness import ProxyTestCase, backend_pids, parse_pgbench, wait_until

POOL_NAME = "postgres/app"  # database/user: how sluice names the one pool here


class TxnPoolTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgbench_ready = False

    def setUp(self):
        # Every test counts the upstream role's backends: start from none, so a
        # previous test's sluice (stopped, its servers closing) cannot skew it.
        wait_until(lambda: not self.upstream_pids(), 15, 0.1,
                   what=f"no backends of {self.upstream_user} left from an earlier test")

    # -- helpers --------------------------------------------------------------

    def launch(self, *, pool_size: int = 1, pool: dict | None = None, **extra) -> harness.Sluice:
        sluice = self.launch_sluice(pool_mode="transaction", pool_size=pool_size,
                                    pool=dict(pool or {}), **extra)
        self.addCleanup(sluice.stop)
        return sluice

    def client(self, sluice: harness.Sluice, timeout: float = 10.0) -> pgwire.Connection:
        conn = sluice.connect(self.client_user, self.client_password, timeout=timeout)
        self.addCleanup(conn.close_without_terminate)
        return conn

    def upstream_pids(self) -> list[int]:
        """The upstream role's backends, read directly on PostgreSQL."""
        with self.pg.connect() as admin:
            return backend_pids(admin, self.upstream_user)

    def terminate_backend(self, pid: int) -> None:
        with self.pg.connect() as admin:
            self.assertEqual(admin.query(f"SELECT pg_terminate_backend({pid})"), [["t"]])
        wait_until(lambda: pid not in self.upstream_pids(), 10, 0.05,
                   what=f"backend {pid} to exit after pg_terminate_backend")

    def assert_logged(self, sluice: harness.Sluice, pattern: str, what: str,
                      timeout: float = 5.0) -> str:
        """Waits (bounded) for a log line matching `pattern` and returns it."""
        regex = re.compile(pattern, re.I)

        def find():
            return next((line for line in sluice.log_text().splitlines() if regex.search(line)),
                        None)
        try:
            return wait_until(find, timeout, 0.1, what=what)
        except TimeoutError:
            self.fail(f"sluice never logged {what} (/{pattern}/); log tail:\n"
                      f"{sluice.log_tail(40)}")

    @staticmethod
    def pid_of(conn: pgwire.Connection) -> int:
        return int(conn.query("SELECT pg_backend_pid()")[0][0])

    # -- pool.timeout ---------------------------------------------------------

    def test_timeout_gives_53300_naming_the_pool(self):
        sluice = self.launch(pool_size=1, pool={"timeout": "1s"})
        holder = self.client(sluice)
        waiter = self.client(sluice)  # logged in while the one server was still free
        holder.query("BEGIN")
        holder.query("SELECT 1")
        self.assertEqual(holder.transaction_status, "T")

        started = time.monotonic()
        rows, error, closed = pgwire.query_outcome(waiter, "SELECT 1")
        waited = time.monotonic() - started
        harness.log(f"waiter answered after {waited:.2f}s: rows={rows} error={error} "
                    f"closed={closed}")
        self.assertIsNotNone(error, f"the waiter got no error (rows={rows}, closed={closed}) "
                                    "although the only server was held in a transaction")
        self.assertEqual(error.sqlstate, "53300", error.fields)
        self.assertIn(POOL_NAME, error.message)
        self.assertGreaterEqual(waited, 0.9, "the error came before the pool timeout")
        self.assertLess(waited, 1 + 5, "the error came long after the pool timeout")
        self.assert_logged(sluice, rf"wait.*pool={re.escape(POOL_NAME)}(\s|$)",
                           "the client that waited too long for a server")

        # The holder is unaffected and the server comes back to the pool.
        holder.query("COMMIT")
        self.assertEqual(holder.query("SELECT 2"), [["2"]])
        with self.client(sluice) as fresh:
            self.assertEqual(fresh.query("SELECT 3"), [["3"]])

    # -- pool.pre_ping ----------------------------------------------------------

    def check_killed_idle_server_is_replaced(self, pre_ping):
        sluice = self.launch(pool_size=1, pool={"pre_ping": pre_ping})
        conn = self.client(sluice)
        old = self.pid_of(conn)
        self.assertEqual(self.upstream_pids(), [old])
        self.terminate_backend(old)  # the server is idle in the pool now

        rows, error, closed = pgwire.query_outcome(conn, "SELECT pg_backend_pid()")
        self.assertIsNone(error, f"pre_ping={pre_ping}: the client saw the dead server's error")
        self.assertFalse(closed, f"pre_ping={pre_ping}: the client was disconnected")
        new = int(rows[0][0])
        self.assertNotEqual(new, old)
        self.assertEqual(self.upstream_pids(), [new])
        self.assert_logged(sluice, rf"pid={old}\b.*(replac|dead|clos|drop)|"
                                   rf"(replac|dead|clos|drop).*pid={old}\b",
                           f"that it replaced the dead server {old}")
        self.assertEqual(conn.query("SELECT 1"), [["1"]])

    def test_pre_ping_always_replaces_a_killed_server(self):
        self.check_killed_idle_server_is_replaced(0)

    def test_pre_ping_off_still_notices_a_killed_idle_server(self):
        # No ping, but the terminated backend left a FATAL (or at least EOF) on
        # the socket: sluice peeks before handing the server out.
        self.check_killed_idle_server_is_replaced("off")

    # -- pool.recycle -----------------------------------------------------------

    def test_recycle_replaces_old_servers_between_transactions(self):
        sluice = self.launch(pool_size=1, pool={"recycle": "1s"})
        conn = self.client(sluice)
        probe = ("SELECT pid, extract(epoch FROM backend_start), extract(epoch FROM clock_timestamp()) "
                 "FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        samples = []  # (pid, backend_start, now), on PostgreSQL's clock
        deadline = time.monotonic() + 3.6
        while time.monotonic() < deadline:
            pid, start, now = conn.query(probe)[0]
            samples.append((int(pid), float(start), float(now)))
            time.sleep(0.3)
        order = [pid for i, (pid, _, _) in enumerate(samples) if i == 0 or samples[i - 1][0] != pid]
        harness.log(f"recycle: {len(samples)} queries saw servers {order}")
        self.assertGreaterEqual(len(order), 2, f"no server was recycled in 3.6 s: {samples}")
        self.assertEqual(len(order), len(set(order)), f"a recycled server came back: {order}")
        # A server is closed only once it is older than `recycle`: the next one
        # first answers at least 1 s after the previous one started.
        starts = {pid: start for pid, start, _ in samples}
        first_seen = {}
        for pid, _, now in samples:
            first_seen.setdefault(pid, now)
        for old, new in zip(order, order[1:]):
            self.assertGreaterEqual(first_seen[new] - starts[old], 0.95,
                                    f"server {old} was replaced by {new} before it was 1 s old")
        self.assert_logged(sluice, rf"server closed.*pid={order[0]}\b", "the recycled server")

        # Never inside a transaction: one that outlives the recycle age keeps its server.
        conn.query("BEGIN")
        inside = [self.pid_of(conn)]
        time.sleep(1.3)
        inside.append(self.pid_of(conn))
        conn.query("SELECT pg_sleep(0.3)")
        inside.append(self.pid_of(conn))
        conn.query("COMMIT")
        self.assertEqual(len(set(inside)), 1, f"the server changed inside a transaction: {inside}")
        after = self.pid_of(conn)
        self.assertNotEqual(after, inside[0],
                            "a server older than recycle went back to the pool after COMMIT")

    # -- pool.idle_timeout and pool.min_size -------------------------------------

    def test_idle_timeout_closes_idle_servers(self):
        sluice = self.launch(pool_size=2, pool={"idle_timeout": "1s", "min_size": 0})
        conn = self.client(sluice)
        pid = self.pid_of(conn)
        self.assertIn(pid, self.upstream_pids())
        wait_until(lambda: not self.upstream_pids(), 8, 0.1,
                   what="the idle server to be closed after idle_timeout 1s")
        self.assert_logged(sluice, rf"server closed.*pid={pid}\b", f"closing idle server {pid}")
        # The client, still connected, gets a new server on demand.
        self.assertNotEqual(self.pid_of(conn), pid)

    def test_min_size_opens_servers_without_clients(self):
        sluice = self.launch(pool_size=4, pool={"min_size": 2, "idle_timeout": "1s"})
        wait_until(lambda: len(self.upstream_pids()) == 2, 8, 0.1,
                   what="min_size 2 servers to be open with no client at all")
        opened = self.upstream_pids()
        time.sleep(2)  # past idle_timeout: the pool closes down to min_size, not below
        self.assertEqual(len(self.upstream_pids()), 2, "min_size servers were closed when idle")
        self.assert_logged(sluice, r"server opened", "opening the min_size servers")
        harness.log(f"min_size servers {opened}, then {self.upstream_pids()}")

    # -- pool.overflow ----------------------------------------------------------

    def test_overflow_opens_extra_servers_after_overflow_after(self):
        sluice = self.launch(pool_size=1, pool={"overflow": 2, "overflow_after": "300ms",
                                                "timeout": "10s"})
        holder, second, third = (self.client(sluice) for _ in range(3))
        holder.query("BEGIN")
        pids = {"holder": self.pid_of(holder)}
        waited = {}
        errors = []

        def take(name, conn):
            try:
                started = time.monotonic()
                conn.query("BEGIN")
                waited[name] = time.monotonic() - started
                pids[name] = self.pid_of(conn)
            except Exception as exc:  # reported below
                errors.append((name, exc))

        threads = [threading.Thread(target=take, args=(name, conn), daemon=True)
                   for name, conn in (("second", second), ("third", third))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(errors, [])
        self.assertEqual(len(pids), 3, f"not every client got a server: {pids}")
        self.assertEqual(len(set(pids.values())), 3, f"overflow servers are not distinct: {pids}")
        self.assertEqual(sorted(self.upstream_pids()), sorted(pids.values()))
        for name, seconds in waited.items():
            self.assertGreaterEqual(seconds, 0.25,
                                    f"{name} got an overflow server before overflow_after")
        harness.log(f"overflow: servers {pids}, waits {waited}")

        for conn in (holder, second, third):
            conn.query("COMMIT")
        wait_until(lambda: len(self.upstream_pids()) == 1, 8, 0.1,
                   what="the two overflow servers to close once idle")
        self.assert_logged(sluice, r"server (closed|dropped)", "closing the overflow servers")

    # -- PostgreSQL restart -------------------------------------------------------

    def test_postgres_restart_under_pgbench(self):
        r = harness.pgbench(self.pg.port, ["-i", "-s", "1", "-q"], user=self.upstream_user,
                            password=self.upstream_password, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        sluice = self.launch(pool_size=4, pool={"timeout": "20s"})
        pgbench_args = ["-n", "-c", "4", "-j", "2", "-T"]
        first = {}

        def first_run():
            first["result"] = harness.pgbench(sluice.port, [*pgbench_args, "5"],
                                              user=self.client_user,
                                              password=self.client_password, timeout=60)

        runner = threading.Thread(target=first_run, daemon=True)
        runner.start()
        wait_until(lambda: len(self.upstream_pids()) >= 2, 10, 0.1,
                   what="pgbench to be running through sluice")
        time.sleep(1)
        self.pg.restart()
        runner.join(70)
        self.assertFalse(runner.is_alive(), "the pgbench run across the restart never ended")
        r = first["result"]
        harness.log(f"pgbench across the restart: rc={r.returncode} {parse_pgbench(r.stdout)}")

        self.assertTrue(sluice.alive(), f"sluice died with PostgreSQL:\n{sluice.log_tail()}")
        r = harness.pgbench(sluice.port, [*pgbench_args, "3"], user=self.client_user,
                            password=self.client_password, timeout=60)
        self.assertEqual(r.returncode, 0,
                         f"pgbench after the restart failed:\n{r.stdout}\n{r.stderr[-3000:]}")
        stats = parse_pgbench(r.stdout)
        self.assertEqual(stats.get("failed"), 0, r.stdout)
        self.assertGreater(stats.get("processed", 0), 0, r.stdout)
        self.assert_logged(sluice, r"server .*(lost|dead|closed|dropped|pre-ping)",
                           "the servers PostgreSQL's restart killed")

    # -- max_clients ----------------------------------------------------------------

    def test_max_clients_refuses_the_next_client(self):
        sluice = self.launch(pool_size=2, max_clients=3)
        conns = [self.client(sluice) for _ in range(3)]
        for i, conn in enumerate(conns):
            self.assertEqual(conn.query(f"SELECT {i}"), [[str(i)]])
        with self.assertRaises(pgwire.ServerError) as cm:
            self.client(sluice)
        self.assertEqual(cm.exception.sqlstate, "53300", cm.exception.fields)
        self.assertIn("too many clients", cm.exception.message)
        self.assert_logged(sluice, r"too many clients", "the refused client")

        conns[0].close()

        def one_more():
            try:
                with sluice.connect(self.client_user, self.client_password) as extra:
                    return extra.query("SELECT 'in'") == [["in"]]
            except pgwire.ServerError:
                return False
        wait_until(one_more, 5, 0.1, what="a client slot to free up after one client left")
        for conn in conns[1:]:
            self.assertEqual(conn.query("SELECT 1"), [["1"]])


if __name__ == "__main__":
    harness.main()
