"""A server reached over a Unix-domain socket (issue 13.6): a url with host=/directory, as libpq
reads it (the socket is <directory>/.s.PGSQL.<port>), in both URI and keyword forms. Queries,
prepared statements and a cancel all go through it; an absent socket fails the way a refused
TCP connection does, with the client told why."""

import threading
import unittest
import urllib.parse

import psycopg2
import psycopg2.errors

import harness
from harness import ProxyTestCase


class UnixSocketUpstreamTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sock = str(cls.pg.sockdir)
        keyword_url = (f"host={sock} port={cls.pg.port} dbname=postgres user={cls.upstream_user} "
                       f"password={cls.upstream_password}")
        uri = (f"postgresql://{cls.upstream_user}:"
               f"{urllib.parse.quote(cls.upstream_password, safe='')}@"
               f"{urllib.parse.quote(sock, safe='')}:{cls.pg.port}/postgres")
        cls.keyword = cls.launch_sluice(pool_mode="transaction", pool_size=2,
                                        upstream_url=keyword_url)
        cls.uri = cls.launch_sluice(pool_mode="session", pool_size=2, upstream_url=uri)
        missing = f"host={sock}/nowhere port={cls.pg.port} dbname=postgres user=app password=x"
        cls.missing = cls.launch_sluice(pool_mode="transaction", pool_size=1,
                                        upstream_url=missing, pool={"timeout": "2s"})

    @classmethod
    def tearDownClass(cls):
        for sluice in (cls.keyword, cls.uri, cls.missing):
            sluice.stop()
        super().tearDownClass()

    def test_queries_reach_the_server_over_its_socket(self):
        for sluice in (self.keyword, self.uri):
            with self.client_psycopg2(sluice).cursor() as cur:
                # A Unix-domain connection has no client address on the server's side.
                cur.execute("SELECT inet_client_addr() IS NULL, current_user")
                self.assertEqual(cur.fetchone(), (True, self.upstream_user))

    def test_pgbench_prepared_over_the_socket(self):
        harness.pgbench(self.pg.port, ["-i", "-s", "1", "-q"], user=self.upstream_user,
                        password=self.upstream_password)
        result = harness.pgbench(self.keyword.port, ["-n", "-M", "prepared", "-c", "6", "-j", "2",
                                                     "-t", "100", "-S"],
                                 user=self.client_user, password=self.client_password)
        self.assertEqual(harness.parse_pgbench(result.stdout)["failed"], 0, result.stdout)

    def test_a_cancel_reaches_the_server_over_its_socket(self):
        conn = self.client_psycopg2(self.keyword)
        cancelled = threading.Timer(0.5, conn.cancel)
        cancelled.start()
        self.addCleanup(cancelled.cancel)
        with conn.cursor() as cur:
            with self.assertRaises(psycopg2.errors.QueryCanceled):
                cur.execute("SELECT pg_sleep(20)")
            cur.execute("SELECT 1")
            self.assertEqual(cur.fetchone(), (1,))

    def test_a_missing_socket_is_reported(self):
        with self.assertRaises(psycopg2.OperationalError) as failed:
            self.client_psycopg2(self.missing)
        self.assertIn("no server connection available", str(failed.exception))
        self.assertIn("nowhere", self.missing.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
