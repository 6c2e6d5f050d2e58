"""Checks the harness itself against PostgreSQL directly, without sluice: the
cluster lifecycle, the helpers, the wire client's three password methods and
error fields, and that cleanup happens even when the test process is killed.
If these fail, a failing sluice test says nothing about sluice."""

import base64
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import unittest

import harness
import pgwire
from harness import PgCluster


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster(hba_rules=[
            "host all md5_user 127.0.0.1/32 md5",
            "host all plain_user 127.0.0.1/32 password",
        ])

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_psql_and_roles(self):
        self.assertEqual(self.pg.psql("SELECT 1"), "1")
        self.pg.create_role("alice", "alice-pw")
        self.pg.create_database("alicedb", owner="alice")
        out = harness.psql(self.pg.port, "SELECT current_user, current_database()",
                           user="alice", password="alice-pw", database="alicedb").stdout
        self.assertEqual(out.strip(), "alice|alicedb")

    def test_listens_on_loopback_tcp_and_own_socket_only(self):
        self.assertEqual(self.pg.psql("SHOW listen_addresses"), "127.0.0.1")
        self.assertEqual(self.pg.psql("SHOW unix_socket_directories"), str(self.pg.sockdir))
        self.assertEqual(self.pg.psql("SHOW password_encryption"), "scram-sha-256")
        self.assertEqual(self.pg.psql("SHOW port"), str(self.pg.port))

    def test_wrong_password_fails(self):
        r = harness.psql(self.pg.port, "SELECT 1", user="postgres", password="nope", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("password authentication failed", r.stderr)

    def test_wire_scram(self):
        with self.pg.connect() as conn:
            self.assertEqual(conn.auth_requests[0], pgwire.AUTH_SASL)
            self.assertEqual(conn.auth_requests[-1], pgwire.AUTH_OK)
            self.assertEqual(conn.query("SELECT 1, NULL::text"), [["1", None]])
            self.assertEqual(len(conn.query("SELECT generate_series(1, 1000)")), 1000)
            self.assertEqual(conn.transaction_status, "I")

    def test_wire_md5_and_cleartext(self):
        self.pg.psql("SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'm-pw'")
        self.pg.create_role("plain_user", "p-pw")
        stored = self.pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'md5_user'")
        self.assertEqual(stored, pgwire.md5_password_hash("md5_user", "m-pw"))
        with self.pg.connect("md5_user", "m-pw") as conn:
            self.assertEqual(conn.auth_requests, [pgwire.AUTH_MD5, pgwire.AUTH_OK])
        with self.pg.connect("plain_user", "p-pw") as conn:
            self.assertEqual(conn.auth_requests, [pgwire.AUTH_CLEARTEXT, pgwire.AUTH_OK])

    def test_scram_verifier_matches_postgres(self):
        verifier = pgwire.scram_verifier("v-pw")
        self.pg.psql(f"CREATE ROLE verifier_user LOGIN PASSWORD '{verifier}'")
        stored = self.pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'verifier_user'")
        self.assertEqual(stored, verifier)  # PostgreSQL stored it as given: a valid verifier
        with self.pg.connect("verifier_user", "v-pw") as conn:
            self.assertEqual(conn.query("SELECT current_user"), [["verifier_user"]])

    def test_error_fields(self):
        with self.assertRaises(pgwire.ServerError) as cm:
            self.pg.connect("postgres", "wrong")
        self.assertEqual(cm.exception.sqlstate, "28P01")
        self.assertEqual(cm.exception.severity, "FATAL")
        with self.assertRaises(pgwire.ServerError) as cm:
            self.pg.connect(database="no_such_db")
        self.assertEqual(cm.exception.sqlstate, "3D000")
        with self.pg.connect() as conn:
            with self.assertRaises(pgwire.ServerError) as cm:
                conn.query("SELECT * FROM no_such_table")
            self.assertEqual(cm.exception.sqlstate, "42P01")
            self.assertEqual(conn.query("SELECT 2"), [["2"]])  # still usable

    def test_pgbench_parse(self):
        self.pg.psql("CREATE DATABASE bench")
        init = harness.pgbench(self.pg.port, ["-i", "-s", "1", "-q"], user="postgres",
                               password=self.pg.superuser_password, database="bench")
        self.assertEqual(init.returncode, 0, init.stderr)
        r = harness.pgbench(self.pg.port, ["-c", "2", "-j", "2", "-T", "1", "-M", "extended"],
                            user="postgres", password=self.pg.superuser_password,
                            database="bench")
        self.assertEqual(r.returncode, 0, r.stderr)
        stats = harness.parse_pgbench(r.stdout)
        self.assertEqual(stats["failed"], 0)
        self.assertGreater(stats["processed"], 0)
        self.assertEqual(stats["mode"], "extended")

    def test_restart_keeps_port_and_data(self):
        pg = PgCluster()
        pg.psql("CREATE TABLE t AS SELECT 42 AS x")
        port = pg.port
        pg.restart()
        self.assertEqual(pg.port, port)
        self.assertEqual(pg.psql("SELECT x FROM t"), "42")
        pg.destroy()
        self.assertFalse(pg.running())
        self.assertFalse(pg.base.exists())


class PostgresReferenceTest(unittest.TestCase):
    """The sluice tests hold sluice to PostgreSQL's own behaviour. These check,
    against PostgreSQL itself, that the expectations they encode are right."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()
        cls.pg.create_role("app", "app-pw")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def login_error(self, user, password, database="postgres"):
        conn = pgwire.Connection(harness.HOST, self.pg.port, user, password, database)
        with self.assertRaises(pgwire.ServerError) as cm:
            conn.connect()
        return cm.exception, conn.auth_requests

    def test_wrong_password_and_unknown_user_are_indistinguishable(self):
        wrong, wrong_requests = self.login_error("app", "nope")
        unknown, unknown_requests = self.login_error("no_such_user", "nope")
        self.assertEqual((wrong.sqlstate, unknown.sqlstate), ("28P01", "28P01"))
        self.assertEqual(wrong.message, 'password authentication failed for user "app"')
        self.assertEqual(wrong.message.replace("app", "<user>"),
                         unknown.message.replace("no_such_user", "<user>"))
        self.assertEqual(wrong_requests, [pgwire.AUTH_SASL, pgwire.AUTH_SASL_CONTINUE])
        self.assertEqual(wrong_requests, unknown_requests)

    def test_unknown_users_get_a_stable_salt_of_their_own(self):
        def challenge(user):
            conn = pgwire.Connection(harness.HOST, self.pg.port, user, "nope", "postgres")
            with self.assertRaises(pgwire.ServerError):
                conn.connect()
            first = conn.scram_server_first
            return base64.b64decode(first["s"]), int(first["i"])

        known = challenge("app")
        unknown, other = challenge("no_such_user"), challenge("nobody_else")
        self.assertEqual(challenge("no_such_user"), unknown)
        self.assertEqual(challenge("app"), known)
        self.assertEqual(len({known[0], unknown[0], other[0]}), 3)
        self.assertEqual({(len(salt), i) for salt, i in (known, unknown, other)}, {(16, 4096)})

    def test_unknown_database(self):
        err, _ = self.login_error("app", "app-pw", "no_such_db")
        self.assertEqual(err.sqlstate, "3D000")

    def test_malformed_startup_answers(self):
        import test_malformed_startup as m  # a module attribute: its tests are not collected

        def rejected(payload, half_close=False):
            reply = harness.startup_exchange(self.pg.port, payload, half_close=half_close)
            return m.check_rejection(self, reply)

        seed = m.random_seed()
        for i, payload in enumerate(m.random_payloads(seed)):
            with self.subTest(i=i, seed=seed):
                rejected(payload, half_close=True)
        version = rejected(pgwire.startup_packet({"user": "app"}, version=(9 << 16) | 9))
        self.assertEqual(version.get("C"), "0A000")
        no_user = rejected(pgwire.startup_packet({"database": "postgres"}))
        self.assertEqual(no_user.get("C"), "28000")
        rejected(struct.pack("!II", 100000, pgwire.PROTOCOL_V3) + b"user\0app\0")
        for length in (0, 3, 4, 7):
            rejected(struct.pack("!I", length) + b"\0" * 8)


class HelperTest(unittest.TestCase):
    def test_run_timeout_kills_the_group(self):
        started = time.monotonic()
        with self.assertRaises(harness.CommandTimeout):
            harness.run(["sh", "-c", "sleep 60 & sleep 60"], timeout=1)
        self.assertLess(time.monotonic() - started, 10)

    def test_run_requires_timeout(self):
        with self.assertRaises(ValueError):
            harness.run(["true"], timeout=None)

    def test_yaml(self):
        text = harness.to_yaml({"a": {"b": 1, "c": "x"}, "l": [{"n": "u", "p": "q"}, "s"],
                                "e": [], "t": True})
        self.assertEqual(text, textwrap.dedent("""\
            a:
              b: 1
              c: "x"
            l:
              - n: "u"
                p: "q"
              - "s"
            e: []
            t: true
            """))
        try:
            import yaml  # python3-yaml, when present, double-checks the emitter
        except ImportError:
            return
        cfg = harness.sluice_config(listen_port=1, upstream_url="postgresql://a:b@h:1/d",
                                    users=[{"name": "u", "password": "SCRAM-SHA-256$4096:x$y:z"}])
        self.assertEqual(yaml.safe_load(harness.to_yaml(cfg)), cfg)

    def test_sluice_missing_binary_fails_fast(self):
        s = harness.Sluice({"x": 1}, port=harness.free_port(), binary="/nonexistent/sluice")
        with self.assertRaises(FileNotFoundError):
            s.start()

    def test_sluice_that_exits_fails_fast(self):
        s = harness.Sluice({"x": 1}, port=harness.free_port(), binary="/bin/false")
        started = time.monotonic()
        with self.assertRaises(harness.SluiceDied):
            s.start()
        self.assertLess(time.monotonic() - started, 5)

    def test_sluice_that_never_listens_times_out(self):
        s = harness.Sluice({"x": 1}, port=harness.free_port(), binary="/bin/sleep")
        # /bin/sleep -c FILE exits with an error; use a wrapper that hangs instead.
        script = s.dir / "hang.sh"
        script.write_text("#!/bin/sh\nexec sleep 600\n")
        script.chmod(0o755)
        s.binary = str(script)
        started = time.monotonic()
        with self.assertRaises(TimeoutError):
            s.start(timeout=2)
        self.assertLess(time.monotonic() - started, 10)
        self.assertFalse(s.alive())


class CleanupAfterKillTest(unittest.TestCase):
    """A test process killed by SIGKILL (a ctest timeout) must not leave a
    postmaster or a temporary directory behind."""

    def test_sigkill_of_test_process(self):
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent("""\
                import sys, time
                sys.path.insert(0, %r)
                import harness
                pg = harness.PgCluster()
                print(pg.proc.pid, pg.base, flush=True)
                time.sleep(600)
                """) % str(harness.HERE)],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            line = child.stdout.readline()  # bounded: PgCluster() start is bounded
            pid_text, base = line.split()
            pid = int(pid_text)
            self.assertTrue(os.path.exists(base))
            os.kill(pid, 0)  # the postmaster is running
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
            child.stdout.close()

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return not os.path.exists(base)
        harness.wait_until(gone, timeout=15, what="postmaster killed and dir removed")


if __name__ == "__main__":
    harness.main()
