"""sluice with `workers: 2`: two threads, each with its own io_context, sharing
every pool. Sessions are assigned to the threads round robin at accept, so
consecutive logins land on different threads, and a server moves between
sessions of both threads (README, "Threading model").

- pgbench through sluice in simple, extended and prepared mode: no failed
  transaction, the books balance, PostgreSQL never sees more backends than the
  pool size.
- Clients on both threads sharing a pool of 2 servers: each gets its own rows
  and its own session setting back every time, and every update lands.
- Cancels across threads: a CancelRequest arrives on the connection accepted
  right after its target's, so on the other thread, and must still cancel
  that query (57014) and nothing else; the session goes on.

These are the tests the TSan build runs (ctest -L multi_worker)."""

import threading

import harness
import pgwire
from harness import BackendSampler, parse_pgbench

POOL_SIZE = 4
PGBENCH_CLIENTS = 8
PGBENCH_TRANSACTIONS = 100  # per client: a count, not a duration, so a slow build does as much


class WorkersPgbenchTest(harness.PgbenchThroughSluice):
    sluice_config = dict(pool_mode="transaction", pool_size=POOL_SIZE, workers=2,
                         log_level="info", pool={"timeout": "60s"})
    init_timeout = 240

    def run_load(self, mode: str) -> None:
        args = ["-n", "-c", str(PGBENCH_CLIENTS), "-j", "2", "-t", str(PGBENCH_TRANSACTIONS),
                "-M", mode]
        with BackendSampler(self.pg, self.upstream_user, interval=0.1) as sampler:
            r = harness.pgbench(self.sluice.port, args, user=self.client_user,
                                password=self.client_password, timeout=240)
        what = f"pgbench {' '.join(args)}"
        self.assertEqual(r.returncode, 0, f"{what} failed:\n{r.stdout}\n{r.stderr[-3000:]}")
        stats = parse_pgbench(r.stdout)
        self.assertEqual(stats.get("failed"), 0, r.stdout)
        self.assertEqual(stats.get("mode"), mode, r.stdout)
        self.assertEqual(stats.get("processed"), PGBENCH_CLIENTS * PGBENCH_TRANSACTIONS, r.stdout)
        self.assertIsNone(sampler.error, f"sampling pg_stat_activity failed: {sampler.error!r}")
        self.assertLessEqual(sampler.max_seen, POOL_SIZE,
                             f"PostgreSQL saw {sampler.max_seen} backends with pool size "
                             f"{POOL_SIZE}; samples {sampler.samples}")
        type(self).committed += int(stats["processed"])
        self.assert_books_balance()

    def test_1_simple_protocol(self):
        self.run_load("simple")

    def test_2_extended_protocol(self):
        self.run_load("extended")

    def test_3_prepared_statements(self):
        self.run_load("prepared")
        self.assert_serving(self.sluice)


class WorkersSharingTest(harness.ProxyTestCase):
    CLIENTS = 6
    ROUNDS = 40

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
        cls.pg.psql(f"GRANT ALL ON counters TO {harness.sql_ident(cls.upstream_user)}")
        cls.sluice = cls.launch_sluice(pool_mode="transaction", pool_size=2, workers=2,
                                       log_level="info", pool={"timeout": "60s"})

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def connect(self, **kwargs) -> pgwire.Connection:
        return self.sluice.connect(self.client_user, self.client_password, timeout=30, **kwargs)

    def test_clients_on_both_threads_share_two_servers(self):
        """Six clients, logged in one after another (so on alternating threads),
        each with its own application_name, run 40 rounds at once on 2 servers:
        a one-row answer of their own, their own setting, and a counter update in
        a transaction block. Any server handed across threads with another
        client's state, or a reply sent to the wrong client, shows here."""
        self.pg.psql("TRUNCATE counters; INSERT INTO counters "
                     f"SELECT g, 0 FROM generate_series(0, {self.CLIENTS - 1}) g")
        clients = [self.connect(params={"application_name": f"client{i}"})
                   for i in range(self.CLIENTS)]
        errors: list[str] = []

        def work(i: int, conn: pgwire.Connection) -> None:
            try:
                for k in range(self.ROUNDS):
                    rows = conn.query(f"SELECT {i * 1000 + k}, current_setting('application_name')")
                    if rows != [[str(i * 1000 + k), f"client{i}"]]:
                        errors.append(f"client {i} round {k} got {rows}")
                    conn.query(f"BEGIN; UPDATE counters SET n = n + 1 WHERE id = {i}; COMMIT")
            except Exception as exc:  # reported below, with the others
                errors.append(f"client {i}: {exc!r}")

        threads = [threading.Thread(target=work, args=(i, c), daemon=True)
                   for i, c in enumerate(clients)]
        with BackendSampler(self.pg, self.upstream_user, interval=0.1) as sampler:
            for t in threads:
                t.start()
            for t in threads:
                t.join(180)
        for c in clients:
            c.close()
        self.assertFalse(any(t.is_alive() for t in threads), "a client never finished")
        self.assertEqual(errors, [])
        self.assertEqual(self.pg.psql("SELECT string_agg(n::text, ',' ORDER BY id) FROM counters"),
                         ",".join([str(self.ROUNDS)] * self.CLIENTS))
        self.assertLessEqual(sampler.max_seen, 2, f"samples {sampler.samples}")
        self.assert_serving(self.sluice)

    def wait_for_sleep(self, marker: str) -> None:
        harness.wait_until(
            lambda: self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                 f"AND query LIKE '%{marker}%' AND query NOT LIKE '%pg_stat%'")
            == "1",
            timeout=30, what=f"{marker} running on PostgreSQL")

    def test_cancel_from_the_other_thread(self):
        """Four rounds: a client runs pg_sleep(60) while another keeps querying;
        the CancelRequest comes on the next connection accepted, so on the other
        thread. The sleeper gets 57014 and its session goes on; the other client
        sees no error."""
        busy = self.connect()
        for round_ in range(4):
            sleeper = self.connect()
            self.assertIsNotNone(sleeper.backend_key)
            marker = f"pg_sleep(60) /* round {round_} */"
            sleeper._arm()
            sleeper.send("Q", f"SELECT {marker}".encode() + b"\0")
            self.wait_for_sleep(marker)
            self.assertEqual(busy.query("SELECT 1"), [["1"]])
            pgwire.send_cancel(harness.HOST, self.sluice.port, *sleeper.backend_key)
            errors = pgwire.errors_in(pgwire.read_until_ready(sleeper))
            self.assertEqual([e.fields.get("C") for e in errors], ["57014"], f"round {round_}")
            self.assertEqual(sleeper.query("SELECT 'still here'"), [["still here"]])
            self.assertEqual(busy.query("SELECT 2"), [["2"]])
            sleeper.close()
        busy.close()
        self.assert_serving(self.sluice)


if __name__ == "__main__":
    harness.main()
