"""pgbench through sluice in transaction mode: 50 clients share a pool of 5
servers. Every run must exit 0 with no failed transaction, PostgreSQL must
never see more than size + overflow backends of the upstream role (sampled
directly from pg_stat_activity every 100 ms while pgbench runs), and after each
TPC-B-like run the books must balance: every committed transaction added the
same delta to one account, one teller, one branch and one history row."""

import harness
from harness import BackendSampler, parse_pgbench

POOL_SIZE = 5
OVERFLOW = 0
CLIENTS = 50
DURATION_S = 7


class TxnPgbenchTest(harness.PgbenchThroughSluice):
    # pgbench's own default max_connections would do, but sluice's logins all queue on 5
    # servers: give them room (timeout) to get through.
    sluice_config = dict(pool_mode="transaction", pool_size=POOL_SIZE, log_level="info",
                         pool={"overflow": OVERFLOW, "timeout": "30s"})
    init_timeout = 120

    def run_load(self, mode: str, *, select_only: bool = False) -> dict:
        # -n: no vacuum, which would truncate pgbench_history and so break the
        # history-vs-balances check across runs.
        args = ["-n", "-c", str(CLIENTS), "-j", "2", "-T", str(DURATION_S), "-M", mode]
        if select_only:
            args.append("-S")
        with BackendSampler(self.pg, self.upstream_user, interval=0.1) as sampler:
            r = harness.pgbench(self.sluice.port, args, user=self.client_user,
                                password=self.client_password, timeout=DURATION_S + 60)
        what = f"pgbench {' '.join(args)}"
        self.assertIsNone(sampler.error, f"sampling pg_stat_activity failed: {sampler.error!r}")
        self.assertGreater(len(sampler.samples), 10, "too few pg_stat_activity samples")
        harness.log(f"{what}: upstream backends max {sampler.max_seen} "
                    f"over {len(sampler.samples)} samples")
        self.assertEqual(r.returncode, 0, f"{what} failed:\n{r.stdout}\n{r.stderr[-3000:]}")
        stats = parse_pgbench(r.stdout)
        self.assertIn("failed", stats, r.stdout)  # "number of failed transactions: N"
        self.assertEqual(stats["failed"], 0, r.stdout)
        self.assertEqual(stats.get("mode"), mode, r.stdout)
        self.assertEqual(stats.get("clients"), CLIENTS, r.stdout)
        self.assertGreater(stats.get("processed", 0), 0, r.stdout)
        self.assertLessEqual(
            sampler.max_seen, POOL_SIZE + OVERFLOW,
            f"PostgreSQL saw {sampler.max_seen} backends of {self.upstream_user!r} with pool "
            f"size {POOL_SIZE} + overflow {OVERFLOW}; samples {sampler.samples}")
        self.assertGreater(sampler.max_seen, 0, "the sampler never saw a sluice backend")
        harness.log(f"{what}: {stats}")
        if not select_only:
            type(self).committed += int(stats["processed"])
        return stats

    def test_0_init_loaded_the_tables(self):
        counts = self.pg.psql("SELECT (SELECT count(*) FROM pgbench_accounts), "
                              "(SELECT count(*) FROM pgbench_tellers), "
                              "(SELECT count(*) FROM pgbench_branches)")
        self.assertEqual(counts, "100000|10|1")
        self.assert_books_balance()

    def test_1_simple_protocol(self):
        self.run_load("simple")
        self.assert_books_balance()

    def test_2_extended_protocol(self):
        self.run_load("extended")
        self.assert_books_balance()

    def test_3_prepared_statements(self):
        self.run_load("prepared")
        self.assert_books_balance()

    def test_4_select_only_prepared(self):
        self.run_load("prepared", select_only=True)
        self.assert_books_balance()  # a read-only run changes nothing
        self.assert_serving(self.sluice)


if __name__ == "__main__":
    harness.main()
