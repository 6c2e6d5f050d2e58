"""The admin console: database "sluice" answers SHOW commands for an authenticated user,
with pool counts that follow what the pool does, and refuses what it does not know."""

import urllib.error
import urllib.request

import pgwire
import harness
from harness import ProxyTestCase, free_port


class AdminConsoleTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice(pool_mode="transaction")

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def admin(self, sql):
        return self.client_psql(self.sluice, sql, database="sluice").stdout.strip()

    def test_show_pools_counts_the_server_a_client_used(self):
        self.assertEqual(self.client_psql(self.sluice, "SELECT 1").stdout.strip(), "1")
        rows = [line.split("|") for line in self.admin("SHOW POOLS").splitlines()]
        self.assertEqual(len(rows), 1, rows)
        pool, mode, size, overflow, idle, active, connecting, waiting, total = rows[0][:9]
        self.assertEqual(pool, f"postgres/{self.client_user}")
        self.assertEqual(mode, "transaction")
        self.assertEqual(int(total), int(idle) + int(active) + int(connecting))
        self.assertGreaterEqual(int(total), 1)
        self.assertEqual(int(waiting), 0)

    def test_show_stats_and_version(self):
        clients, pools, servers, waiting, statements, workers = self.admin("SHOW STATS").split("|")
        self.assertGreaterEqual(int(clients), 1)  # this console session itself
        self.assertGreaterEqual(int(workers), 1)
        self.assertTrue(self.admin("SHOW VERSION").startswith("sluice "))

    def test_unknown_command_is_an_error_and_the_session_goes_on(self):
        with self.sluice.connect(self.client_user, self.client_password,
                                 database="sluice") as conn:
            with self.assertRaises(pgwire.ServerError) as cm:
                conn.query("SELECT 1")
            self.assertEqual(cm.exception.sqlstate, "42601")
            self.assertTrue(conn.query("SHOW VERSION")[0][0].startswith("sluice "))

    def test_wrong_password_is_refused(self):
        with self.assertRaises(pgwire.ServerError) as cm:
            self.sluice.connect(self.client_user, "not-the-password", database="sluice")
        self.assertEqual(cm.exception.sqlstate, "28P01")


class MetricsTest(ProxyTestCase):
    def test_metrics_follow_the_pool(self):
        metrics_port = free_port()
        sluice = self.launch_sluice(pool_mode="transaction", listen={"metrics_port": metrics_port})
        try:
            self.assertEqual(self.client_psql(sluice, "SELECT 1").stdout.strip(), "1")
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                self.assertEqual(response.status, 200)
                text = response.read().decode()
            pool = f'pool="postgres/{self.client_user}"'
            self.assertIn("# TYPE sluice_pool_servers gauge", text)
            idle = [line for line in text.splitlines()
                    if line.startswith("sluice_pool_servers{") and pool in line
                    and 'state="idle"' in line]
            self.assertEqual(len(idle), 1, text)
            self.assertGreaterEqual(int(idle[0].rsplit(" ", 1)[1]), 1)
            self.assertIn(f"sluice_pool_size{{{pool}}} 10", text)
            self.assertNotIn(self.client_password, text)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/", timeout=5)
            self.assertEqual(cm.exception.code, 404)
        finally:
            sluice.stop()


if __name__ == "__main__":
    harness.main()
