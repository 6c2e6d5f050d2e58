"""Protocol and session behaviour of transaction pooling: what a client must not
be able to tell apart from a direct PostgreSQL connection although its server
changes between transactions. Raw protocol (pgwire) where the exact bytes
matter: pipelined Syncs, the Flush pin, cancel keys; psycopg2 where a real
driver's habits matter: COPY, cancel, startup options, autocommit off, named
cursors. Then clients that die holding locks, and the client-side timeouts."""

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import threading
import time

import psycopg2
import psycopg2.errors

import harness
import pgwire
from harness import HOST, ProxyTestCase, wait_until

CANCEL_ROUNDS = 6  # each round: one pg_sleep(10) cancelled while 20 clients keep querying

# Two sessions that differ in every tracked setting. `date` is '05/03/2024' read
# under DateStyle's field order; `noon_utc` is 12:00 UTC shown in TimeZone.
# (DateStyle stays ISO: psycopg2 itself SETs any other output style to ISO.)
SESSION_A = {"TimeZone": "Europe/Berlin", "DateStyle": "ISO, DMY", "search_path": "sa,public",
             "application_name": "client-a", "marker": "a", "date": "2024-03-05",
             "noon_utc": "2024-01-01 13:00:00+01"}
SESSION_B = {"TimeZone": "America/New_York", "DateStyle": "ISO, MDY", "search_path": "sb,public",
             "application_name": "client-b", "marker": "b", "date": "2024-05-03",
             "noon_utc": "2024-01-01 07:00:00-05"}


def shutdown_fd(fd: int) -> None:
    """Cuts the TCP connection behind a driver's socket so its blocked read returns."""
    try:
        with socket.socket(fileno=os.dup(fd)) as s:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class TxnProtocolTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql("""
            CREATE SCHEMA sa AUTHORIZATION app;
            CREATE SCHEMA sb AUTHORIZATION app;
            CREATE TABLE sa.marker (v text); INSERT INTO sa.marker VALUES ('a');
            CREATE TABLE sb.marker (v text); INSERT INTO sb.marker VALUES ('b');
            CREATE TABLE copytest (id int PRIMARY KEY, v text);
            CREATE TABLE copy_parent (id int PRIMARY KEY);
            INSERT INTO copy_parent VALUES (1), (2);
            CREATE TABLE copy_child (id int, parent int REFERENCES copy_parent);
            CREATE TABLE copy_deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED);
            CREATE TABLE locktest (id int PRIMARY KEY, v int);
            INSERT INTO locktest SELECT g, 0 FROM generate_series(1, 10) g;
            CREATE TABLE txtest (client int, v text);
            ALTER TABLE sa.marker OWNER TO app; ALTER TABLE sb.marker OWNER TO app;
            ALTER TABLE copytest OWNER TO app; ALTER TABLE copy_parent OWNER TO app;
            ALTER TABLE copy_child OWNER TO app; ALTER TABLE copy_deferred OWNER TO app;
            ALTER TABLE locktest OWNER TO app; ALTER TABLE txtest OWNER TO app;
        """)
        # One server: every client shares it, so any state leaking between
        # clients, or a server released too early, shows.
        cls.single = cls.launch_sluice(pool_mode="transaction", pool_size=1,
                                       pool={"timeout": "20s"})
        cls.pair = cls.launch_sluice(pool_mode="transaction", pool_size=2,
                                     pool={"timeout": "20s"})
        cls.sluice = cls.launch_sluice(pool_mode="transaction", pool_size=4,
                                       pool={"timeout": "20s"})

    @classmethod
    def tearDownClass(cls):
        for sluice in (cls.single, cls.pair, cls.sluice):
            sluice.stop()
        super().tearDownClass()

    # -- helpers --------------------------------------------------------------

    def wire(self, sluice: harness.Sluice, timeout: float = 10.0, **kwargs) -> pgwire.Connection:
        conn = sluice.connect(self.client_user, self.client_password, timeout=timeout, **kwargs)
        self.addCleanup(conn.close_without_terminate)
        return conn

    def pg2(self, sluice: harness.Sluice, *, autocommit: bool = False, **kwargs):
        conn = psycopg2.connect(host=HOST, port=sluice.port, user=self.client_user,
                                password=self.client_password, dbname="postgres",
                                connect_timeout=5, **kwargs)
        conn.autocommit = autocommit
        self.addCleanup(conn.close)
        return conn

    @contextlib.contextmanager
    def deadline(self, seconds: float, what: str, *conns):
        """Bounds blocking driver calls: past `seconds`, the connections' sockets
        are shut down (so the driver's read returns) and the test fails."""
        fired = threading.Event()

        def fire():
            fired.set()
            for conn in conns:
                shutdown_fd(conn.fileno())

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except Exception as exc:
            if fired.is_set():
                raise AssertionError(f"{what}: no answer within {seconds}s") from exc
            raise
        finally:
            timer.cancel()
        if fired.is_set():
            self.fail(f"{what}: no answer within {seconds}s")

    def direct(self) -> pgwire.Connection:
        conn = self.pg.connect()
        self.addCleanup(conn.close)
        return conn

    def wait_for_active(self, admin: pgwire.Connection, query_text: str, timeout: float = 10):
        """Waits until PostgreSQL runs a query containing query_text (not ours)."""
        sql = ("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> "
               f"pg_backend_pid() AND query LIKE {harness.sql_literal('%' + query_text + '%')}")
        return wait_until(lambda: admin.query(sql), timeout, 0.05,
                          what=f"PostgreSQL to run {query_text!r}")

    # -- pipelining -----------------------------------------------------------

    def test_pipelined_syncs_in_one_write(self):
        """Many Parse/Bind/Execute/Sync batches (and a simple Query) sent in one
        write, on a one-server pool that another client keeps asking for: every
        reply comes back in order, one ReadyForQuery per Sync, all from one
        server, and the other client only ever sees its own answers."""
        pipeliner = self.wire(self.single)
        other = self.wire(self.single)
        stop = threading.Event()
        other_seen, other_errors = [], []

        def other_loop():
            i = 0
            try:
                while not stop.is_set():
                    rows = other.query(f"SELECT 'other', {i}")
                    if rows != [["other", str(i)]]:
                        other_errors.append(f"query {i} got {rows}")
                    other_seen.append(i)
                    i += 1
            except Exception as exc:
                other_errors.append(repr(exc))

        sql = "SELECT $1::int AS k, pg_backend_pid() AS pid, pg_sleep($2::float8)::text AS slept"
        batches, expected = [], []
        for k in range(16):
            delay = "0.05" if k % 5 == 2 else "0"
            if k == 0:
                batches.append(pgwire.parse_message("pipe_s", sql))
                expected += ["1"]
            if k == 8:  # a simple Query in the middle of the pipeline
                batches.append(pgwire.frontend_message("Q", b"SELECT 'mid'\0"))
                expected += ["T", "D", "C", "Z"]
            if k % 4 == 3:  # unnamed statements, parsed in their own batch
                batches.append(pgwire.parse_message("", sql))
                batches.append(pgwire.bind_message("", "", (str(k), delay)))
                expected += ["1"]
            else:
                batches.append(pgwire.bind_message("", "pipe_s", (str(k), delay)))
            batches += [pgwire.execute_message(), pgwire.SYNC_MESSAGE]
            expected += ["2", "D", "C", "Z"]

        worker = threading.Thread(target=other_loop, daemon=True)
        worker.start()
        try:
            wait_until(lambda: len(other_seen) >= 3, 10, 0.01, what="the other client to run")
            pipeliner.send_raw(b"".join(batches))  # one write
            replies = []
            while sum(1 for kind, _ in replies if kind == "Z") < expected.count("Z"):
                replies += pgwire.read_until_ready(pipeliner)
        finally:
            stop.set()
            worker.join(15)
        self.assertEqual(pgwire.errors_in(replies), [])
        self.assertEqual([kind for kind, _ in replies], expected)
        rows = pgwire.data_rows(replies)
        mid = rows.pop(8)
        self.assertEqual(mid, ["mid"])
        self.assertEqual([int(r[0]) for r in rows], list(range(16)), "replies out of order")
        self.assertEqual(len({r[1] for r in rows}), 1, "a pipeline moved between servers")
        self.assertEqual(other_errors, [], "the other client saw someone else's replies")
        self.assertGreater(len(other_seen), 3)
        # Released after the last Sync: both clients keep going on the one server.
        self.assertEqual(other.query("SELECT 'after'"), [["after"]])
        self.assertEqual(pipeliner.query("SELECT 'after'"), [["after"]])

    # -- the Flush pin --------------------------------------------------------

    def test_flush_keeps_the_server_until_sync(self):
        """Parse/Describe/Flush, read the replies, then Bind/Execute/Sync (asyncpg's
        pattern) while another client keeps the two-server pool busy: the Bind
        reaches the backend that has the statement, and nobody else gets that
        backend in between."""
        client = self.wire(self.pair)
        other = self.wire(self.pair)
        stop = threading.Event()
        other_seen, other_errors = [], []  # (sent at, answered at, backend pid)

        def other_loop():
            try:
                while not stop.is_set():
                    sent = time.monotonic()
                    pid = int(other.query("SELECT pg_backend_pid()")[0][0])
                    other_seen.append((sent, time.monotonic(), pid))
            except Exception as exc:
                other_errors.append(repr(exc))

        worker = threading.Thread(target=other_loop, daemon=True)
        worker.start()
        try:
            wait_until(lambda: len(other_seen) >= 3, 10, 0.01, what="the other client to run")
            for statement in ("", "flush_s"):
                with self.subTest(statement=statement or "unnamed"):
                    client._arm()
                    client.send_raw(pgwire.parse_message(statement, "SELECT pg_backend_pid()")
                                    + pgwire.describe_message("S", statement)
                                    + pgwire.FLUSH_MESSAGE)
                    kinds = [client.read_message()[0] for _ in range(3)]
                    self.assertEqual(kinds, ["1", "t", "T"])
                    pinned_at = time.monotonic()
                    time.sleep(0.5)  # the other client runs meanwhile
                    released_before = time.monotonic()
                    client.send_raw(pgwire.bind_message("", statement)
                                    + pgwire.execute_message() + pgwire.SYNC_MESSAGE)
                    replies = pgwire.read_until_ready(client)
                    self.assertEqual(pgwire.errors_in(replies), [],
                                     "the Bind after the Flush reached another backend")
                    self.assertEqual([k for k, _ in replies], ["2", "D", "C", "Z"])
                    pid = int(pgwire.data_rows(replies)[0][0])
                    # Queries the other client sent while the client held its server.
                    during = [p for sent, answered, p in other_seen
                              if pinned_at < sent and answered < released_before]
                    self.assertGreater(len(during), 0, "the other client was not running")
                    self.assertNotIn(pid, set(during),
                                     f"the pinned backend served another client before Sync "
                                     f"({during.count(pid)} of {len(during)} queries)")
        finally:
            stop.set()
            worker.join(15)
        self.assertEqual(other_errors, [])
        self.assertEqual(client.query("SELECT 1"), [["1"]])

    # -- COPY -----------------------------------------------------------------

    @staticmethod
    def copy_rows(first: int, count: int) -> str:
        return "".join(f"{i}\trow {i}\n" for i in range(first, first + count))

    def test_copy_outside_and_inside_transactions(self):
        conn = self.pg2(self.sluice, autocommit=True)
        with self.deadline(30, "COPY through sluice", conn), conn.cursor() as cur:
            cur.execute("TRUNCATE copytest")
            data = self.copy_rows(1, 1000)
            cur.copy_expert("COPY copytest (id, v) FROM STDIN", io.StringIO(data))
            self.assertEqual(cur.rowcount, 1000)
            out = io.StringIO()
            cur.copy_expert("COPY (SELECT id, v FROM copytest ORDER BY id) TO STDOUT", out)
            self.assertEqual(out.getvalue(), data)

            # Inside an explicit transaction: both directions, then rollback.
            conn.autocommit = False
            cur.execute("SELECT count(*) FROM copytest")
            more = self.copy_rows(1001, 500)
            cur.copy_expert("COPY copytest (id, v) FROM STDIN", io.StringIO(more))
            out = io.StringIO()
            cur.copy_expert("COPY (SELECT id, v FROM copytest WHERE id > 1000 ORDER BY id) "
                            "TO STDOUT", out)
            self.assertEqual(out.getvalue(), more)
            self.assertEqual(self.direct().query("SELECT count(*) FROM copytest"), [["1000"]],
                             "uncommitted COPY rows visible outside the transaction")
            conn.rollback()
            cur.execute("SELECT count(*) FROM copytest")
            self.assertEqual(cur.fetchone(), (1000,))
            # ... and commit.
            cur.copy_expert("COPY copytest (id, v) FROM STDIN", io.StringIO(more))
            conn.commit()
        self.assertEqual(self.direct().query("SELECT count(*), max(id) FROM copytest"),
                         [["1500", "1500"]])

    def test_copy_error_before_copydone(self):
        """A bad row at the start of a large COPY: the server fails the COPY while
        the client is still sending data; the connection must stay usable."""
        bad = "oops\tnot a number\n" + self.copy_rows(100000, 60000)  # ~1 MB after the bad row
        for autocommit in (True, False):
            with self.subTest(autocommit=autocommit):
                conn = self.pg2(self.sluice, autocommit=autocommit)
                with self.deadline(30, "failing COPY", conn), conn.cursor() as cur:
                    with self.assertRaises(psycopg2.errors.InvalidTextRepresentation):
                        cur.copy_expert("COPY copytest (id, v) FROM STDIN", io.StringIO(bad))
                    if not autocommit:
                        conn.rollback()
                    for i in range(5):
                        cur.execute("SELECT %s::int", (i,))
                        self.assertEqual(cur.fetchone(), (i,))
                    if not autocommit:
                        conn.commit()
                self.assertEqual(
                    self.direct().query("SELECT count(*) FROM copytest WHERE id >= 100000"),
                    [["0"]])

    def test_copy_error_after_copydone(self):
        """Errors raised once all the data is in: a foreign key checked at the end
        of the statement, and a deferred unique constraint checked at COMMIT."""
        conn = self.pg2(self.sluice, autocommit=True)
        with self.deadline(30, "COPY failing after CopyDone", conn), conn.cursor() as cur:
            with self.assertRaises(psycopg2.errors.ForeignKeyViolation):
                cur.copy_expert("COPY copy_child (id, parent) FROM STDIN",
                                io.StringIO("1\t1\n2\t999\n3\t2\n"))
            cur.execute("SELECT count(*) FROM copy_child")
            self.assertEqual(cur.fetchone(), (0,))

            conn.autocommit = False
            cur.copy_expert("COPY copy_deferred (id) FROM STDIN", io.StringIO("1\n2\n1\n"))
            cur.execute("SELECT count(*) FROM copy_deferred")
            self.assertEqual(cur.fetchone(), (3,))  # duplicates allowed until COMMIT
            with self.assertRaises(psycopg2.errors.UniqueViolation):
                conn.commit()
            cur.execute("SELECT count(*) FROM copy_deferred")
            self.assertEqual(cur.fetchone(), (0,))
            conn.commit()
            cur.copy_expert("COPY copy_child (id, parent) FROM STDIN", io.StringIO("7\t1\n"))
            conn.commit()
        self.assertEqual(self.direct().query("SELECT id FROM copy_child"), [["7"]])

    # -- cancel ---------------------------------------------------------------

    def test_cancel_reaches_only_its_query(self):
        """psycopg2's conn.cancel() on a client running pg_sleep(10) while 20 others
        run short queries on the same pool: the sleeper gets 57014 and nobody else
        sees an error. Several rounds, because the hazard is a race: PostgreSQL's
        postmaster signals the backend twice for one CancelRequest (its pid and
        its process group), so a server handed to the next client before the
        postmaster is done with the cancel can have that client's query
        cancelled (PgBouncer #717)."""
        admin = self.direct()
        sleeper = self.pg2(self.sluice, autocommit=True)
        workers = [self.pg2(self.sluice, autocommit=True) for _ in range(20)]
        stop = threading.Event()
        done = [0] * len(workers)
        worker_errors = []

        def work(n, conn):
            try:
                with conn.cursor() as cur:
                    while not stop.is_set():
                        cur.execute("SELECT %s, pg_sleep(0.002)", (done[n],))
                        if cur.fetchone()[0] != done[n]:
                            worker_errors.append(f"worker {n} got a wrong row")
                        done[n] += 1
            except Exception as exc:
                worker_errors.append(f"worker {n} at {time.monotonic():.3f}: {exc!r}")

        def sleep_10(outcome):
            try:
                with sleeper.cursor() as cur:
                    cur.execute("SELECT pg_sleep(10)")
                outcome["error"] = None
            except Exception as exc:
                outcome["error"] = exc
            outcome["ended"] = time.monotonic()

        threads = [threading.Thread(target=work, args=(n, c), daemon=True)
                   for n, c in enumerate(workers)]
        rounds = []
        with self.deadline(15 + 5 * CANCEL_ROUNDS, "the cancel test", sleeper, *workers):
            for t in threads:
                t.start()
            for _ in range(CANCEL_ROUNDS):
                outcome = {}
                sleeping = threading.Thread(target=sleep_10, args=(outcome,), daemon=True)
                sleeping.start()
                self.wait_for_active(admin, "pg_sleep(10)")
                time.sleep(0.3)
                outcome["cancelled"] = time.monotonic()
                sleeper.cancel()
                sleeping.join(12)
                rounds.append(outcome)
                time.sleep(0.3)  # a stray cancel lands on a worker about now
            stop.set()
            for t in threads:
                t.join(10)
        for i, outcome in enumerate(rounds):
            self.assertIn("error", outcome, f"round {i}: the cancelled query never returned")
            error = outcome["error"]
            self.assertIsInstance(error, psycopg2.errors.QueryCanceled, f"round {i}: {error!r}")
            self.assertEqual(error.pgcode, "57014")
            self.assertLess(outcome["ended"] - outcome["cancelled"], 5,
                            f"round {i}: the cancel took effect only when pg_sleep(10) ended")
        cancels = ", ".join(f"{o['cancelled']:.3f}" for o in rounds)
        self.assertEqual(worker_errors, [],
                         f"another client's query was cancelled (cancels sent at {cancels})")
        self.assertTrue(all(done), f"a worker ran no query: {done}")
        with sleeper.cursor() as cur:
            cur.execute("SELECT 1")
            self.assertEqual(cur.fetchone(), (1,))

    def test_cancel_with_wrong_key_does_nothing(self):
        admin = self.direct()
        conn = self.wire(self.sluice, timeout=15)
        self.assertIsNotNone(conn.backend_key)
        pid, secret = conn.backend_key
        conn._arm()
        conn.send("Q", b"SELECT 'slept', pg_sleep(1.5)\0")
        self.wait_for_active(admin, "pg_sleep(1.5)")
        for wrong in ((pid, secret ^ 1), (pid ^ 1, secret), (pid + 7919, secret + 1)):
            pgwire.send_cancel(HOST, self.sluice.port, *wrong)
        replies = pgwire.read_until_ready(conn)
        self.assertEqual(pgwire.errors_in(replies), [], "a wrong cancel key cancelled the query")
        self.assertEqual(pgwire.data_rows(replies), [["slept", ""]])

        # The right key does cancel (so the wrong ones were really checked).
        conn._arm()
        conn.send("Q", b"SELECT pg_sleep(10)\0")
        self.wait_for_active(admin, "pg_sleep(10)")
        pgwire.send_cancel(HOST, self.sluice.port, pid, secret)
        conn.timeout = 5
        errors = pgwire.errors_in(pgwire.read_until_ready(conn))
        self.assertEqual([e.sqlstate for e in errors], ["57014"])
        self.assertEqual(conn.query("SELECT 2"), [["2"]])

    # -- session settings -------------------------------------------------------

    def session_client(self, session: dict, *, direct: bool = False):
        """A psycopg2 client that asks for `session`'s settings at startup, through
        the one-server sluice or (direct=True) straight to PostgreSQL."""
        options = " ".join(f"-c {name}={session[name].replace(' ', '')}"
                           for name in ("TimeZone", "DateStyle", "search_path"))
        if not direct:
            return self.pg2(self.single, autocommit=True, options=options,
                            application_name=session["application_name"])
        conn = psycopg2.connect(host=HOST, port=self.pg.port, user=self.upstream_user,
                                password=self.upstream_password, dbname="postgres",
                                connect_timeout=5, options=options,
                                application_name=session["application_name"])
        conn.autocommit = True
        self.addCleanup(conn.close)
        return conn

    @staticmethod
    def observe(conn) -> dict:
        with conn.cursor() as cur:
            seen = {}
            cur.execute("SHOW TimeZone")
            seen["TimeZone"] = cur.fetchone()[0]
            cur.execute("SELECT current_setting('DateStyle'), current_setting('application_name'), "
                        "current_setting('search_path'), (SELECT v FROM marker), "
                        "'05/03/2024'::date::text, '2024-01-01 12:00:00+00'::timestamptz::text, "
                        "pg_backend_pid()")
            (seen["DateStyle"], seen["application_name"], seen["search_path"], seen["marker"],
             seen["date"], seen["noon_utc"], seen["pid"]) = cur.fetchone()
        # sluice restores a search_path element by element ('sa', 'public'), which
        # PostgreSQL shows as "sa, public": the same path.
        seen["search_path"] = seen["search_path"].replace(" ", "")
        return seen

    def test_each_client_keeps_its_own_settings_on_a_shared_server(self):
        for session in (SESSION_A, SESSION_B):  # what PostgreSQL itself shows
            seen = self.observe(self.session_client(session, direct=True))
            seen.pop("pid")
            self.assertEqual(seen, session, "the test's expectations are not PostgreSQL's")
        a, b = self.session_client(SESSION_A), self.session_client(SESSION_B)
        pids = set()
        with self.deadline(30, "interleaved sessions", a, b):
            for round_ in range(25):
                for conn, session in ((a, SESSION_A), (b, SESSION_B)):
                    seen = self.observe(conn)
                    pids.add(seen.pop("pid"))
                    self.assertEqual(seen, {k: session[k] for k in seen},
                                     f"round {round_}: {session['application_name']} sees "
                                     "another client's settings")
            self.assertEqual(len(pids), 1, "the one-server pool used several servers")

            # SET in a committed transaction stays with that client only.
            a.autocommit = False
            with a.cursor() as cur:
                cur.execute("SET TimeZone = 'Asia/Tokyo'")
            a.commit()
            a.autocommit = True
            mine = dict(SESSION_A, TimeZone="Asia/Tokyo", noon_utc="2024-01-01 21:00:00+09")
            # ... and one rolled back does not stick, as on PostgreSQL.
            b.autocommit = False
            with b.cursor() as cur:
                cur.execute("SET TimeZone = 'Australia/Sydney'")
                cur.execute("SHOW TimeZone")
                self.assertEqual(cur.fetchone()[0], "Australia/Sydney")
            b.rollback()
            b.autocommit = True
            for round_ in range(10):
                for conn, session in ((a, mine), (b, SESSION_B)):
                    seen = self.observe(conn)
                    seen.pop("pid")
                    self.assertEqual(seen, {k: session[k] for k in seen},
                                     f"after SET, round {round_}: "
                                     f"{session['application_name']} sees wrong settings")

    # -- clients dying inside a transaction -------------------------------------

    def lock_sql(self, row: int) -> str:
        return f"SELECT id FROM locktest WHERE id = {row} FOR UPDATE"

    def assert_row_locked(self, row: int) -> None:
        with self.pg.connect() as admin:
            admin.query("SET lock_timeout = '100ms'")
            with self.assertRaises(pgwire.ServerError) as cm:
                admin.query(f"BEGIN; {self.lock_sql(row)}")
            self.assertEqual(cm.exception.sqlstate, "55P03")  # lock_not_available

    def assert_lock_free_within_1s(self, row: int, died_at: float) -> None:
        with self.pg.connect() as admin:
            admin.query("SET lock_timeout = '1s'")
            try:
                admin.query(f"BEGIN; {self.lock_sql(row)}")
            except pgwire.ServerError as exc:
                activity = admin.query("SELECT pid, state, xact_start, query FROM "
                                       "pg_stat_activity WHERE usename = 'app'")
                self.fail(f"row {row} still locked {time.monotonic() - died_at:.1f}s after the "
                          f"client died ({exc}); upstream sessions: {activity}")
            admin.query("ROLLBACK")

    def test_killed_psql_releases_its_row_lock(self):
        row = 1
        proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-h", HOST, "-p", str(self.sluice.port),
             "-U", self.client_user, "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=harness.client_env(self.client_password), start_new_session=True)
        try:
            proc.stdin.write(f"BEGIN;\n{self.lock_sql(row)};\n\\echo LOCKED\n".encode())
            proc.stdin.flush()
            out = harness.read_until(proc, b"LOCKED", timeout=15)
            self.assertIn(b"LOCKED", out, "psql never took the lock")
            self.assert_row_locked(row)
            os.kill(proc.pid, signal.SIGKILL)
            died_at = time.monotonic()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()
        self.assert_lock_free_within_1s(row, died_at)

    def test_abrupt_close_releases_its_row_lock(self):
        for row, how in ((2, "abort"), (3, "close_without_terminate")):
            with self.subTest(how=how):
                conn = self.wire(self.sluice)
                conn.query("BEGIN")
                self.assertEqual(conn.query(self.lock_sql(row)), [[str(row)]])
                self.assertEqual(conn.transaction_status, "T")
                self.assert_row_locked(row)
                getattr(conn, how)()  # RST, or FIN without Terminate
                self.assert_lock_free_within_1s(row, time.monotonic())
        with self.wire(self.sluice) as fresh:
            self.assertEqual(fresh.query("SELECT now() = statement_timestamp()"), [["t"]])

    # -- psycopg2 as it comes -------------------------------------------------

    def test_psycopg2_defaults_transactions_and_named_cursor(self):
        """Autocommit off (a BEGIN before the first statement), commit, rollback,
        an error then rollback, and a server-side cursor fetched in chunks, by
        five clients at once on two servers."""
        clients = 5
        errors = []

        def scenario(n: int, conn) -> None:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO txtest VALUES (%s, 'one')", (n,))
                cur.execute("SELECT pg_backend_pid(), txid_current()")
                first = cur.fetchone()
                cur.execute("SELECT pg_backend_pid(), txid_current()")
                if cur.fetchone() != first:
                    errors.append(f"client {n}: the transaction moved between servers")
                conn.commit()
                cur.execute("INSERT INTO txtest VALUES (%s, 'two')", (n,))
                conn.rollback()
                cur.execute("INSERT INTO txtest VALUES (%s, 'three')", (n,))
                try:
                    cur.execute("SELECT 1/0")
                    errors.append(f"client {n}: 1/0 did not fail")
                except psycopg2.errors.DivisionByZero:
                    pass
                conn.rollback()
                cur.execute("INSERT INTO txtest VALUES (%s, 'four')", (n,))
                conn.commit()
            with conn.cursor(name=f"chunks_{n}") as named:
                named.itersize = 100
                named.execute("SELECT g FROM generate_series(1, 1000) g")
                total = sum(row[0] for row in named)
                if total != 500500:
                    errors.append(f"client {n}: the named cursor summed to {total}")
            conn.commit()

        conns = [self.pg2(self.pair) for _ in range(clients)]
        for conn in conns:
            self.assertFalse(conn.autocommit)

        def run(n, conn):
            try:
                scenario(n, conn)
            except Exception as exc:
                errors.append(f"client {n}: {exc!r}")

        threads = [threading.Thread(target=run, args=(n, c), daemon=True)
                   for n, c in enumerate(conns)]
        with self.deadline(40, "psycopg2 clients", *conns):
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
        self.assertEqual(errors, [])
        rows = self.direct().query("SELECT client, string_agg(v, ',' ORDER BY v) FROM txtest "
                                   "WHERE client >= 0 GROUP BY client ORDER BY client")
        self.assertEqual(rows, [[str(n), "four,one"] for n in range(clients)])

    # -- client timeouts ---------------------------------------------------------

    def launch_with(self, **pool) -> harness.Sluice:
        sluice = self.launch_sluice(pool_mode="transaction", pool_size=2, pool=pool)
        self.addCleanup(sluice.stop)
        return sluice

    def assert_ended(self, conn: pgwire.Connection, sql: str, what: str):
        rows, error, closed = pgwire.query_outcome(conn, sql)
        self.assertTrue(error is not None or closed,
                        f"{what}: the client was still served (rows {rows})")
        return error, closed

    def assert_logged(self, sluice: harness.Sluice, pattern: str, what: str) -> None:
        regex = re.compile(pattern, re.I)
        try:
            wait_until(lambda: any(regex.search(line) for line in sluice.log_text().splitlines()),
                       5, 0.1, what=what)
        except TimeoutError:
            self.fail(f"sluice never logged {what} (/{pattern}/); log tail:\n"
                      f"{sluice.log_tail(30)}")

    def test_client_idle_timeout(self):
        sluice = self.launch_with(client_idle_timeout="1s")
        busy, idle = self.wire(sluice), self.wire(sluice)
        self.assertEqual(idle.query("SELECT 1"), [["1"]])
        for i in range(8):  # busy: one query every 0.25 s, never idle 1 s
            self.assertEqual(busy.query(f"SELECT {i}"), [[str(i)]])
            time.sleep(0.25)
        self.assert_ended(idle, "SELECT 2", "idle 2 s with client_idle_timeout 1s")
        self.assertEqual(busy.query("SELECT 'still here'"), [["still here"]])
        self.assert_logged(sluice, r"client gone.*idle", "closing the idle client")

    def test_idle_transaction_timeout_rolls_back(self):
        sluice = self.launch_with(idle_transaction_timeout="1s")
        in_tx, outside = self.wire(sluice), self.wire(sluice)
        in_tx.query("BEGIN")
        in_tx.query("INSERT INTO txtest VALUES (-1, 'idle in transaction')")
        outside.query("SELECT 1")
        time.sleep(2)
        self.assert_ended(in_tx, "COMMIT", "idle 2 s inside BEGIN with "
                                           "idle_transaction_timeout 1s")
        self.assertEqual(outside.query("SELECT 'idle outside is fine'"),
                         [["idle outside is fine"]])
        with self.pg.connect() as admin:
            self.assertEqual(admin.query("SELECT count(*) FROM txtest WHERE client = -1"),
                             [["0"]], "the timed-out transaction was committed")
            wait_until(lambda: not admin.query(
                "SELECT 1 FROM pg_stat_activity WHERE usename = 'app' "
                "AND state LIKE 'idle in transaction%'"), 5, 0.1,
                what="no upstream session left idle in transaction")
        self.assert_logged(sluice, r"client gone.*idle.*transaction",
                           "closing the client idle in a transaction")

    def test_query_timeout_cancels_the_query_and_keeps_the_client(self):
        # As PostgreSQL's statement_timeout: 57014, and the session goes on (issue 13.7).
        sluice = self.launch_with(query_timeout="1s")
        conn = self.wire(sluice, timeout=20)
        self.assertEqual(conn.query("SELECT 'quick', pg_sleep(0.2)"), [["quick", ""]])
        rows, error, closed = pgwire.query_outcome(conn, "SELECT pg_sleep(30)")
        self.assertFalse(closed, "query_timeout closed the client")
        self.assertIsNotNone(error, f"pg_sleep(30) ran to its end: {rows}")
        self.assertEqual(error.sqlstate, "57014", error.fields)
        self.assertIn("query_timeout", error.fields.get("M", ""))
        self.assertEqual(conn.query("SELECT 3"), [["3"]])
        # Inside a transaction the transaction fails, as with statement_timeout.
        conn.query("BEGIN")
        rows, error, closed = pgwire.query_outcome(conn, "SELECT pg_sleep(30)")
        self.assertFalse(closed)
        self.assertEqual(error.sqlstate, "57014", error.fields)
        rows, error, closed = pgwire.query_outcome(conn, "SELECT 4")
        self.assertEqual(error.sqlstate, "25P02", error.fields)
        conn.query("ROLLBACK")
        self.assertEqual(conn.query("SELECT 5"), [["5"]])
        # The query really stopped on the server, and the server went on serving.
        with self.pg.connect() as admin:
            self.assertEqual(admin.query(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
                "AND state = 'active' AND pid <> pg_backend_pid()"), [["0"]])
        self.assertNotIn("server dropped", sluice.log_text())

if __name__ == "__main__":
    harness.main()
