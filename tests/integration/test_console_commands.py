"""The console's commands, each shown by its effect on real clients: PAUSE holds a pgbench run
(no transaction gets through while it waits) and RESUME lets it finish with 0 failures;
SIGUSR1 and SIGUSR2 do the same; KILL_CLIENT closes one client and KILL a database's clients
(then holds new ones until RESUME); DISABLE refuses new clients (55000) until ENABLE; stats_users
may not run commands (42501); the commands that are not there yet say so (0A000)."""

import signal
import subprocess
import threading

import harness
import pgwire
from harness import ProxyTestCase

CLIENTS, TRANSACTIONS = 4, 50


class ConsoleCommandsTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.watcher_password = harness.random_password("watcher")
        cls.sluice = cls.launch_sluice(
            pool_mode="transaction",
            users=[*cls.client_users(), {"name": "watcher", "password": cls.watcher_password}],
            admin_users=[cls.client_user], stats_users=["watcher"])
        cls.script_dir = harness.make_temp_dir("pgbench-script")
        cls.script = cls.script_dir / "select.sql"
        cls.script.write_text("SELECT 1;\n")

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        harness.remove_temp_dir(cls.script_dir)
        super().tearDownClass()

    def console(self):
        return self.sluice.connect(self.client_user, self.client_password, database="pgbouncer")

    def pool_row(self, conn):
        for row in conn.query("SHOW POOLS"):
            if row[:2] == ["postgres", self.client_user]:
                return row
        return None

    def database_row(self, conn):
        return [row for row in conn.query("SHOW DATABASES") if row[0] == "postgres"][0]

    def transactions(self, conn) -> int:
        return sum(int(row[2]) for row in conn.query("SHOW STATS_TOTALS") if row[0] == "postgres")

    def start_pgbench(self):
        result = {}

        def run():
            result["run"] = harness.pgbench(
                self.sluice.port,
                ["-n", "-c", str(CLIENTS), "-t", str(TRANSACTIONS), "-f", str(self.script)],
                user=self.client_user, password=self.client_password, timeout=120)
        thread = threading.Thread(target=run)
        thread.start()
        return thread, result

    def assert_held_then_released(self, pause, resume):
        # A first run before the pause: the pool exists, and it knows what pgbench's startup
        # asks for, so pgbench's logins are answered without a server (a login that needs a
        # server waits out a pause like a transaction, as in PgBouncer).
        warm_up = harness.pgbench(self.sluice.port, ["-n", "-c", str(CLIENTS), "-t", "1", "-f",
                                                     str(self.script)],
                                  user=self.client_user, password=self.client_password)
        self.assertEqual(warm_up.returncode, 0, warm_up.stderr)
        with self.console() as conn:
            pause(conn)
            before = self.transactions(conn)
            thread, result = self.start_pgbench()
            try:
                # Every pgbench client waits in line, and none gets a transaction through.
                def waiting():
                    return int(self.pool_row(conn)[3]) >= CLIENTS
                harness.wait_until(lambda: waiting() or not thread.is_alive(), timeout=60,
                                   what="pgbench's clients to wait")
                self.assertTrue(thread.is_alive(), result.get("run"))
                self.assertEqual(self.transactions(conn), before)
                self.assertEqual(self.database_row(conn)[15], "1")  # paused
            finally:
                resume(conn)
                thread.join(timeout=150)
            self.assertFalse(thread.is_alive())
            stats = harness.parse_pgbench(result["run"].stdout)
            self.assertEqual(stats["processed"], CLIENTS * TRANSACTIONS, result["run"].stdout)
            self.assertEqual(stats.get("failed", 0), 0)
            self.assertEqual(self.transactions(conn), before + CLIENTS * TRANSACTIONS)
            self.assertEqual(self.database_row(conn)[15], "0")
            self.assertEqual(conn.query("SHOW STATE")[0], ["active", "yes"])

    def test_pause_holds_pgbench_and_resume_lets_it_finish(self):
        self.assert_held_then_released(lambda conn: conn.query("PAUSE postgres"),
                                       lambda conn: conn.query("RESUME postgres"))

    def test_usr1_pauses_and_usr2_resumes(self):
        def pause(conn):
            self.sluice.signal(signal.SIGUSR1)
            harness.wait_until(lambda: conn.query("SHOW STATE")[1] == ["paused", "yes"],
                               timeout=30, what="SIGUSR1 to pause")
        self.assert_held_then_released(pause, lambda conn: self.sluice.signal(signal.SIGUSR2))

    def test_disable_refuses_new_clients_until_enable(self):
        with self.console() as conn:
            conn.query("DISABLE postgres")
            try:
                r = self.client_psql(self.sluice, "SELECT 1", check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("not currently accepting connections", r.stderr)
                disabled = [row for row in conn.query("SHOW DATABASES") if row[0] == "postgres"]
                self.assertEqual(disabled[0][16], "1")
            finally:
                conn.query("ENABLE postgres")
        self.assertEqual(self.client_psql(self.sluice, "SELECT 1").stdout.strip(), "1")

    def victim(self, name: str) -> tuple[pgwire.Connection, str]:
        """A client in the middle of a transaction, and its id in SHOW CLIENTS."""
        conn = self.sluice.connect(self.client_user, self.client_password,
                                   params={"application_name": name})
        conn.query("BEGIN")
        conn.query("SELECT 1")
        with self.console() as console:
            ids = [row[20] for row in console.query("SHOW CLIENTS") if row[18] == name]
        self.assertEqual(len(ids), 1)
        return conn, ids[0]

    def assert_closed(self, conn: pgwire.Connection) -> None:
        with self.assertRaises((ConnectionError, pgwire.ProtocolError, OSError)):
            conn.query("SELECT 2")
        conn.abort()

    def test_kill_client_closes_that_client_only(self):
        victim, victim_id = self.victim("victim")
        bystander, _ = self.victim("bystander")
        self.addCleanup(bystander.abort)
        with self.console() as conn:
            conn.query(f"KILL_CLIENT {victim_id}")
            with self.assertRaises(pgwire.ServerError) as cm:
                conn.query("KILL_CLIENT 999999999")
            self.assertEqual(cm.exception.sqlstate, "42704")
        self.assert_closed(victim)
        self.assertEqual(bystander.query("SELECT 3"), [["3"]])
        self.assert_serving(self.sluice)

    def test_kill_database_closes_its_clients_and_holds_new_ones_until_resume(self):
        victim, _ = self.victim("killed")
        with self.console() as conn:
            conn.query("KILL postgres")
            try:
                self.assert_closed(victim)
                self.assertEqual(self.database_row(conn)[15], "1")  # paused until RESUME
            finally:
                conn.query("RESUME postgres")
        self.assert_serving(self.sluice)

    def test_stats_users_may_not_run_commands(self):
        with self.sluice.connect("watcher", self.watcher_password, database="pgbouncer") as conn:
            for command in ("PAUSE", "DISABLE postgres", "RESUME"):
                with self.subTest(command=command):
                    with self.assertRaises(pgwire.ServerError) as cm:
                        conn.query(command)
                    self.assertEqual(cm.exception.sqlstate, "42501")
            self.assertEqual(conn.query("SHOW STATE")[0], ["active", "yes"])

    def test_commands_not_there_yet_say_so(self):
        with self.console() as conn:
            for command in ("RELOAD", "SHUTDOWN", "SHUTDOWN WAIT_FOR_CLIENTS", "RECONNECT"):
                with self.subTest(command=command):
                    with self.assertRaises(pgwire.ServerError) as cm:
                        conn.query(command)
                    self.assertEqual(cm.exception.sqlstate, "0A000")
            with self.assertRaises(pgwire.ServerError) as cm:
                conn.query("PAUSE no_such_database")
            self.assertEqual(cm.exception.sqlstate, "3D000")
        self.assert_serving(self.sluice)


if __name__ == "__main__":
    harness.main()
