"""A cached plan PostgreSQL refuses after DDL (0A000 "cached plan must not change result type"),
healed without the client seeing it where that is safe (issue 13.9): the refused Bind opened its
batch in an implicit transaction (nothing ran yet) and the batch describes its result again, so
the client reads the new rows with the new RowDescription. Inside a transaction block, or
without a Describe, the client gets PostgreSQL's own error, as directly."""

import unittest

import harness
import pgwire
from harness import ProxyTestCase


def batch(statement: str, describe: bool) -> bytes:
    out = pgwire.bind_message("", statement)
    if describe:
        out += pgwire.describe_message("P", "")
    return out + pgwire.execute_message() + pgwire.frontend_message("S")


def columns(messages) -> list[int]:
    """Columns per RowDescription and DataRow, in order."""
    out = []
    for kind, body in messages:
        if kind in ("T", "D"):
            out.append(int.from_bytes(body[:2], "big"))
    return out


class PlanHealTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice(pool_mode="transaction", pool_size=1)

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def setUp(self):
        self.pg.psql("DROP TABLE IF EXISTS heal_t; CREATE TABLE heal_t (a int); "
                     "INSERT INTO heal_t VALUES (1); ALTER TABLE heal_t OWNER TO app;")
        self.conn = self.sluice.connect(self.client_user, self.client_password)
        self.addCleanup(self.conn.close_without_terminate)
        self.conn.send_raw(pgwire.parse_message("s1", "SELECT * FROM heal_t")
                           + batch("s1", describe=True))
        first = pgwire.read_until_ready(self.conn)
        self.assertEqual(columns(first), [1, 1])
        self.pg.psql("ALTER TABLE heal_t ADD COLUMN b int DEFAULT 7")

    def test_a_described_batch_is_healed(self):
        self.conn.send_raw(batch("s1", describe=True))
        replies = pgwire.read_until_ready(self.conn)
        self.assertEqual(pgwire.errors_in(replies), [])
        self.assertEqual(columns(replies), [2, 2])  # the new shape, described
        self.assertEqual(pgwire.data_rows(replies), [["1", "7"]])
        # Healed for good: the next run needs nothing more.
        self.conn.send_raw(batch("s1", describe=True))
        self.assertEqual(pgwire.data_rows(pgwire.read_until_ready(self.conn)), [["1", "7"]])

    def test_without_a_describe_the_client_sees_postgresqls_error(self):
        self.conn.send_raw(batch("s1", describe=False))
        errors = pgwire.errors_in(pgwire.read_until_ready(self.conn))
        self.assertEqual([e.sqlstate for e in errors], ["0A000"])
        # The statement was prepared afresh: the next use works (a direct client would have to
        # Close and Parse it again).
        self.conn.send_raw(batch("s1", describe=True))
        self.assertEqual(pgwire.data_rows(pgwire.read_until_ready(self.conn)), [["1", "7"]])

    def test_inside_a_transaction_the_client_sees_postgresqls_error(self):
        self.assertEqual(self.conn.query("BEGIN"), [])
        self.conn.send_raw(batch("s1", describe=True))
        errors = pgwire.errors_in(pgwire.read_until_ready(self.conn))
        self.assertEqual([e.sqlstate for e in errors], ["0A000"])
        self.conn.query("ROLLBACK")


if __name__ == "__main__":
    harness.main()
