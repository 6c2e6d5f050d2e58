"""pgbench through sluice: initialization (COPY), then TPC-B-like load in the
simple and the extended query protocol. Afterwards the books must balance:
every committed transaction added the same delta to one account, one teller,
one branch and one history row."""

import harness
from harness import parse_pgbench


class PgbenchTest(harness.PgbenchThroughSluice):
    sluice_config = dict(pool_mode="session", pool_size=10)

    def run_load(self, mode: str):
        # -n: no vacuum, which would truncate pgbench_history and so break the
        # history-vs-balances check across runs.
        r = harness.pgbench(self.sluice.port,
                            ["-n", "-c", "4", "-j", "2", "-T", "5", "-M", mode],
                            user=self.client_user, password=self.client_password, timeout=120)
        self.assertEqual(r.returncode, 0, f"pgbench -M {mode} failed:\n{r.stdout}\n{r.stderr}")
        stats = parse_pgbench(r.stdout)
        self.assertIn("failed", stats, r.stdout)  # "number of failed transactions: N"
        self.assertEqual(stats["failed"], 0, r.stdout)
        self.assertEqual(stats.get("mode"), mode, r.stdout)
        self.assertGreater(stats.get("processed", 0), 0, r.stdout)
        type(self).committed += int(stats["processed"])
        harness.log(f"pgbench -M {mode}: {stats}")
        self.assert_books_balance()

    def test_0_init_loaded_the_tables(self):
        counts = self.pg.psql("SELECT (SELECT count(*) FROM pgbench_accounts), "
                              "(SELECT count(*) FROM pgbench_tellers), "
                              "(SELECT count(*) FROM pgbench_branches)")
        self.assertEqual(counts, "100000|10|1")
        self.assert_books_balance()

    def test_1_simple_protocol(self):
        self.run_load("simple")

    def test_2_extended_protocol(self):
        self.run_load("extended")
        self.assert_serving(self.sluice)


if __name__ == "__main__":
    harness.main()
