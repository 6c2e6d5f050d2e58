"""Shared pieces of the driver tests: a PostgreSQL cluster with sluice in front of it in
transaction mode (pool defaults, prepared statements on), or, with SLUICE_DRIVERS_DIRECT=1,
PostgreSQL alone, which checks that a test's own expectations are right.

Builds on tests/integration/harness.py (cluster, daemon, bounded run(), cleanup).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
from harness import PgCluster, ProxyTestCase, random_password  # noqa: E402

# Point the drivers at PostgreSQL itself instead of sluice: the same assertions must hold.
DIRECT = os.environ.get("SLUICE_DRIVERS_DIRECT", "") not in ("", "0")

NODE_DIR = HERE / "node"
JAVA_DIR = HERE / "java"
RUBY_DIR = HERE / "ruby"
PHP_DIR = HERE / "php"
DJANGO_DIR = HERE / "django"
PGJDBC_JAR = Path(os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar"))

# What a driver reports when a pooler loses track of its statements.
STATEMENT_ERROR = re.compile(r'prepared statement "?[^"\n]*"? (does not exist|already exists)',
                             re.IGNORECASE)


def statement_errors(text: str) -> list[str]:
    """The lines of `text` that say a prepared statement is missing or a duplicate."""
    return [line for line in text.splitlines() if STATEMENT_ERROR.search(line)]


class DriverTestCase(ProxyTestCase):
    """One cluster and one daemon per test class. Subclasses set `pool_size` (the server
    connections sluice keeps) and may set `pg_settings`.

    Clients connect to (target_port, target_user, target_password): sluice, or PostgreSQL
    itself under SLUICE_DRIVERS_DIRECT=1. `sluice` is None in that case.
    """

    pool_size = 3
    pg_settings: dict = {}
    sluice_extra: dict = {}
    # True: a fresh daemon for every test (setUp/tearDown), so what one test leaves in
    # sluice's statement caches cannot fail the next; False: one for the whole class.
    daemon_per_test = False

    @classmethod
    def setUpClass(cls):
        # ProxyTestCase.setUpClass, with settings for the cluster.
        cls.pg = PgCluster(settings={"max_connections": "120", **cls.pg_settings})
        cls.upstream_password = random_password("upstream")
        cls.client_password = random_password("client")
        cls.pg.create_role(cls.upstream_user, cls.upstream_password)
        cls.pg.grant_schema(cls.upstream_user)
        cls.target_user = cls.client_user
        cls.sluice = None
        if DIRECT:
            harness.log("SLUICE_DRIVERS_DIRECT: the drivers talk to PostgreSQL directly")
            cls.target_port = cls.pg.port
            cls.target_password = cls.upstream_password
        else:
            cls.target_password = cls.client_password
            if not cls.daemon_per_test:
                cls.sluice = cls.launch_tx_sluice(cls.pool_size)
                cls.target_port = cls.sluice.port

    @classmethod
    def launch_tx_sluice(cls, pool_size: int):
        """A daemon in transaction mode with the pool's default prepared-statement support;
        only the pool's size is chosen."""
        return cls.launch_sluice(pool_mode="transaction", pool_size=pool_size, log_level="info",
                                 **cls.sluice_extra)

    @classmethod
    def tearDownClass(cls):
        if cls.sluice is not None:
            cls.sluice.stop()
        super().tearDownClass()

    def setUp(self):
        if self.daemon_per_test and not DIRECT:
            self.sluice = self.launch_tx_sluice(self.pool_size)
            self.target_port = self.sluice.port

    def tearDown(self):
        if self.daemon_per_test and self.sluice is not None:
            self.sluice.stop()

    # -- where clients connect -------------------------------------------------

    def url(self, scheme: str = "postgresql", database: str = "postgres",
            port: int | None = None) -> str:
        base = harness.pg_url(self.target_user, self.target_password, port or self.target_port,
                              database)
        return scheme + base[len("postgresql"):]

    @classmethod
    def admin_sql(cls, sql: str, timeout: float = 60) -> str:
        """SQL straight to PostgreSQL as the app role: setup and checks that must not
        depend on the pooler."""
        return cls.pg.psql(sql, user=cls.upstream_user, password=cls.upstream_password,
                           timeout=timeout)

    # -- checks -----------------------------------------------------------------

    def assert_no_statement_errors(self, *texts: str) -> None:
        """Neither the given output, nor the PostgreSQL log, nor sluice's log mentions a
        missing or duplicate prepared statement."""
        found = []
        for text in texts:
            found += statement_errors(text)
        found += ["postgres log: " + line for line in statement_errors(self.pg.log_text())]
        if self.sluice is not None:
            found += ["sluice log: " + line for line in statement_errors(self.sluice.log_text())]
        self.assertEqual(found, [], "prepared-statement errors:\n" + "\n".join(found[:40]))

    def assert_daemon_serving(self) -> None:
        if self.sluice is not None:
            self.assert_serving(self.sluice)

    def sluice_log_excerpt(self, lines: int = 60) -> str:
        return self.sluice.log_tail(lines) if self.sluice is not None else "(direct: no sluice)"

    # -- external driver programs ----------------------------------------------

    def run_program(self, cmd: list, timeout: float, port: int | None = None, **env: str):
        """Runs a driver program with DATABASE_URL (and the separate parts) in its
        environment, bounded by `timeout`; `port` instead of target_port if given (another
        daemon). Returns the CompletedProcess."""
        port = port or self.target_port
        environment = harness.client_env(
            DATABASE_URL=self.url(port=port), PGHOST_TEST=harness.HOST, PGPORT_TEST=str(port),
            PGUSER_TEST=self.target_user, PGPASSWORD_TEST=self.target_password, **env)
        result = harness.run(cmd, timeout, env=environment)
        sys.stderr.write(f"--- stdout ---\n{result.stdout[-6000:]}\n"
                         f"--- stderr ---\n{result.stderr[-6000:]}\n")
        return result

    def run_check(self, cmd: list, timeout: float = 150, port: int | None = None,
                  **env: str) -> str:
        """Runs a driver program that prints "FAIL ..." lines and one "RESULT ... failures=N"
        line and exits 0 only without failures; asserts it did, and returns its output."""
        result = self.run_program(cmd, timeout=timeout, port=port, **env)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0,
                         f"{Path(str(cmd[1])).name} failed:\n{output[-8000:]}\n"
                         f"sluice log:\n{self.sluice_log_excerpt(40)}")
        self.assertRegex(result.stdout, r"RESULT (.* )?failures=0\b", output)
        return output

    def run_node_check(self, script: str, timeout: float = 150):
        """Runs node/<script>; asserts it exited 0, and returns its stdout."""
        self.assertTrue((NODE_DIR / "node_modules").is_dir(),
                        f"{NODE_DIR}/node_modules is missing: run scripts/deps.sh")
        return self.run_check(["node", str(NODE_DIR / script)], timeout=timeout)
