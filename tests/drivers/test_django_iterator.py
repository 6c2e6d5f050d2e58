"""Django 3.2 QuerySet.iterator() with server-side cursors (Django's default for PostgreSQL),
in autocommit, through sluice in transaction mode (issue 17 item 5): django/iterator_check.py,
configured standalone (settings.configure, the cursorapp model), no project.

In autocommit Django declares the cursor WITH HOLD and FETCHes chunk_size rows at a time,
each FETCH its own statement: the cursor lives in one server session, so sluice must keep that
server for the client from DECLARE to CLOSE, and give it back at CLOSE.
"""

from __future__ import annotations

import driver_harness as dh
import harness
from driver_harness import DriverTestCase

ROWS = 2000  # 100 FETCHes of 20


class DjangoIteratorTest(DriverTestCase):
    pool_size = 2
    daemon_per_test = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("CREATE TABLE dj_items (id serial PRIMARY KEY, n int NOT NULL UNIQUE,"
                      " label text NOT NULL);"
                      f"INSERT INTO dj_items (n, label) SELECT g, 'item ' || g"
                      f" FROM generate_series(1, {ROWS}) g;")

    def django_check(self, case: str, port: int | None = None, pinned: bool = False) -> str:
        output = self.run_check(
            ["/usr/bin/python3", str(dh.DJANGO_DIR / "iterator_check.py"), case, str(ROWS),
             "1" if pinned else "0"], timeout=150, port=port)
        self.assertEqual(self.admin_sql("SELECT count(*) FROM dj_items"), str(ROWS))
        return output

    def test_iterator_while_other_clients_use_the_pool(self):
        """Two servers: the iterating client's keeps its cursor for all 100 FETCHes while four
        other clients share the other server; every row arrives, and the client's own queries
        between chunks run on the same backend."""
        output = self.django_check("while_busy")
        self.assertIn("iterations=2", output)
        self.assert_daemon_serving()

    def test_server_pinned_until_close(self):
        """One server: another client gets it only after the cursor is closed (and never sees
        the cursor), and again after an iteration abandoned half-way."""
        port = None
        if not dh.DIRECT:
            self.sluice.stop()
            self.sluice = self.launch_tx_sluice(1)
            port = self.target_port = self.sluice.port
        output = self.django_check("pinned", port=port, pinned=not dh.DIRECT)
        self.assertIn("after_abandoned=1", output)
        self.assert_daemon_serving()


if __name__ == "__main__":
    harness.main()
