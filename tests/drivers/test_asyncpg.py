"""asyncpg with its defaults (statement cache on: every query is a named prepared statement,
`__asyncpg_stmt_N__`, numbered from 1 in every connection) through sluice in transaction mode:
30 pooled connections at once on a pool of 3 servers. A custom enum type makes asyncpg
introspect types (its own prepared introspection query) on statements that use it, and
`conn.prepare()` statements are reused across transactions, so each lands on whichever server
is free.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

CONNECTIONS = 30
ROUNDS = 4
ROWS_PER_ROUND = 10
MOODS = ("sad", "ok", "happy")


class AsyncpgTest(DriverTestCase):
    pool_size = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_sql("""
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
            CREATE TABLE people (id serial PRIMARY KEY, worker int NOT NULL, round int NOT NULL,
                                 name text NOT NULL, m mood NOT NULL);
            CREATE TABLE rolled_back (worker int NOT NULL, note text);
        """)

    def test_concurrent_pool(self):
        failures: list[str] = []
        stats = asyncio.run(asyncio.wait_for(self._run(failures), 120))
        harness.log(f"asyncpg: {stats}")
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")
        self.assertEqual(
            self.admin_sql("SELECT count(*), count(DISTINCT worker) FROM people"),
            f"{CONNECTIONS * ROUNDS * ROWS_PER_ROUND}|{CONNECTIONS}")
        for mood in MOODS:
            expected = sum(1 for w in range(CONNECTIONS) for r in range(ROUNDS)
                           for i in range(ROWS_PER_ROUND) if MOODS[(w + r + i) % 3] == mood)
            self.assertEqual(self.admin_sql(f"SELECT count(*) FROM people WHERE m = '{mood}'"),
                             str(expected))
        self.assertEqual(self.admin_sql("SELECT count(*) FROM rolled_back"), "0")
        self.assert_no_statement_errors("\n".join(failures))
        self.assert_daemon_serving()

    async def _run(self, failures: list[str]) -> dict:
        pool = await asyncpg.create_pool(
            host=harness.HOST, port=self.target_port, user=self.target_user,
            password=self.target_password, database="postgres",
            min_size=CONNECTIONS, max_size=CONNECTIONS, timeout=30, command_timeout=60)
        try:
            # All 30 connections at once: each holds its connection for the whole run.
            results = await asyncio.gather(*(self._worker(pool, w, failures)
                                             for w in range(CONNECTIONS)))
        finally:
            await asyncio.wait_for(pool.close(), 30)
        return {"statements_per_connection_max": max(results)}

    async def _worker(self, pool: asyncpg.Pool, w: int, failures: list[str]) -> int:
        rng = random.Random(w)
        try:
            async with pool.acquire() as conn:
                # A statement prepared once and reused in every later transaction.
                count_mood = await conn.prepare(
                    "SELECT count(*) FROM people WHERE worker = $1 AND m = $2")
                echo = await conn.prepare("SELECT $1::mood AS m, $2::int + 1 AS n")
                for r in range(ROUNDS):
                    # Vary the order, so "__asyncpg_stmt_N__" means different SQL in
                    # different connections.
                    steps = ["insert", "fetch", "fetchrow", "prepared", "rollback"]
                    rng.shuffle(steps)
                    for step in steps:
                        await getattr(self, f"_step_{step}")(conn, w, r, count_mood, echo)
                return len(conn._stmt_cache) if hasattr(conn, "_stmt_cache") else 0
        except Exception as exc:  # noqa: BLE001 - collected and reported by the test
            failures.append(f"worker {w}: {type(exc).__name__}: {exc}")
            return 0

    async def _step_insert(self, conn, w, r, count_mood, echo):
        rows = [(w, r, f"w{w}-r{r}-{i}", MOODS[(w + r + i) % 3]) for i in range(ROWS_PER_ROUND)]
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO people (worker, round, name, m) VALUES ($1, $2, $3, $4)", rows)
        # Outside any transaction: each of these may run on a different server.
        got = await conn.fetchval("SELECT count(*) FROM people WHERE worker = $1 AND round = $2",
                                  w, r)
        assert got == ROWS_PER_ROUND, f"round {r}: {got} rows"

    async def _step_fetch(self, conn, w, r, count_mood, echo):
        records = await conn.fetch(
            "SELECT m, count(*) AS n FROM people WHERE worker = $1 GROUP BY m ORDER BY m", w)
        for rec in records:
            assert rec["m"] in MOODS, rec
            assert isinstance(rec["m"], str), type(rec["m"])
        moods = await conn.fetch("SELECT unnest(enum_range(NULL::mood)) AS m")
        assert [rec["m"] for rec in moods] == list(MOODS), moods

    async def _step_fetchrow(self, conn, w, r, count_mood, echo):
        mood = MOODS[(w + r) % 3]
        row = await conn.fetchrow("SELECT $1::mood AS m, $2::text AS t, $3::int * 2 AS n",
                                  mood, f"w{w}", r)
        assert (row["m"], row["t"], row["n"]) == (mood, f"w{w}", r * 2), row
        row = await echo.fetchrow(mood, r)
        assert (row["m"], row["n"]) == (mood, r + 1), row

    async def _step_prepared(self, conn, w, r, count_mood, echo):
        # The same prepared statement in a transaction, then outside one.
        async with conn.transaction():
            in_tx = {m: await count_mood.fetchval(w, m) for m in MOODS}
        outside = {m: await count_mood.fetchval(w, m) for m in MOODS}
        assert in_tx == outside, (in_tx, outside)
        total = await conn.fetchval("SELECT count(*) FROM people WHERE worker = $1", w)
        assert sum(outside.values()) == total, (outside, total)

    async def _step_rollback(self, conn, w, r, count_mood, echo):
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO rolled_back (worker, note) VALUES ($1, $2)",
                                   w, f"round {r}")
                await count_mood.fetchval(w, "ok")
                raise _Deliberate()
        except _Deliberate:
            pass
        # A statement error inside a transaction: the transaction is rolled back and the
        # connection (and its statement cache) goes on working.
        try:
            async with conn.transaction():
                await conn.fetchval("SELECT $1::mood", "furious")
        except asyncpg.InvalidTextRepresentationError:
            pass
        assert await conn.fetchval("SELECT count(*) FROM rolled_back WHERE worker = $1", w) == 0


class _Deliberate(Exception):
    pass


if __name__ == "__main__":
    harness.main()
