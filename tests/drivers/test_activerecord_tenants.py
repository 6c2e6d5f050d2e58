"""ActiveRecord 6.1 (Debian's ruby-activerecord on ruby-pg), schema per tenant, through sluice
in transaction mode on a pool of two servers (issue 17 item 3): ruby/activerecord_tenants_check.rb
runs ten clients, each with its own search_path (from ActiveRecord's schema_search_path, a SET;
from options=-c search_path=...; or switched per unit of work), all preparing the same SQL text.
After `ALTER TABLE tenant_a.t ADD COLUMN`, tenant_b must never see 0A000 "cached plan must not
change result type" (nor any other error), tenant_a only for statements it prepared before the
ALTER, and every client must read only its own tenant's rows.
"""

from __future__ import annotations

import re

import driver_harness as dh
import harness
from driver_harness import DriverTestCase

ROWS = 20  # as in activerecord_tenants_check.rb


class ActiveRecordTenantsTest(DriverTestCase):
    pool_size = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql("CREATE SCHEMA tenant_a AUTHORIZATION app;"
                    "CREATE SCHEMA tenant_b AUTHORIZATION app;")
        sql = ""
        for tenant in ("a", "b"):
            sql += (f"CREATE TABLE tenant_{tenant}.t (id serial PRIMARY KEY, tenant text NOT NULL,"
                    f" n int NOT NULL);"
                    f"INSERT INTO tenant_{tenant}.t (tenant, n)"
                    f" SELECT '{tenant}', g FROM generate_series(1, {ROWS}) g;")
        cls.admin_sql(sql)

    def test_tenants_after_alter_table(self):
        output = self.run_check(["ruby", str(dh.RUBY_DIR / "activerecord_tenants_check.rb")],
                                timeout=200)
        stats = dict(re.findall(r"(\w+)=(\d+)", output.split("RESULT", 1)[1].splitlines()[0]))
        harness.log(f"activerecord: {stats}")
        self.assertEqual(stats.get("cached_plan_errors_b", "0"), "0", output)
        # Each tenant read its own rows, many times.
        self.assertGreater(int(stats.get("rows_read_a", 0)), 500, output)
        self.assertGreater(int(stats.get("rows_read_b", 0)), 500, output)
        # The ALTER took, and nothing else changed the tables.
        self.assertEqual(self.admin_sql("SELECT count(*), min(extra), max(extra) FROM tenant_a.t;"
                                        "SELECT count(*) FROM tenant_b.t"),
                         f"{ROWS}|7|7\n{ROWS}")
        self.assert_no_statement_errors(output)
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
