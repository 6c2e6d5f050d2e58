"""node-postgres (pg, pinned in node/package.json) through sluice in transaction mode:
node/pg_check.js runs a pg.Pool of 30 connections on a pool of 3 servers, with named queries
({name, text, values}) that the driver prepares once per connection and then only binds:
shared names for the same SQL from any client, and one name that every client uses for its
own SQL. Transactions commit and roll back.
"""

from __future__ import annotations

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

WORKERS, ROUNDS = 30, 8  # as in pg_check.js


class NodePgTest(DriverTestCase):
    pool_size = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE node_pg_items (id serial PRIMARY KEY, worker int NOT NULL,"
                      " n int NOT NULL);")

    def test_named_queries_from_a_pool(self):
        output = self.run_node_check("pg_check.js")
        # Per worker and round: 3 committed rows; the rolled-back ones (n = 999) never.
        self.assertEqual(self.admin_sql("SELECT count(*), count(*) FILTER (WHERE n = 999),"
                                        " count(DISTINCT worker) FROM node_pg_items"),
                         f"{WORKERS * ROUNDS * 3}|0|{WORKERS}")
        self.assert_no_statement_errors(output)
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
