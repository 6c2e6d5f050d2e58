"""A prepared statement's identity is its text in its context (issues 13.3 and 17.3): the
database, the user, and the settings that change what the text means, search_path above all.
Two clients with the same SQL in different schemas never share a server-side statement, so
one tenant's DDL never breaks another's cached plan, and a Parse that sluice answers without a
server ("some server already accepted this") is answered only for the same context.

psycopg 3 with prepare_threshold=0 prepares every statement server-side, as drivers do."""

import unittest

import psycopg

import harness
import pgwire
from harness import HOST, ProxyTestCase

TENANTS = ("tenant_a", "tenant_b")


class StatementContextTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        setup = "CREATE SCHEMA only_a AUTHORIZATION app; CREATE TABLE only_a.only_here (v int);"
        setup += "ALTER TABLE only_a.only_here OWNER TO app; CREATE SCHEMA only_b AUTHORIZATION app;"
        for t in TENANTS:
            setup += (f"CREATE SCHEMA {t} AUTHORIZATION app; CREATE TABLE {t}.items (id int, "
                      f"owner text); INSERT INTO {t}.items VALUES (1, '{t}');"
                      f"ALTER TABLE {t}.items OWNER TO app;")
        cls.pg.psql(setup)
        cls.sluice = cls.launch_sluice(pool_mode="transaction", pool_size=2)

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def tenant(self, schema: str, *, via_set: bool = False):
        options = "" if via_set else f"-c search_path={schema}"
        conn = psycopg.connect(host=HOST, port=self.sluice.port, user=self.client_user,
                               password=self.client_password, dbname="postgres",
                               options=options, autocommit=True, prepare_threshold=0,
                               connect_timeout=5)
        self.addCleanup(conn.close)
        if via_set:
            conn.execute(f"SET search_path = {schema}")
        return conn

    def test_a_local_parse_answer_is_only_for_the_same_search_path(self):
        # Client a prepares a statement its search_path resolves; some server accepted it.
        a = self.sluice.connect(self.client_user, self.client_password,
                                params={"options": "-c search_path=only_a"})
        self.addCleanup(a.close_without_terminate)
        a.send_raw(pgwire.parse_message("s", "SELECT v FROM only_here") + pgwire.frontend_message("S"))
        self.assertEqual(pgwire.errors_in(pgwire.read_until_ready(a)), [])
        # Client b's search_path has no such table: PostgreSQL refuses the Parse itself.
        b = self.sluice.connect(self.client_user, self.client_password,
                                params={"options": "-c search_path=only_b"})
        self.addCleanup(b.close_without_terminate)
        b.send_raw(pgwire.parse_message("s", "SELECT v FROM only_here") + pgwire.frontend_message("S"))
        replies = pgwire.read_until_ready(b)
        self.assertEqual([e.sqlstate for e in pgwire.errors_in(replies)], ["42P01"],
                         "the Parse was accepted for a search_path that cannot resolve it")
        self.assertNotIn("1", [kind for kind, _ in replies])

    def test_one_tenants_ddl_does_not_break_another(self):
        # Each tenant in several connections, by startup option and by SET, all sharing 2 servers.
        clients = {t: [self.tenant(t), self.tenant(t, via_set=True)] for t in TENANTS}
        query = "SELECT owner FROM items WHERE id = %s"
        for _ in range(3):
            for t, conns in clients.items():
                for conn in conns:
                    self.assertEqual(conn.execute(query, (1,)).fetchall(), [(t,)])
        # tenant_a's table changes shape; tenant_b's statements must not notice.
        self.pg.psql("ALTER TABLE tenant_a.items ADD COLUMN extra int")
        for _ in range(6):
            for conn in clients["tenant_b"]:
                self.assertEqual(conn.execute(query, (1,)).fetchall(), [("tenant_b",)])
                self.assertEqual(conn.execute("SELECT * FROM items").fetchall(),
                                 [(1, "tenant_b")])
        # And tenant_a reads its own rows (a SELECT * now has three columns there).
        for conn in clients["tenant_a"]:
            try:
                rows = conn.execute("SELECT * FROM items").fetchall()
            except psycopg.errors.FeatureNotSupported:
                # PostgreSQL itself refuses the old plan of this client's own statement once.
                rows = conn.execute("SELECT * FROM items").fetchall()
            self.assertEqual(rows, [(1, "tenant_a", None)])


if __name__ == "__main__":
    harness.main()
