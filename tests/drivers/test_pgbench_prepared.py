"""pgbench with named prepared statements (-M prepared: every client prepares P_0, P_1, ...
for the same SQL) and with the unnamed extended protocol (-M extended), 50 clients through
sluice in transaction mode on a pool of 5 servers: TPC-B-like and select-only (-S). No
transaction may fail, and afterwards the books balance: every committed TPC-B transaction
added the same delta to one account, one teller, one branch and one history row.

The tps of each run is printed for comparison; nothing asserts on speed.
"""

from __future__ import annotations

import driver_harness as dh
import harness
from driver_harness import DriverTestCase
from harness import parse_pgbench

CLIENTS = 50
SECONDS = 8


class PgbenchPreparedTest(DriverTestCase):
    pool_size = 5
    tps: dict = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.init = harness.pgbench(cls.target_port, ["-i", "-s", "1", "-q"], user=cls.target_user,
                                   password=cls.target_password, timeout=120)
        cls.committed = 0  # TPC-B transactions pgbench reported, over all runs

    @classmethod
    def tearDownClass(cls):
        harness.log("pgbench tps (through " + ("PostgreSQL directly" if dh.DIRECT else "sluice")
                    + "): " + ", ".join(f"{k}={v:.0f}" for k, v in sorted(cls.tps.items())))
        super().tearDownClass()

    def setUp(self):
        self.assertEqual(self.init.returncode, 0,
                         f"pgbench -i failed:\n{self.init.stdout}\n{self.init.stderr}")

    def assert_books_balance(self):
        harness.assert_pgbench_books_balance(
            self, self.admin_sql(harness.PGBENCH_BOOKS_SQL), type(self).committed)

    def run_load(self, mode: str, select_only: bool):
        # -n: no vacuum (it would truncate pgbench_history and break the balance check).
        args = ["-n", "-M", mode, "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS)]
        if select_only:
            args.append("-S")
        r = harness.pgbench(self.target_port, args, user=self.target_user,
                            password=self.target_password, timeout=90)
        report = f"pgbench {' '.join(args)}:\n{r.stdout}\n{r.stderr[-3000:]}"
        self.assertEqual(r.returncode, 0, report + f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        stats = parse_pgbench(r.stdout)
        self.assertEqual(stats.get("failed"), 0, report)
        self.assertEqual(stats.get("mode"), mode, report)
        self.assertEqual(stats.get("clients"), CLIENTS, report)
        self.assertGreater(stats.get("processed", 0), 0, report)
        self.assert_no_statement_errors(r.stdout, r.stderr)
        type(self).tps[f"{mode}{'-S' if select_only else '-tpcb'}"] = stats.get("tps", 0.0)
        harness.log(f"pgbench -M {mode}{' -S' if select_only else ''}: {stats}")
        if not select_only:
            type(self).committed += int(stats["processed"])
        self.assert_books_balance()

    def test_1_prepared_tpcb(self):
        self.run_load("prepared", select_only=False)

    def test_2_prepared_select_only(self):
        self.run_load("prepared", select_only=True)

    def test_3_extended_tpcb(self):
        self.run_load("extended", select_only=False)

    def test_4_extended_select_only(self):
        self.run_load("extended", select_only=True)
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
