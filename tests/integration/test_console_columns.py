"""Every SHOW of sluice's admin console has PgBouncer 1.25's columns: the same names, in the
same order, with the same type OIDs, read from a running PgBouncer 1.25 (pgbouncer_peer.py)
rather than from a list kept here. Over both query protocols, as exporters use either.

After PgBouncer's columns, two tables carry one more: the PgBouncer 1.7 names that Debian's
prometheus-pgbouncer-exporter still reads (see proxy/admin_tables.cpp)."""

import unittest

import harness
import pgbouncer_peer
import pgwire
from harness import ProxyTestCase

LEGACY_COLUMNS = {"STATS": [("total_requests", 1700)], "DATABASES": [("reserve_pool", 23)]}
SHOWS = ["POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "CLIENTS", "SERVERS", "DATABASES",
         "USERS", "LISTS", "CONFIG", "VERSION", "STATE", "MEM"]


def row_description(body: bytes) -> list[tuple[str, int]]:
    """(name, type OID) of each column of a RowDescription body."""
    count = int.from_bytes(body[:2], "big")
    at, columns = 2, []
    for _ in range(count):
        end = body.index(b"\0", at)
        name = body[at:end].decode()
        type_oid = int.from_bytes(body[end + 7:end + 11], "big")
        columns.append((name, type_oid))
        at = end + 19
    return columns


def simple_columns(conn: pgwire.Connection, sql: str) -> list[tuple[str, int]]:
    conn.send("Q", sql.encode() + b"\0")
    messages = pgwire.read_until_ready(conn)
    errors = pgwire.errors_in(messages)
    if errors:
        raise errors[0]
    return [row_description(body) for kind, body in messages if kind == "T"][0]


def extended_columns(conn: pgwire.Connection, sql: str) -> list[tuple[str, int]]:
    conn.send_raw(pgwire.parse_message("", sql) + pgwire.bind_message("", "")
                  + pgwire.describe_message("P", "") + pgwire.execute_message()
                  + pgwire.SYNC_MESSAGE)
    messages = pgwire.read_until_ready(conn)
    errors = pgwire.errors_in(messages)
    if errors:
        raise errors[0]
    return [row_description(body) for kind, body in messages if kind == "T"][0]


class ConsoleColumnsTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.exe, why = pgbouncer_peer.build_pgbouncer()
        if cls.exe is None:
            raise unittest.SkipTest(f"PgBouncer 1.25 cannot be built here: {why}")
        super().setUpClass()
        cls.sluice = cls.launch_sluice(pool_mode="transaction", admin_users=[cls.client_user])
        cls.pgbouncer = pgbouncer_peer.PgBouncer(cls.exe, cls.pg, admin_user="admin").start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "pgbouncer"):
            cls.pgbouncer.stop()
        if hasattr(cls, "sluice"):
            cls.sluice.stop()
        super().tearDownClass()

    def pgbouncer_console(self):
        return pgwire.connect(harness.HOST, self.pgbouncer.port, "admin", None, "pgbouncer")

    def sluice_console(self):
        return self.sluice.connect(self.client_user, self.client_password, database="pgbouncer")

    def test_every_show_has_pgbouncers_columns(self):
        with self.pgbouncer_console() as theirs, self.sluice_console() as ours:
            for show in SHOWS:
                with self.subTest(show=show):
                    expected = simple_columns(theirs, f"SHOW {show}")
                    self.assertEqual(simple_columns(ours, f"SHOW {show}"),
                                     expected + LEGACY_COLUMNS.get(show, []))

    def test_the_extended_protocol_describes_the_same_columns(self):
        with self.pgbouncer_console() as theirs, self.sluice_console() as ours:
            for show in ("POOLS", "STATS", "LISTS", "CONFIG", "VERSION"):
                with self.subTest(show=show):
                    expected = simple_columns(theirs, f"SHOW {show}")
                    self.assertEqual(extended_columns(ours, f"SHOW {show}"),
                                     expected + LEGACY_COLUMNS.get(show, []))


if __name__ == "__main__":
    harness.main()
