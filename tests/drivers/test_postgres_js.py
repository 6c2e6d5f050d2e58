"""postgres.js (the `postgres` package, pinned in node/package.json) with its defaults
(prepare: true) through sluice in transaction mode: node/postgres_js_check.js pipelines
thousands of concurrent queries over up to 20 connections on a pool of 3 servers, with new
statements sent as Parse/Describe/Flush before their Bind/Execute/Sync, and runs sql.begin()
transactions that commit, roll back, and pipeline inside.
"""

from __future__ import annotations

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

TRANSACTIONS = 60  # as in postgres_js_check.js; every fourth one rolls back


class PostgresJsTest(DriverTestCase):
    pool_size = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE pjs_items (id serial PRIMARY KEY, tx int NOT NULL,"
                      " n int NOT NULL);")

    def test_pipelined_queries_and_transactions(self):
        output = self.run_node_check("postgres_js_check.js")
        committed = [t for t in range(TRANSACTIONS) if t % 4 != 3]
        self.assertEqual(self.admin_sql("SELECT count(*), count(DISTINCT tx),"
                                        " count(*) FILTER (WHERE n = 100) FROM pjs_items"),
                         f"{len(committed) * 2}|{len(committed)}|0")
        self.assert_no_statement_errors(output)
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
