"""TLS towards clients (listen.tls): libpq's sslmode=require and verify-full through
sluice, mode require refusing plain clients with 28000, SCRAM-SHA-256-PLUS with
channel_binding=require, client certificates (verify-full: the CN must be the user),
PostgreSQL 17's direct TLS with its ALPN rule, and broken or unfinished handshakes that
cost only their own connection. Certificates are made by the test (tls_certs)."""

import socket
import ssl
import struct
import unittest

import harness
import pgwire
from harness import ProxyTestCase
from tls_certs import TestCertificates

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def read_backend_message(sock) -> tuple[bytes, bytes]:
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    kind, length = head[:1], struct.unpack("!i", head[1:])[0]
    body = b""
    while len(body) < length - 4:
        chunk = sock.recv(length - 4 - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return kind, body


def closed_by_peer(sock, timeout: float = 60) -> bool:
    """Whether the peer closes `sock` (EOF or reset) within `timeout`; bytes it sends first
    are read and dropped. A bound for the test, not a timing assertion."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


class TlsClientTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs_dir = harness.make_temp_dir("sluice-tls-certs-")
        cls.certs = TestCertificates(cls.certs_dir)
        tls = {"cert_file": str(cls.certs.server_cert), "key_file": str(cls.certs.server_key)}
        # mode left out: allow, since a certificate is given.
        cls.allow = cls.launch_sluice(listen={"tls": dict(tls, handshake_timeout="1s")})
        cls.require = cls.launch_sluice(listen={"tls": dict(tls, mode="require")})
        cls.verify = cls.launch_sluice(listen={"tls": dict(
            tls, mode="require", ca_file=str(cls.certs.ca_cert), verify="verify-full")})
        cls.plain = cls.launch_sluice()
        cls.pooled = cls.launch_sluice(pool_mode="transaction", pool_size=2,
                                       listen={"tls": dict(tls, mode="require")})

    @classmethod
    def tearDownClass(cls):
        for s in (cls.allow, cls.require, cls.verify, cls.plain, cls.pooled):
            s.stop()
        super().tearDownClass()

    def tls_env(self, sslmode: str, **extra) -> dict:
        env = {"PGSSLMODE": sslmode, "PGSSLROOTCERT": str(self.certs.ca_cert)}
        env.update(extra)
        return env

    def tls_psql(self, sluice, sql: str, env: dict, password: str | None = None,
                 host: str = harness.HOST):
        return harness.psql(sluice.port, sql, user=self.client_user,
                            password=password or self.client_password, host=host,
                            env_extra=env, check=False)

    def psql_ok(self, sluice, sql: str, **env) -> str:
        r = self.tls_psql(sluice, sql, env)
        self.assertEqual(r.returncode, 0, f"{r.stderr}\nsluice log:\n{sluice.log_tail()}")
        return r.stdout.strip()

    def psql_error(self, sluice, host: str = harness.HOST, **env) -> str:
        r = self.tls_psql(sluice, "SELECT 1", env, host=host)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stderr

    # -- libpq's sslmodes -----------------------------------------------------

    def test_sslmode_require(self):
        self.assertEqual(self.psql_ok(self.allow, "SELECT 41 + 1", PGSSLMODE="require"), "42")

    def test_sslmode_verify_full(self):
        self.assertEqual(
            self.psql_ok(self.allow, "SELECT current_user", **self.tls_env("verify-full")),
            self.upstream_user)

    def test_allow_still_serves_plain_clients(self):
        self.assertEqual(self.psql_ok(self.allow, "SELECT 1", PGSSLMODE="disable"), "1")

    def test_wrong_ca_fails_with_libpqs_error(self):
        err = self.psql_error(self.allow, PGSSLMODE="verify-ca",
                              PGSSLROOTCERT=str(self.certs.other_ca_cert))
        self.assertIn("certificate verify failed", err)

    def test_wrong_host_name_fails_with_libpqs_error(self):
        # The certificate names 127.0.0.1 and localhost; hostaddr keeps the connection
        # on loopback while libpq checks the name "sluice.invalid".
        err = self.psql_error(self.allow, host="sluice.invalid", **self.tls_env("verify-full"),
                              PGHOSTADDR=harness.HOST)
        self.assertIn("does not match host name", err)

    def test_plain_sluice_refuses_sslmode_require(self):
        err = self.psql_error(self.plain, PGSSLMODE="require")
        self.assertIn("server does not support SSL", err)

    # -- mode: require ----------------------------------------------------------

    def test_require_refuses_plain_client_with_28000(self):
        conn = pgwire.Connection(harness.HOST, self.require.port, self.client_user,
                                 self.client_password, "postgres")
        with self.assertRaises(pgwire.ServerError) as cm:
            conn.connect()
        self.assertEqual(cm.exception.sqlstate, "28000", cm.exception.fields)
        self.assertIn("requires TLS", cm.exception.fields.get("M", ""))

    def test_require_refuses_libpq_sslmode_disable(self):
        self.assertIn("requires TLS", self.psql_error(self.require, PGSSLMODE="disable"))

    def test_require_serves_tls_clients(self):
        self.assertEqual(self.psql_ok(self.require, "SELECT 1", PGSSLMODE="require"), "1")

    # -- channel binding --------------------------------------------------------

    def test_channel_binding_require(self):
        self.assertEqual(
            self.psql_ok(self.allow, "SELECT 1", PGCHANNELBINDING="require",
                         **self.tls_env("verify-full")), "1")

    def test_channel_binding_require_with_psycopg(self):
        import psycopg
        with psycopg.connect(host=harness.HOST, port=self.allow.port, user=self.client_user,
                             password=self.client_password, dbname="postgres",
                             sslmode="verify-full", sslrootcert=str(self.certs.ca_cert),
                             channel_binding="require", connect_timeout=10) as conn:
            self.assertEqual(conn.execute("SELECT 7 * 6").fetchone(), (42,))
            self.assertEqual(conn.pgconn.ssl_in_use, True)

    def test_channel_binding_require_fails_without_tls(self):
        err = self.psql_error(self.plain, PGCHANNELBINDING="require", PGSSLMODE="disable")
        self.assertIn("channel binding", err)

    def test_wrong_password_over_tls_is_28p01(self):
        r = self.tls_psql(self.allow, "SELECT 1", {"PGSSLMODE": "require",
                                                   "PGCHANNELBINDING": "require"},
                          password="wrong")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("password authentication failed", r.stderr)

    # -- client certificates ------------------------------------------------------

    def test_client_certificate_with_the_users_cn(self):
        cert, key = self.certs.client(self.client_user)
        self.assertEqual(self.psql_ok(self.verify, "SELECT 1", PGSSLCERT=str(cert),
                                      PGSSLKEY=str(key), **self.tls_env("verify-full")), "1")

    def test_client_certificate_with_another_cn_is_28000(self):
        cert, key = self.certs.client("mallory")
        err = self.psql_error(self.verify, PGSSLCERT=str(cert), PGSSLKEY=str(key),
                              **self.tls_env("verify-full"))
        self.assertIn("CN mismatch", err)

    def test_no_client_certificate_is_refused(self):
        missing = str(self.certs_dir / "none.crt")
        err = self.psql_error(self.verify, PGSSLCERT=missing, PGSSLKEY=missing,
                              **self.tls_env("verify-full"))
        self.assertIn("certificate", err)
        cert, key = self.certs.client(self.client_user)
        self.assertEqual(self.psql_ok(self.verify, "SELECT 1", PGSSLCERT=str(cert),
                                      PGSSLKEY=str(key), **self.tls_env("verify-full")), "1")

    # -- direct TLS (PostgreSQL 17's sslnegotiation=direct) -----------------------

    def direct_tls(self, port: int, alpn: list[str] | None) -> ssl.SSLSocket:
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        raw = socket.create_connection((harness.HOST, port), timeout=10)
        return context.wrap_socket(raw, server_hostname="localhost")

    def test_direct_tls_with_alpn(self):
        with self.direct_tls(self.allow.port, ["postgresql"]) as tls:
            self.assertEqual(tls.selected_alpn_protocol(), "postgresql")
            tls.sendall(pgwire.startup_packet({"user": self.client_user,
                                               "database": "postgres"}))
            kind, body = read_backend_message(tls)
            self.assertEqual(kind, b"R")
            self.assertEqual(struct.unpack("!i", body[:4])[0], pgwire.AUTH_SASL)
            mechanisms = [m.decode() for m in body[4:].split(b"\0") if m]
            self.assertEqual(mechanisms, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])

    def test_ssl_request_inside_tls_is_refused(self):
        with self.direct_tls(self.allow.port, ["postgresql"]) as tls:
            tls.sendall(SSL_REQUEST)
            kind, body = read_backend_message(tls)
            self.assertEqual(kind, b"E")
            self.assertEqual(pgwire.parse_error_fields(body)["C"], "08P01")

    def test_direct_tls_without_alpn_is_closed(self):
        with self.direct_tls(self.allow.port, None) as tls:
            try:
                tls.sendall(pgwire.startup_packet({"user": self.client_user}))
            except OSError:
                pass
            self.assertTrue(closed_by_peer(tls))
        self.assertIn("without ALPN", self.allow.log_text())

    def test_direct_tls_with_another_alpn_fails_the_handshake(self):
        with self.assertRaises(ssl.SSLError):
            self.direct_tls(self.allow.port, ["h2"])

    def test_sslrequest_with_another_alpn_fails_the_handshake(self):
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        context.set_alpn_protocols(["http/1.1"])
        with socket.create_connection((harness.HOST, self.allow.port), timeout=10) as raw:
            raw.sendall(SSL_REQUEST)
            self.assertEqual(raw.recv(1), b"S")
            with self.assertRaises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname="localhost")

    # -- the relay over TLS ---------------------------------------------------------

    def psycopg_tls(self, sluice):
        import psycopg
        return psycopg.connect(host=harness.HOST, port=sluice.port, user=self.client_user,
                               password=self.client_password, dbname="postgres",
                               sslmode="verify-full", sslrootcert=str(self.certs.ca_cert),
                               connect_timeout=10, autocommit=True)

    def test_transaction_pool_relays_over_tls(self):
        # Clients on TLS share two servers: extended-protocol statements, a 20 MB result, a
        # COPY in both directions and transactions, from four clients at once.
        import threading
        errors = []

        def client(n: int):
            try:
                with self.psycopg_tls(self.pooled) as conn:
                    for i in range(30):
                        self.assertEqual(conn.execute("SELECT %s::int + 1", (i,)).fetchone(),
                                         (i + 1,))
                        with conn.transaction():
                            conn.execute("SELECT pg_catalog.txid_current()")
                    rows = conn.execute("SELECT repeat('x', 1000) FROM "
                                        "generate_series(1, 20000)").fetchall()
                    self.assertEqual(len(rows), 20000)
                    self.assertEqual(rows[-1][0], "x" * 1000)
                    with conn.transaction():
                        conn.execute(f"CREATE TEMP TABLE t{n} (a int, b text) ON COMMIT DROP")
                        with conn.cursor().copy(f"COPY t{n} FROM STDIN") as copy:
                            for i in range(5000):
                                copy.write_row((i, "y" * 100))
                        out = bytearray()
                        with conn.cursor().copy(f"COPY t{n} TO STDOUT") as copy:
                            for chunk in copy:
                                out += chunk
                        self.assertEqual(out.count(b"\n"), 5000)
            except Exception as exc:  # reported below, from the main thread
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertEqual(errors, [])

    def test_pgbench_prepared_over_tls(self):
        script = self.certs_dir / "bench.sql"
        script.write_text("\\set n random(1, 1000)\nSELECT :n + 1;\n")
        r = harness.run(["pgbench", "-n", "-h", harness.HOST, "-p", str(self.pooled.port),
                         "-U", self.client_user, "-M", "prepared", "-c", "4", "-j", "2",
                         "-t", "200", "-f", str(script), "postgres"], 120,
                        env=harness.client_env(self.client_password, PGSSLMODE="require"),
                        check=False)
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        stats = harness.parse_pgbench(r.stdout)
        self.assertEqual(stats.get("processed"), 800, r.stdout)
        self.assertEqual(stats.get("failed"), 0, r.stdout)

    # -- broken handshakes cost one connection ------------------------------------

    def assert_tls_serving(self, sluice):
        self.assertTrue(sluice.alive(), sluice.log_tail())
        self.assertEqual(self.psql_ok(sluice, "SELECT 42", **self.tls_env("verify-full")), "42")

    def test_garbage_after_ssl_request(self):
        with socket.create_connection((harness.HOST, self.allow.port), timeout=10) as bad:
            bad.sendall(SSL_REQUEST)
            self.assertEqual(bad.recv(1), b"S")
            bad.sendall(b"\x16\x03\x01\x00\x05garbage, not a ClientHello" * 20)
            self.assert_tls_serving(self.allow)
            self.assertTrue(closed_by_peer(bad))
        self.assert_tls_serving(self.allow)

    def test_garbage_direct_tls_record(self):
        with socket.create_connection((harness.HOST, self.allow.port), timeout=10) as bad:
            bad.sendall(b"\x16\xff\xff\xff\xff" + bytes(range(256)))
            self.assertTrue(closed_by_peer(bad))
        self.assert_tls_serving(self.allow)

    def test_half_finished_handshake_times_out_alone(self):
        # The ClientHello's first bytes, then silence: handshake_timeout (1s here) ends it,
        # while another client logs in meanwhile.
        with socket.create_connection((harness.HOST, self.allow.port), timeout=10) as slow:
            slow.sendall(SSL_REQUEST)
            self.assertEqual(slow.recv(1), b"S")
            slow.sendall(b"\x16\x03\x01\x02\x00\x01")
            self.assert_tls_serving(self.allow)
            self.assertTrue(closed_by_peer(slow))
        self.assertIn("TLS handshake timed out", self.allow.log_text())
        self.assert_tls_serving(self.allow)

    def test_plaintext_after_ssl_request_is_refused(self):
        # Bytes pipelined behind the SSLRequest were sent before any encryption: 08P01, as
        # PostgreSQL answers (CVE-2021-23214).
        with socket.create_connection((harness.HOST, self.allow.port), timeout=10) as sock:
            sock.sendall(SSL_REQUEST + pgwire.startup_packet({"user": self.client_user}))
            kind, body = read_backend_message(sock)
            self.assertEqual(kind, b"E")
            self.assertEqual(pgwire.parse_error_fields(body)["C"], "08P01")


if __name__ == "__main__":
    unittest.main()
