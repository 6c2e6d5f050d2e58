"""Session settings in transaction mode: every client sees its own values and never another
client's, for settings PostgreSQL 15 reports (TimeZone) and, above all, for those it does not
(search_path, work_mem, statement_timeout, custom settings), however they were changed: SET,
SET in a committed or rolled-back transaction, SET LOCAL, set_config(), a DO block, RESET,
RESET ALL. Ten clients share two servers, so every step lands on servers other clients used.

The same assertions hold against PostgreSQL directly (each client there has its own backend),
which is what makes them the right expectations."""

import itertools
import unittest

import psycopg2

import harness
from harness import HOST, ProxyTestCase

CLIENTS = 10
ROUNDS = 6


class SessionSettingsTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        schemas = "".join(f"CREATE SCHEMA s{i} AUTHORIZATION app;" for i in range(CLIENTS))
        cls.pg.psql(schemas)
        cls.sluice = cls.launch_sluice(pool_mode="transaction", pool_size=2,
                                       pool={"timeout": "20s"})

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def connect(self, **kwargs):
        conn = psycopg2.connect(host=HOST, port=self.sluice.port, user=self.client_user,
                                password=self.client_password, dbname="postgres",
                                connect_timeout=5, **kwargs)
        conn.autocommit = True
        self.addCleanup(conn.close)
        return conn

    @staticmethod
    def settings_of(conn) -> dict:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('search_path'), current_setting('work_mem'), "
                        "current_setting('statement_timeout'), "
                        "current_setting('app.tenant', true), current_setting('TimeZone')")
            search_path, work_mem, timeout, tenant, zone = cur.fetchone()
        return {"search_path": search_path, "work_mem": work_mem, "statement_timeout": timeout,
                "app.tenant": tenant or "", "TimeZone": zone}

    def check_everyone(self, conns, expected):
        """Every client, round after round and in changing order, sees exactly its values."""
        for round_ in range(ROUNDS):
            order = list(range(len(conns)))
            order = order[round_ % len(order):] + order[:round_ % len(order)]
            for i in order:
                self.assertEqual(self.settings_of(conns[i]), expected[i],
                                 f"client {i}, round {round_}")

    def test_each_way_of_setting_stays_with_its_client(self):
        # Ten ways to change settings, one per client; clients 0 and 9 also check that a
        # client that changes nothing keeps the defaults whatever the others did.
        conns = [self.connect() for _ in range(CLIENTS)]
        defaults = self.settings_of(conns[0])
        self.assertEqual(defaults["work_mem"], "4MB")
        expected = [dict(defaults) for _ in range(CLIENTS)]

        def run(i, *statements, transaction=False):
            conn = conns[i]
            if transaction:
                conn.autocommit = False
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
            if transaction:
                conn.commit()
                conn.autocommit = True

        run(1, "SET search_path = s1, public", "SET work_mem = '9MB'")
        expected[1].update(search_path="s1, public", work_mem="9MB")
        run(2, "SET statement_timeout = '2s'; SET app.tenant = 'two'")
        expected[2].update(statement_timeout="2s")
        expected[2]["app.tenant"] = "two"
        run(3, "SET search_path = s3", "SET work_mem = '3MB'", transaction=True)
        expected[3].update(search_path="s3", work_mem="3MB")
        # Rolled back: nothing sticks.
        conns[4].autocommit = False
        with conns[4].cursor() as cur:
            cur.execute("SET search_path = s4")
            cur.execute("SET work_mem = '44MB'")
        conns[4].rollback()
        conns[4].autocommit = True
        # SET LOCAL ends with its transaction.
        run(5, "SET LOCAL work_mem = '55MB'", "SET LOCAL search_path = s5", transaction=True)
        run(6, "SELECT set_config('search_path', 's6', false), "
               "set_config('app.tenant', 'six', false)")
        expected[6].update(search_path="s6")
        expected[6]["app.tenant"] = "six"
        run(7, "DO $$ BEGIN PERFORM set_config('work_mem', '7MB', false); "
               "SET statement_timeout = '7s'; END $$")
        expected[7].update(work_mem="7MB", statement_timeout="7s")
        run(8, "SET work_mem = '88MB'", "SET TimeZone = 'Asia/Tokyo'", "RESET work_mem")
        expected[8].update(TimeZone="Asia/Tokyo")
        self.check_everyone(conns, expected)

        # And back: RESET ALL and DISCARD ALL return a client to its defaults.
        run(1, "RESET ALL")
        expected[1] = dict(defaults)
        run(6, "DISCARD ALL")
        expected[6] = dict(defaults)
        self.check_everyone(conns, expected)
        self.assert_serving(self.sluice)

    def test_startup_settings_survive_reset(self):
        # A client's startup options are what RESET returns to, as on PostgreSQL.
        conn = self.connect(options="-c search_path=s2 -c work_mem=12MB")
        others = [self.connect() for _ in range(3)]
        for other in others:
            with other.cursor() as cur:
                cur.execute("SET work_mem = '1MB'; SET search_path = s0")
        with conn.cursor() as cur:
            cur.execute("SET work_mem = '33MB'")
            cur.execute("RESET work_mem")
        for _ in range(4):
            self.assertEqual(self.settings_of(conn)["work_mem"], "12MB")
            self.assertEqual(self.settings_of(conn)["search_path"], "s2")
            for other in others:
                self.assertEqual(self.settings_of(other)["work_mem"], "1MB")
        with conn.cursor() as cur:
            cur.execute("RESET ALL")
        self.assertEqual(self.settings_of(conn)["work_mem"], "12MB")
        self.assertEqual(self.settings_of(conn)["search_path"], "s2")

    def test_a_role_stays_with_its_client(self):
        # SET ROLE changes who the session is: another client must never run as that role.
        self.pg.psql("DO $$ BEGIN CREATE ROLE reader NOLOGIN; EXCEPTION WHEN duplicate_object "
                     "THEN NULL; END $$; GRANT reader TO app;")
        conns = [self.connect() for _ in range(4)]
        with conns[0].cursor() as cur:
            cur.execute("SET ROLE reader")
        for _ in range(4):
            for i, conn in enumerate(conns):
                with conn.cursor() as cur:
                    cur.execute("SELECT current_user")
                    self.assertEqual(cur.fetchone()[0], "reader" if i == 0 else "app", i)
        with conns[0].cursor() as cur:
            cur.execute("RESET ROLE")
            cur.execute("SELECT current_user")
            self.assertEqual(cur.fetchone()[0], "app")

    def test_extended_protocol_set_is_tracked(self):
        # psycopg2 sends SQL as a simple Query; a Parse/Bind/Execute SET must count the same.
        import pgwire
        conn = self.sluice.connect(self.client_user, self.client_password)
        self.addCleanup(conn.close_without_terminate)
        conn.send_raw(pgwire.parse_message("", "SET search_path = s9") + pgwire.bind_message("", "")
                      + pgwire.execute_message() + pgwire.frontend_message("S"))
        pgwire.read_until_ready(conn)
        others = [self.connect() for _ in range(3)]
        for _ in range(3):
            for other in others:
                self.assertEqual(self.settings_of(other)["search_path"], '"$user", public')
            self.assertEqual(conn.query("SELECT current_setting('search_path')"), [["s9"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
