"""The exporters people run against PgBouncer, pointed at sluice unchanged.

- Debian's prometheus-pgbouncer-exporter (/usr/bin/prometheus-pgbouncer-exporter, psycopg2
  over libpq): every metric its collectors define is in its scrape, and none is NaN. The
  metric list is read from the installed exporter's own collectors, not kept here.
- prometheus-community's pgbouncer_exporter: its scrape sequence, in one session, over libpq
  (psycopg2) and with lib/pq's startup packet (extra_float_digits=2 as a startup parameter),
  where any error marks the pooler down."""

import math
import os
import subprocess
import sys
import unittest
import urllib.request

import harness
import pgwire
from harness import ProxyTestCase, free_port

EXPORTER = "/usr/bin/prometheus-pgbouncer-exporter"
# pgbouncer_exporter's collector.go, in the order one scrape sends them.
PGBOUNCER_EXPORTER_SCRAPE = ["SHOW STATS", "SHOW VERSION", "SHOW LISTS", "SHOW CONFIG",
                             "SHOW CLIENTS", "SHOW DATABASES", "SHOW STATS_TOTALS", "SHOW POOLS"]


def debian_exporter_metrics() -> list[str]:
    """The metric names the installed exporter's collectors export."""
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    from prometheus_pgbouncer_exporter import collectors
    names = []
    for cls in (collectors.StatsCollector, collectors.PoolsCollector,
                collectors.DatabasesCollector, collectors.ListsCollector):
        names += [f"pgbouncer_{name}" for name, _ in cls.metrics.values()]
    return names


def samples(text: str) -> dict[str, list[float]]:
    """Exposition text -> metric name -> its sample values."""
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, value = line.rsplit(" ", 1)
        out.setdefault(name_and_labels.split("{", 1)[0], []).append(float(value))
    return out


class ExportersTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice(pool_mode="transaction", admin_users=[cls.client_user])

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def setUp(self):
        # A pool with traffic, so every per-database and per-pool table has a row.
        self.assertEqual(self.client_psql(self.sluice, "SELECT 1").stdout.strip(), "1")

    @unittest.skipUnless(os.access(EXPORTER, os.X_OK),
                         "prometheus-pgbouncer-exporter is not installed (scripts/deps.sh)")
    def test_debian_exporter_scrapes_every_metric(self):
        port = free_port()
        log_dir = harness.make_temp_dir("exporter")
        self.addCleanup(harness.remove_temp_dir, log_dir)
        env = dict(os.environ, PGPASSWORD=self.client_password, PGCONNECT_TIMEOUT="10")
        with open(log_dir / "exporter.log", "wb") as log:
            proc = subprocess.Popen(
                [EXPORTER, "--host", harness.HOST, "--port", str(port),
                 "--pgbouncer-host", harness.HOST, "--pgbouncer-port", str(self.sluice.port),
                 "--pgbouncer-user", self.client_user],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True)
        harness._reaper.add_group(proc.pid)

        def stop():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            harness._reaper.remove_group(proc.pid)
        self.addCleanup(stop)

        harness.wait_until(lambda: harness.port_accepts(port) or proc.poll() is not None,
                           timeout=30, what="the exporter to listen")
        self.assertIsNone(proc.poll(), (log_dir / "exporter.log").read_text())
        with urllib.request.urlopen(f"http://{harness.HOST}:{port}/metrics", timeout=30) as r:
            self.assertEqual(r.status, 200)
            scraped = samples(r.read().decode())
        for name in debian_exporter_metrics():
            with self.subTest(metric=name):
                self.assertIn(name, scraped, (log_dir / "exporter.log").read_text()[-2000:])
                self.assertTrue(scraped[name], name)
                self.assertFalse(any(math.isnan(v) for v in scraped[name]), scraped[name])
        self.assertGreaterEqual(sum(scraped["pgbouncer_requests_total"]), 1)
        self.assertTrue(self.sluice.alive())

    def test_pgbouncer_exporter_scrape_over_libpq(self):
        import psycopg2
        conn = psycopg2.connect(host=harness.HOST, port=self.sluice.port, user=self.client_user,
                                password=self.client_password, dbname="pgbouncer",
                                options="-c extra_float_digits=2", connect_timeout=10)
        self.addCleanup(conn.close)
        conn.autocommit = True  # the console has no transactions, as PgBouncer's
        with conn.cursor() as cursor:
            for sql in PGBOUNCER_EXPORTER_SCRAPE:
                with self.subTest(sql=sql):
                    cursor.execute(sql)
                    columns = [c.name for c in cursor.description]
                    rows = cursor.fetchall()
                    self.assertTrue(columns)
                    if sql in ("SHOW STATS", "SHOW STATS_TOTALS", "SHOW POOLS"):
                        self.assertIn("postgres", [row[0] for row in rows])
                    if sql == "SHOW VERSION":
                        self.assertEqual(columns, ["version"])

    def test_pgbouncer_exporter_scrape_with_lib_pq_startup(self):
        # lib/pq sends extra_float_digits=2 in the startup packet itself.
        with pgwire.connect(harness.HOST, self.sluice.port, self.client_user,
                            self.client_password, "pgbouncer",
                            params={"extra_float_digits": "2"}) as conn:
            for sql in PGBOUNCER_EXPORTER_SCRAPE:
                with self.subTest(sql=sql):
                    conn.query(sql)
            self.assertEqual(conn.transaction_status, "I")


if __name__ == "__main__":
    harness.main()
