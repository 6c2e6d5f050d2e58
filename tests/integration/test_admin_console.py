"""The admin console: database "sluice" answers SHOW commands for the users in
admin_users and stats_users (nobody else, after authenticating: 42501), with pool counts
that follow what the pool does, and refuses what it does not know."""

import harness
import pgwire
import harness
from harness import ProxyTestCase
from pgwire import AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL


class AdminConsoleTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.watcher_password = harness.random_password("watcher")
        cls.outsider_password = harness.random_password("outsider")
        cls.users = [*cls.client_users(),
                     {"name": "watcher", "password": cls.watcher_password},
                     {"name": "outsider", "password": cls.outsider_password}]
        cls.sluice = cls.launch_sluice(pool_mode="transaction", users=cls.users,
                                       admin_users=[cls.client_user], stats_users=["watcher"])

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def admin(self, sql):
        return self.client_psql(self.sluice, sql, database="sluice").stdout.strip()

    def test_show_pools_counts_the_server_a_client_used(self):
        self.assertEqual(self.client_psql(self.sluice, "SELECT 1").stdout.strip(), "1")
        rows = [line.split("|") for line in self.admin("SHOW POOLS").splitlines()]
        # Other tests log in as other users, with pools of their own.
        rows = [row for row in rows if row[:2] == ["postgres", self.client_user]]
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        sv_active, sv_idle, sv_used, sv_tested, sv_login = (int(v) for v in row[6:7] + row[9:13])
        self.assertEqual(row[15], "transaction")
        self.assertGreaterEqual(sv_active + sv_idle + sv_used + sv_tested + sv_login, 1)
        self.assertEqual(int(row[3]), 0)  # cl_waiting

    def test_show_stats_totals_count_the_queries(self):
        def queries():
            rows = [line.split("|") for line in self.admin("SHOW STATS_TOTALS").splitlines()]
            return sum(int(row[3]) for row in rows if row[0] == "postgres")
        before = queries()
        for _ in range(3):
            self.client_psql(self.sluice, "SELECT 1")
        self.assertGreaterEqual(queries(), before + 3)

    def test_answers_as_pgbouncer_too(self):
        with self.sluice.connect(self.client_user, self.client_password,
                                 database="pgbouncer") as conn:
            self.assertTrue(conn.query("SHOW VERSION")[0][0].startswith("sluice "))
            self.assertEqual(conn.query("SELECT STATE")[0], ["active", "yes"])

    def test_show_stats_and_version(self):
        rows = self.admin("SHOW STATS").splitlines()
        self.assertIn("postgres", [row.split("|")[0] for row in rows])
        self.assertTrue(self.admin("SHOW VERSION").startswith("sluice "))
        lists = dict(line.split("|") for line in self.admin("SHOW LISTS").splitlines())
        self.assertGreaterEqual(int(lists["used_clients"]), 1)  # this console session itself

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

    def test_stats_users_may_show(self):
        with self.sluice.connect("watcher", self.watcher_password, database="sluice") as conn:
            self.assertTrue(conn.query("SHOW VERSION")[0][0].startswith("sluice "))
            self.assertGreaterEqual(len(conn.query("SHOW STATS")), 1)

    def console_refusal(self, sluice, user, password):
        """A console login that must fail; returns the error and the auth requests before it."""
        conn = pgwire.Connection(harness.HOST, sluice.port, user, password, "sluice")
        with self.assertRaises(pgwire.ServerError) as cm:
            conn.connect()
        return cm.exception, conn.auth_requests

    def test_other_users_are_refused_after_authenticating(self):
        # As PostgreSQL refuses a role without CONNECT privilege: the password is checked
        # first, then 42501 (PgBouncer 1.25 says "not allowed").
        err, requests = self.console_refusal(self.sluice, "outsider", self.outsider_password)
        self.assertEqual((err.severity, err.sqlstate), ("FATAL", "42501"), err.fields)
        self.assertIn("not allowed", err.message)
        self.assertIn("admin_users", err.message)
        self.assertEqual(requests, [AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, AUTH_OK])
        # Without the password the console tells nothing: 28P01 for the outsider, the
        # stats user and an unknown name alike.
        for user in ("outsider", "watcher", "no_such_user"):
            with self.subTest(user=user):
                err, requests = self.console_refusal(self.sluice, user, "not-the-password")
                self.assertEqual(err.sqlstate, "28P01", err.fields)
                self.assertEqual(requests, [AUTH_SASL, AUTH_SASL_CONTINUE])
        # The outsider's own databases still work.
        with self.sluice.connect("outsider", self.outsider_password) as conn:
            self.assertEqual(conn.query("SELECT 1"), [["1"]])
        self.assert_serving(self.sluice)

    def test_nobody_is_admitted_by_default(self):
        sluice = self.launch_sluice(pool_mode="transaction")
        self.addCleanup(sluice.stop)
        err, _ = self.console_refusal(sluice, self.client_user, self.client_password)
        self.assertEqual(err.sqlstate, "42501", err.fields)
        r = self.client_psql(sluice, "SHOW POOLS", database="sluice", check=False)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("not allowed", r.stderr)


if __name__ == "__main__":
    harness.main()
