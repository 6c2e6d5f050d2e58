"""Walking skeleton: queries relay through sluice (session pool, SCRAM on both
sides), and the command line (--check, --version, --help) behaves."""

import re
import unittest

import harness
import pgwire
from harness import ProxyTestCase, sluice_cli, sluice_config, to_yaml


class QueryTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice(pool_mode="session")

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def test_select_1(self):
        r = self.client_psql(self.sluice, "SELECT 1")
        self.assertEqual(r.stdout.strip(), "1")

    def test_runs_as_upstream_role(self):
        r = self.client_psql(self.sluice, "SELECT current_user, current_database()")
        self.assertEqual(r.stdout.strip(), f"{self.upstream_user}|postgres")

    def test_multi_row_select_matches_direct(self):
        sql = ("SELECT g, md5(g::text), repeat('x', g % 97), CASE WHEN g % 5 = 0 THEN NULL END "
               "FROM generate_series(1, 20000) g ORDER BY g")
        via_sluice = self.client_psql(self.sluice, sql).stdout
        direct = self.pg.psql(sql, user=self.upstream_user, password=self.upstream_password)
        self.assertEqual(len(via_sluice.splitlines()), 20000)
        self.assertEqual(via_sluice.strip(), direct)

    def test_large_value(self):
        # 3 MB in one DataRow: bigger than any sane relay buffer.
        r = self.client_psql(self.sluice, "SELECT repeat('abc', 1000000)")
        self.assertEqual(r.stdout.strip(), "abc" * 1000000)

    def test_session_state_is_kept(self):
        r = self.client_psql(self.sluice, """
            CREATE TEMP TABLE scratch (x int);
            INSERT INTO scratch SELECT generate_series(1, 10);
            SET application_name = 'sluice-test';
            SELECT sum(x), current_setting('application_name') FROM scratch;
        """)
        self.assertEqual(r.stdout.strip(), "55|sluice-test")

    def test_error_keeps_the_client_connected(self):
        with self.sluice.connect(self.client_user, self.client_password) as conn:
            with self.assertRaises(pgwire.ServerError) as cm:
                conn.query("SELECT * FROM no_such_table")
            self.assertEqual(cm.exception.sqlstate, "42P01")
            self.assertEqual(conn.query("SELECT 7"), [["7"]])

    def test_server_error_reaches_psql(self):
        r = self.client_psql(self.sluice, "SELECT 1/0", check=False)
        self.assertEqual(r.returncode, 3)  # psql: error in script with ON_ERROR_STOP
        self.assertIn("division by zero", r.stderr)

    def test_url_application_name_is_what_a_client_without_one_sees(self):
        url = self.pg.url(self.upstream_user, self.upstream_password) + "?application_name=pooled"
        for mode in ("session", "transaction"):
            with self.subTest(pool_mode=mode):
                sluice = self.launch_sluice(upstream_url=url, pool_mode=mode)
                self.addCleanup(sluice.stop)
                # The wire client sends no application_name: the server's, from the url.
                with sluice.connect(self.client_user, self.client_password) as conn:
                    self.assertEqual(conn.parameters.get("application_name"), "pooled")
                    self.assertEqual(conn.query("SHOW application_name"), [["pooled"]])
                # psql sends its own, which wins as it would against PostgreSQL.
                r = self.client_psql(sluice, "SHOW application_name")
                self.assertEqual(r.stdout.strip(), "psql")
                with sluice.connect(self.client_user, self.client_password) as conn:
                    self.assertEqual(conn.query("SHOW application_name"), [["pooled"]])

    def test_parallel_clients(self):
        conns = [self.sluice.connect(self.client_user, self.client_password) for _ in range(4)]
        try:
            pids = {c.query("SELECT pg_backend_pid()")[0][0] for c in conns}
            # Session mode: every client holds its own server connection.
            self.assertEqual(len(pids), 4)
        finally:
            for c in conns:
                c.close()


class CliTest(unittest.TestCase):
    """sluice's command line. Needs no PostgreSQL: --check must not connect."""

    def write_config(self, text: str):
        path = harness.make_temp_dir("sluice-cfg-") / "sluice.yaml"
        path.write_text(text)
        return path

    def good_config_text(self) -> str:
        port = harness.free_port()
        return to_yaml(sluice_config(
            listen_port=port,
            upstream_url=harness.pg_url("app", "upstream-pw", harness.free_port()),
            users=[{"name": "app", "password": "client-pw"}],
            pool_mode="session"))

    def output(self, r) -> str:
        return r.stdout + r.stderr

    def test_version(self):
        r = sluice_cli("--version")
        self.assertEqual(r.returncode, 0, self.output(r))
        self.assertIn("sluice", self.output(r).lower())
        self.assertRegex(self.output(r), r"\b\d+\.\d+\.\d+\b")

    def test_help(self):
        r = sluice_cli("--help")
        self.assertEqual(r.returncode, 0, self.output(r))
        self.assertIn("-c", self.output(r))
        self.assertIn("--check", self.output(r))
        # The config keys, from the key table (etc/sluice.yaml says --help lists them):
        # name, type, default, reloadable, and what it does.
        for line in ("pool.size  (integer, 1..100000, default 20, reloadable)",
                     "listen.port  (integer, 1..65535, default 6432, needs restart)",
                     "databases.<name>.url  (connection url, required, reloadable)",
                     "users[].password  (string, required, reloadable)"):
            self.assertIn(line + "\n", r.stdout)
        self.assertIn("Server connections the pool keeps for clients.", r.stdout)

    def test_check_accepts_good_config(self):
        path = self.write_config(self.good_config_text())
        r = sluice_cli("--check", "-c", str(path))
        self.assertEqual(r.returncode, 0, self.output(r))

    def test_check_reports_bad_value_with_position(self):
        text = self.good_config_text()
        good = '  mode: "session"'
        self.assertIn(good, text)
        text = text.replace(good, '  mode: "bogus"')
        line = text.splitlines().index('  mode: "bogus"') + 1
        path = self.write_config(text)
        r = sluice_cli("--check", "-c", str(path))
        out = self.output(r)
        self.assertEqual(r.returncode, 1, out)
        m = re.search(re.escape(str(path)) + r":(\d+):(\d+)", out)
        self.assertIsNotNone(m, f"no {path}:line:col in output:\n{out}")
        self.assertEqual(int(m.group(1)), line, out)
        self.assertGreaterEqual(int(m.group(2)), 1, out)
        self.assertIn("mode", out)

    def test_check_reports_yaml_syntax_error_with_position(self):
        path = self.write_config("listen:\n  port: [6432\npool:\n  mode: session\n")
        r = sluice_cli("--check", "-c", str(path))
        out = self.output(r)
        self.assertEqual(r.returncode, 1, out)
        self.assertRegex(out, re.escape(str(path)) + r":\d+:\d+")

    def test_check_refuses_a_url_that_asks_for_tls(self):
        # sluice speaks no TLS to servers yet: connecting in plain text would be a silent
        # downgrade, so --check (and startup) refuse it, at the url's line.
        text = self.good_config_text()
        url_line = next(line for line in text.splitlines() if line.strip().startswith("url:"))
        for setting in ("sslmode=require", "sslmode=verify-full", "sslrootcert=/etc/ca.pem",
                        "channel_binding=require"):
            with self.subTest(setting=setting):
                url = url_line.split("url:", 1)[1].strip().strip('"')
                bad = text.replace(url_line, url_line.replace(url, f"{url}?{setting}"))
                path = self.write_config(bad)
                r = sluice_cli("--check", "-c", str(path))
                out = self.output(r)
                self.assertEqual(r.returncode, 1, out)
                line = bad.splitlines().index(url_line.replace(url, f"{url}?{setting}")) + 1
                self.assertRegex(out, re.escape(f"{path}:{line}:") + r"\d+: databases\.postgres"
                                 r"\.url: .*TLS, which sluice does not support")
                self.assertNotIn("upstream-pw", out)

    def test_check_missing_file_fails(self):
        r = sluice_cli("--check", "-c", "/nonexistent/sluice.yaml")
        self.assertNotEqual(r.returncode, 0, self.output(r))
        self.assertIn("/nonexistent/sluice.yaml", self.output(r))

    def test_shipped_configs_validate(self):
        env = {  # every variable the samples refer to
            "SLUICE_UPSTREAM_URL": harness.pg_url("app", "pw", 5999),
            "SLUICE_USER": "app",
            "SLUICE_PASSWORD": "client-pw",
            "SLUICE_LISTEN_PORT": "6999",
            "SLUICE_PORT": "6999",
            "APP_PASSWORD": "client-pw",
            "APP_DB_PASSWORD": "server-pw",
        }
        checked = 0
        for name in ("sluice.yaml", "sluice.local.yaml"):
            path = harness.SOURCE_DIR / "etc" / name
            if not path.exists():
                continue
            with self.subTest(config=name):
                r = sluice_cli("--check", "-c", str(path), env=env)
                self.assertEqual(r.returncode, 0, self.output(r))
                checked += 1
        if checked == 0:
            self.skipTest("no etc/sluice*.yaml yet")


if __name__ == "__main__":
    harness.main()
