"""pgjdbc (Debian's 42.5) through sluice in transaction mode, on a pool of only 2 servers kept
busy, with 20 threads: java/JdbcCheck.java, once per prepareThreshold:

  1   every PreparedStatement is a named server-side statement from its first execution;
  5   the default: unnamed for the first four executions, then named;
  -1  pgjdbc's documented special value: "activates server side prepared statements and
      forces binary transfer for enabled types" (named from the first execution, results in
      binary).

Named statements are S_1, S_2, ... in every connection, for different SQL. getMetaData() on a
statement prepared server-side sends only Describe('S'), which must work wherever it lands.
"""

from __future__ import annotations

import re

import driver_harness as dh
import harness
from driver_harness import DriverTestCase

WORKERS, ROUNDS, BATCH = 16, 6, 25  # as in JdbcCheck.java


class PgjdbcTest(DriverTestCase):
    pool_size = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE jdbc_items (id bigserial PRIMARY KEY, run text NOT NULL,"
                      " thread int NOT NULL, round int NOT NULL, seq int NOT NULL,"
                      " payload text NOT NULL);")

    def run_check(self, threshold: int, tag: str):
        self.assertTrue(dh.PGJDBC_JAR.exists(), f"{dh.PGJDBC_JAR} missing: run scripts/deps.sh")
        result = self.run_program(
            ["java", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-cp", str(dh.PGJDBC_JAR), str(dh.JAVA_DIR / "JdbcCheck.java"), str(threshold), tag],
            timeout=150)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0,
                         f"JdbcCheck prepareThreshold={threshold} failed:\n{output[-8000:]}\n"
                         f"sluice log:\n{self.sluice_log_excerpt(40)}")
        m = re.search(r"RESULT .*metadata_checks=(\d+) threads_on_several_backends=(\d+)",
                      result.stdout)
        self.assertIsNotNone(m, output)
        self.assertEqual(int(m.group(1)), WORKERS * ROUNDS * 3, result.stdout)
        if not dh.DIRECT:
            # The pool of two is shared by 20 clients: their requests did move between servers.
            self.assertGreater(int(m.group(2)), 0, result.stdout)
        self.assertEqual(
            self.admin_sql(f"SELECT count(*), count(*) FILTER (WHERE seq >= 1000) FROM jdbc_items"
                           f" WHERE run = '{tag}'"),
            f"{WORKERS * ROUNDS * BATCH}|0")
        self.assert_no_statement_errors(output)
        self.assert_daemon_serving()

    def test_prepare_threshold_1(self):
        self.run_check(1, "t1")

    def test_prepare_threshold_5_default(self):
        self.run_check(5, "t5")

    def test_prepare_threshold_minus_1_force_binary(self):
        self.run_check(-1, "tm1")


if __name__ == "__main__":
    harness.main()
