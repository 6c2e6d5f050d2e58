"""The HTTP endpoint: /metrics in Prometheus' text format with the counters, histograms and
gauges the README lists (labels database and user), kept-alive connections and HEAD, and the
/healthz and /readyz probes."""

import http.client
import urllib.error
import urllib.request

import harness
from harness import ProxyTestCase, free_port

COUNTERS = ["sluice_transactions_total", "sluice_queries_total", "sluice_received_bytes_total",
            "sluice_sent_bytes_total", "sluice_server_assignments_total",
            "sluice_client_logins_total", "sluice_client_wait_seconds_total",
            "sluice_server_connections_opened_total", "sluice_server_connections_closed_total",
            "sluice_prepared_statement_client_parses_total",
            "sluice_prepared_statement_server_parses_total",
            "sluice_prepared_statement_binds_total", "sluice_prepared_statement_cache_hits_total",
            "sluice_prepared_statement_evictions_total",
            "sluice_prepared_statement_injected_parses_total",
            "sluice_client_login_failures_total"]
HISTOGRAMS = ["sluice_client_wait_duration_seconds", "sluice_transaction_duration_seconds",
              "sluice_query_duration_seconds", "sluice_client_login_duration_seconds"]
GAUGES = ["sluice_clients", "sluice_pool_clients", "sluice_pool_servers",
          "sluice_pool_max_wait_seconds", "sluice_pool_size", "sluice_prepared_statements"]


def parse(text: str) -> tuple[dict[str, str], dict[str, float]]:
    """(metric family -> type, series -> value)."""
    types, series = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            series[key] = float(value)
    return types, series


class MetricsEndpointTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.metrics_port = free_port()
        cls.sluice = cls.launch_sluice(pool_mode="transaction",
                                       listen={"metrics_port": cls.metrics_port})

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{harness.HOST}:{self.metrics_port}{path}",
                                        timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_every_metric_with_prometheus_names_and_labels(self):
        for _ in range(3):
            self.assertEqual(self.client_psql(self.sluice, "SELECT 1").stdout.strip(), "1")
        status, text = self.get("/metrics")
        self.assertEqual(status, 200)
        types, series = parse(text)
        for name in COUNTERS:
            self.assertEqual(types.get(name), "counter", name)
        for name in HISTOGRAMS:
            self.assertEqual(types.get(name), "histogram", name)
        for name in GAUGES:
            self.assertEqual(types.get(name), "gauge", name)
        pool = f'database="postgres",user="{self.client_user}"'
        self.assertGreaterEqual(series[f"sluice_queries_total{{{pool}}}"], 3)
        self.assertGreaterEqual(series[f"sluice_client_logins_total{{{pool}}}"], 3)
        self.assertGreaterEqual(series[f"sluice_query_duration_seconds_count{{{pool}}}"], 3)
        self.assertEqual(series[f'sluice_query_duration_seconds_bucket{{{pool},le="+Inf"}}'],
                         series[f"sluice_query_duration_seconds_count{{{pool}}}"])
        self.assertEqual(series[f"sluice_pool_size{{{pool}}}"], 10)
        self.assertNotIn(self.client_password, text)
        self.assertNotIn(self.upstream_password, text)

    def test_keep_alive_and_head(self):
        conn = http.client.HTTPConnection(harness.HOST, self.metrics_port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/metrics")
        first = conn.getresponse()
        body = first.read()
        self.assertEqual(first.status, 200)
        self.assertEqual(int(first.getheader("Content-Length")), len(body))
        # The same connection answers again: kept alive.
        conn.request("HEAD", "/metrics")
        head = conn.getresponse()
        self.assertEqual(head.status, 200)
        self.assertEqual(head.read(), b"")
        self.assertGreater(int(head.getheader("Content-Length")), 0)
        conn.request("GET", "/healthz")
        health = conn.getresponse()
        self.assertEqual((health.status, health.read()), (200, b"ok\n"))

    def test_probes_and_unknown_paths(self):
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.get("/")[0], 404)

    def test_readyz_says_503_when_an_upstream_is_unreachable(self):
        metrics_port = free_port()
        dead = f"postgresql://{self.upstream_user}@127.0.0.1:{free_port()}/postgres"
        sluice = self.launch_sluice(pool_mode="transaction", upstream_url=dead,
                                    listen={"metrics_port": metrics_port})
        self.addCleanup(sluice.stop)
        r = self.client_psql(sluice, "SELECT 1", check=False)  # its connect fails
        self.assertNotEqual(r.returncode, 0)
        try:
            urllib.request.urlopen(f"http://{harness.HOST}:{metrics_port}/readyz", timeout=10)
            self.fail("readyz answered 200 with an unreachable upstream")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 503)
        self.assertTrue(sluice.alive())


if __name__ == "__main__":
    harness.main()
