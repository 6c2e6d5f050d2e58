"""LISTEN in transaction mode (issue 13.5): a LISTEN would subscribe whichever server the client
holds, and its notifications would reach the next client of that server, so sluice refuses it
with 0A000 and says what to do instead; the client carries on. An idle server that receives an
unsolicited message (a notification, a notice) is still a good server: it is not replaced, and
the message reaches nobody. Session mode keeps LISTEN as PostgreSQL has it."""

import select
import time
import unittest

import psycopg2
import psycopg2.errors

import pgwire
from harness import ProxyTestCase, wait_until


class ListenTransactionModeTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.single = cls.launch_sluice(pool_mode="transaction", pool_size=1,
                                       pool={"timeout": "10s"})
        cls.session = cls.launch_sluice(pool_mode="session", pool_size=2)

    @classmethod
    def tearDownClass(cls):
        cls.single.stop()
        cls.session.stop()
        super().tearDownClass()

    def test_listen_is_refused_and_the_client_goes_on(self):
        conn = self.client_psycopg2(self.single)
        with conn.cursor() as cur:
            with self.assertRaises(psycopg2.errors.FeatureNotSupported) as refused:
                cur.execute("LISTEN jobs")
            self.assertIn("pool.mode: session", str(refused.exception))
            cur.execute("SELECT 1")
            self.assertEqual(cur.fetchone(), (1,))
            # UNLISTEN only removes subscriptions: drivers' reset queries send it, and it works.
            cur.execute("UNLISTEN *")

    def test_extended_protocol_listen_is_refused(self):
        conn = self.single.connect(self.client_user, self.client_password)
        self.addCleanup(conn.close_without_terminate)
        conn.send_raw(pgwire.parse_message("", "LISTEN jobs") + pgwire.bind_message("", "")
                      + pgwire.execute_message() + pgwire.frontend_message("S"))
        errors = pgwire.errors_in(pgwire.read_until_ready(conn))
        self.assertEqual([e.fields.get("C") for e in errors], ["0A000"])
        self.assertEqual(conn.query("SELECT 2"), [["2"]])

    def test_an_idle_server_that_is_notified_stays_in_service(self):
        # LISTEN inside a DO block is out of sluice's sight: the server really listens.
        first = self.client_psycopg2(self.single)
        with first.cursor() as cur:
            cur.execute("DO $$ BEGIN EXECUTE 'LISTEN sneaky'; END $$")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        # The server is idle in the pool now; a notification reaches it there.
        self.pg.psql("NOTIFY sneaky, 'for nobody'")
        wait_until(lambda: self.pg.psql(
            f"SELECT state FROM pg_stat_activity WHERE pid = {pid}").strip() == "idle",
            timeout=5, what="the notified server to be idle")
        time.sleep(0.2)  # the notification is on its way to the idle server's socket
        second = self.client_psycopg2(self.single)
        with second.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.assertEqual(cur.fetchone()[0], pid, "the notified server was replaced")
        self.assertEqual(second.notifies, [])
        self.assertEqual(first.notifies, [])
        log = self.single.log_text()
        self.assertNotIn("pre-ping", log)
        self.assertNotIn("looks dead", log)

    def test_session_mode_keeps_listen(self):
        listener = self.client_psycopg2(self.session)
        with listener.cursor() as cur:
            cur.execute("LISTEN jobs")
        self.pg.psql("NOTIFY jobs, 'hello'")
        deadline = time.monotonic() + 5
        while not listener.notifies and time.monotonic() < deadline:
            select.select([listener], [], [], 0.2)
            listener.poll()
        self.assertEqual([n.payload for n in listener.notifies], ["hello"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
