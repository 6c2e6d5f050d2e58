"""Client authentication at sluice: the three methods (scram-sha-256, md5,
plain), users stored as plain text, SCRAM verifier or md5 hash, and failures
that look exactly like PostgreSQL's own and give away nothing about which
users exist."""

import base64

import harness
import pgwire
from harness import ProxyTestCase
from pgwire import AUTH_CLEARTEXT, AUTH_MD5, AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE


class AuthTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.verifier_password = harness.random_password("verifier")
        cls.md5_password = harness.random_password("md5hash")
        plain = {"name": cls.client_user, "password": cls.client_password}
        verifier = {"name": "scram_user",
                    "password": pgwire.scram_verifier(cls.verifier_password)}
        md5_hash = {"name": "md5_user",
                    "password": pgwire.md5_password_hash("md5_user", cls.md5_password)}
        # A SCRAM verifier cannot check an md5 login, nor an md5 hash a SCRAM
        # one; the cleartext method can check all three.
        cls.scram = cls.launch_sluice(users=[plain, verifier], auth="scram-sha-256")
        cls.md5 = cls.launch_sluice(users=[plain, md5_hash], auth="md5")
        cls.plain = cls.launch_sluice(users=[plain, verifier, md5_hash], auth="plain")
        cls.all_sluices = {"scram-sha-256": cls.scram, "md5": cls.md5, "plain": cls.plain}

    @classmethod
    def tearDownClass(cls):
        for s in cls.all_sluices.values():
            s.stop()
        super().tearDownClass()

    def login(self, sluice, user, password, database="postgres"):
        conn = sluice.connect(user, password, database)
        self.addCleanup(conn.close)
        self.assertEqual(conn.query("SELECT current_user"), [[self.upstream_user]])
        return conn

    def login_error(self, sluice, user, password, database="postgres") -> pgwire.ServerError:
        """Attempts a login that must fail with an ErrorResponse; returns it with
        .auth_requests (what the server asked for before failing) attached."""
        conn = pgwire.Connection(harness.HOST, sluice.port, user, password, database)
        with self.assertRaises(pgwire.ServerError) as cm:
            conn.connect()
        cm.exception.auth_requests = conn.auth_requests
        cm.exception.connection = conn
        return cm.exception

    def scram_challenge(self, sluice, user) -> tuple[bytes, int]:
        """The salt (raw bytes) and iteration count of the SCRAM challenge sluice gives
        `user`, from a login with a wrong password (so it fails with 28P01 either way)."""
        err = self.login_error(sluice, user, "not-the-password")
        self.assertEqual(err.sqlstate, "28P01", err.fields)
        first = err.connection.scram_server_first
        self.assertIsNotNone(first, f"no SCRAM challenge for {user}")
        return base64.b64decode(first["s"]), int(first["i"])

    # -- the methods ---------------------------------------------------------

    def test_scram_with_plain_text_user(self):
        conn = self.login(self.scram, self.client_user, self.client_password)
        self.assertEqual(conn.auth_requests[0], AUTH_SASL)
        self.assertEqual(conn.auth_requests[-1], AUTH_OK)
        self.assertIn("SCRAM-SHA-256", conn.sasl_mechanisms)

    def test_scram_with_verifier_user(self):
        conn = self.login(self.scram, "scram_user", self.verifier_password)
        self.assertEqual(conn.auth_requests[0], AUTH_SASL)

    def test_md5_with_plain_text_user(self):
        conn = self.login(self.md5, self.client_user, self.client_password)
        self.assertEqual(conn.auth_requests, [AUTH_MD5, AUTH_OK])

    def test_md5_with_md5_hash_user(self):
        conn = self.login(self.md5, "md5_user", self.md5_password)
        self.assertEqual(conn.auth_requests, [AUTH_MD5, AUTH_OK])

    def test_plain_with_every_kind_of_stored_password(self):
        for user, password in [(self.client_user, self.client_password),
                               ("scram_user", self.verifier_password),
                               ("md5_user", self.md5_password)]:
            with self.subTest(user=user):
                conn = self.login(self.plain, user, password)
                self.assertEqual(conn.auth_requests, [AUTH_CLEARTEXT, AUTH_OK])

    def test_psql_logs_in_with_every_method(self):
        for method, sluice in self.all_sluices.items():
            with self.subTest(auth=method):
                r = self.client_psql(sluice, "SELECT 'ok'")
                self.assertEqual(r.stdout.strip(), "ok")

    # -- failures ------------------------------------------------------------

    def test_wrong_password_and_unknown_user_are_indistinguishable(self):
        for method, sluice in self.all_sluices.items():
            with self.subTest(auth=method):
                wrong = self.login_error(sluice, self.client_user, "not-the-password")
                unknown = self.login_error(sluice, "no_such_user", "not-the-password")
                for err in (wrong, unknown):
                    self.assertEqual(err.sqlstate, "28P01", err.fields)
                    self.assertEqual(err.severity, "FATAL", err.fields)
                # Same text once each user's own name is taken out (PostgreSQL
                # says: password authentication failed for user "NAME").
                self.assertEqual(wrong.message.replace(self.client_user, "<user>"),
                                 unknown.message.replace("no_such_user", "<user>"))
                # And the same exchange before it: an unknown user still gets a
                # full challenge, as PostgreSQL does.
                self.assertEqual(wrong.auth_requests, unknown.auth_requests)
                self.assertTrue(wrong.auth_requests, "failed before any auth request")
                if method == "scram-sha-256":
                    self.assertEqual(wrong.auth_requests, [AUTH_SASL, AUTH_SASL_CONTINUE])

    def test_unknown_users_get_a_stable_salt_of_their_own(self):
        # PostgreSQL gives an unknown role a salt derived from its name (harness_selftest
        # checks that); one fixed salt for every unknown name would tell them apart.
        known = {user: self.scram_challenge(self.scram, user)
                 for user in (self.client_user, "scram_user")}
        unknown = {user: self.scram_challenge(self.scram, user)
                   for user in ("no_such_user", "nobody_else", "x", "scram_userx")}
        seen = {**known, **unknown}
        for user, challenge in seen.items():
            with self.subTest(user=user):  # the same name twice: the same challenge
                self.assertEqual(self.scram_challenge(self.scram, user), challenge)
        salts = [salt for salt, _ in seen.values()]
        self.assertEqual(len(set(salts)), len(salts), "two names share a salt")
        # The same shape: 16-byte salts and 4096 iterations, known or not.
        self.assertEqual({(len(salt), i) for salt, i in known.values()}, {(16, 4096)})
        self.assertEqual({(len(salt), i) for salt, i in unknown.values()}, {(16, 4096)})

    def test_unknown_users_look_like_the_configured_verifiers(self):
        # Verifiers with 10000 iterations and 20-byte salts: an unknown user's challenge
        # must have that shape too, not sluice's own 4096 and 16.
        users = [{"name": f"v{n}", "password": pgwire.scram_verifier(
                     self.verifier_password, salt=bytes([n]) * 20, iterations=10000)}
                 for n in range(3)]
        sluice = self.launch_sluice(users=users, auth="scram-sha-256")
        self.addCleanup(sluice.stop)
        self.assertEqual(self.scram_challenge(sluice, "v1"), (bytes([1]) * 20, 10000))
        for user in ("no_such_user", "nobody_else"):
            with self.subTest(user=user):
                salt, iterations = self.scram_challenge(sluice, user)
                self.assertEqual((len(salt), iterations), (20, 10000))
        # With two shapes configured, each unknown name takes one of them.
        mixed = self.launch_sluice(users=[users[0], {"name": self.client_user,
                                                     "password": self.client_password}])
        self.addCleanup(mixed.stop)
        for n in range(8):
            with self.subTest(user=f"ghost{n}"):
                salt, iterations = self.scram_challenge(mixed, f"ghost{n}")
                self.assertIn((len(salt), iterations), {(20, 10000), (16, 4096)})

    def test_md5_salts_are_fresh_for_known_and_unknown_users(self):
        salts = []
        for user in (self.client_user, "md5_user", "no_such_user", "no_such_user"):
            with self.subTest(user=user):
                err = self.login_error(self.md5, user, "not-the-password")
                self.assertEqual(err.auth_requests, [AUTH_MD5])
                self.assertEqual(len(err.connection.md5_salt), 4)
                salts.append(err.connection.md5_salt)
        self.assertEqual(len(set(salts)), len(salts), salts)

    def test_wrong_password_for_stored_hashes(self):
        for method, user in [("scram-sha-256", "scram_user"), ("md5", "md5_user"),
                             ("plain", "scram_user"), ("plain", "md5_user")]:
            with self.subTest(auth=method, user=user):
                err = self.login_error(self.all_sluices[method], user, "not-the-password")
                self.assertEqual(err.sqlstate, "28P01", err.fields)

    def test_wrong_password_with_psql(self):
        r = self.client_psql(self.scram, "SELECT 1", password="not-the-password", check=False)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("password authentication failed", r.stderr)

    def test_unknown_database(self):
        err = self.login_error(self.scram, self.client_user, self.client_password,
                               database="no_such_db")
        self.assertEqual(err.sqlstate, "3D000", err.fields)
        r = self.client_psql(self.scram, "SELECT 1", database="no_such_db", check=False)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("no_such_db", r.stderr)
        self.assert_serving(self.scram)

    def test_upstream_password_with_url_reserved_characters(self):
        password = "p@ss:w/rd?#&=%+ " + harness.random_password("odd")
        self.pg.create_role("odd_upstream", password)
        sluice = self.launch_sluice(upstream_url=self.pg.url("odd_upstream", password))
        self.addCleanup(sluice.stop)
        r = self.client_psql(sluice, "SELECT current_user")
        self.assertEqual(r.stdout.strip(), "odd_upstream")


if __name__ == "__main__":
    harness.main()
