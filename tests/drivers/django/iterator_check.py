"""Django 3.2 (Debian's python3-django on psycopg2) QuerySet.iterator() through sluice: run by
tests/drivers/test_django_iterator.py as
    /usr/bin/python3 iterator_check.py CASE ROWS PINNED
with PGHOST_TEST, PGPORT_TEST, PGUSER_TEST and PGPASSWORD_TEST in the environment, against a
table dj_items holding n = 1..ROWS. PINNED is 1 when a pool of one server sits in between (so
a client waiting for it shows when the server is given back), 0 on PostgreSQL itself.

In autocommit (Django's default) iterator() reads through a server-side cursor that must
outlive each statement: psycopg2 sends DECLARE "_django_curs_..." NO SCROLL CURSOR WITH HOLD
FOR ..., then FETCH FORWARD chunk_size FROM it until a FETCH returns nothing, then CLOSE. Every
FETCH must reach the server session that holds the cursor, so a transaction-mode pooler keeps
that server for the client from DECLARE to CLOSE (or to the end of the client's session).

Cases:
    while_busy      iterate with small chunks while other threads keep the pool busy; every
                    row arrives, in order, and the client's own queries between chunks run on
                    the cursor's server session (pg_backend_pid() never changes)
    pinned          with PINNED, a client that asks for the server during the iteration gets it
                    only after the last row has arrived, and never sees the cursor; the server
                    is given back after an iteration abandoned half-way (its CLOSE)

Prints every failure as "FAIL ..." and one "RESULT ..." line; exits 1 on any failure.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the cursorapp package

settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": os.environ["PGUSER_TEST"],
            "PASSWORD": os.environ["PGPASSWORD_TEST"],
            "HOST": os.environ["PGHOST_TEST"],
            "PORT": os.environ["PGPORT_TEST"],
            "OPTIONS": {"connect_timeout": 10},
        }
    },
    INSTALLED_APPS=["cursorapp"],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.db import connection  # noqa: E402  (after setup)

from cursorapp.models import Item  # noqa: E402

CHUNK = 20
failures: list[str] = []
stats: dict[str, int] = {}
lock = threading.Lock()


def fail(what: str) -> None:
    with lock:
        failures.append(what)
        if len(failures) <= 40:
            print(f"FAIL {what}", flush=True)


def count(key: str, by: int = 1) -> None:
    with lock:
        stats[key] = stats.get(key, 0) + by


def scalar(sql: str, params=()):
    with connection.cursor() as cur:  # the thread's own connection: Django's are per thread
        cur.execute(sql, params)
        return cur.fetchone()[0]


def iterate_all(rows: int, between_chunks=None) -> list[int]:
    """Every n from iterator(chunk_size=CHUNK), checking each row; calls between_chunks(i)
    after each chunk's first row (the FETCH that brought it has completed)."""
    assert connection.get_autocommit(), "iterator() in autocommit: the WITH HOLD cursor"
    seen = []
    for i, item in enumerate(Item.objects.order_by("n").iterator(chunk_size=CHUNK)):
        if item.label != f"item {item.n}":
            fail(f"row {i}: {item.n} {item.label!r}")
        seen.append(item.n)
        if between_chunks is not None and i % CHUNK == 0:
            between_chunks(i)
    if seen != list(range(1, rows + 1)):
        fail(f"iterator() returned {len(seen)} rows: {seen[:5]}...{seen[-5:]}")
    return seen


def in_thread(target, *args) -> threading.Thread:
    def body():
        try:
            target(*args)
        except Exception:  # noqa: BLE001 - reported as a failure
            fail(f"{target.__name__}: {traceback.format_exc()}")
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def join(threads, what: str) -> None:
    for thread in threads:
        thread.join(120)
        if thread.is_alive():
            fail(f"{what}: a thread hung")


def while_busy(rows: int, _pinned: bool) -> None:
    done = threading.Event()

    def busy(k: int) -> None:
        while not done.is_set():
            n = (k * 37 + stats.get("busy_queries", 0)) % rows + 1
            if Item.objects.filter(n=n).values_list("label", flat=True).first() != f"item {n}":
                fail(f"busy client {k}: row {n}")
            if Item.objects.filter(n__lte=n).count() != n:
                fail(f"busy client {k}: count up to {n}")
            count("busy_queries")

    others = [in_thread(busy, k) for k in range(4)]
    try:
        for _ in range(2):
            pids = set()
            iterate_all(rows, lambda i: pids.add(scalar("SELECT pg_backend_pid()")))
            count("iterations")
            if len(pids) != 1:
                fail(f"the client's queries during the iteration ran on backends {sorted(pids)}")
            if scalar("SELECT count(*) FROM pg_cursors") != 0:
                fail("a cursor is still open after the iteration")
    finally:
        done.set()
        join(others, "busy clients")
        connection.close()


def pinned(rows: int, pinned_pool: bool) -> None:
    # 1. A client that asks for the server while the cursor is open.
    last_row_arrived = threading.Event()
    waiter_saw: dict = {}

    def waiter(started: threading.Event) -> None:
        started.set()
        waiter_saw["cursors"] = scalar("SELECT count(*) FROM pg_cursors")
        waiter_saw["after_last_row"] = last_row_arrived.is_set()

    threads: list[threading.Thread] = []
    seen = 0
    for item in Item.objects.order_by("n").iterator(chunk_size=CHUNK):
        seen += 1
        if item.n != seen:
            fail(f"row {seen}: n = {item.n}")
        if seen == CHUNK * 3 + 1:  # well into the iteration: another client asks
            started = threading.Event()
            threads.append(in_thread(waiter, started))
            started.wait(30)
        if seen == rows:
            # Before the FETCH that finds no more rows, and before the CLOSE: with the pool's
            # one server pinned to this client, the waiter cannot have run yet.
            last_row_arrived.set()
    count("iterations")
    if seen != rows:
        fail(f"iterator() returned {seen} rows, want {rows}")
    join(threads, "waiter")
    if waiter_saw.get("cursors") != 0:
        fail(f"the other client saw {waiter_saw.get('cursors')} open cursors")
    if pinned_pool and waiter_saw.get("after_last_row") is not True:
        fail("the other client got the server before the iteration ended")
    count("waiter_after_last_row", int(bool(waiter_saw.get("after_last_row"))))

    # 2. An iteration abandoned half-way: the generator's end closes the cursor (CLOSE), and
    # the server is free again for another client.
    iterator = Item.objects.order_by("n").iterator(chunk_size=CHUNK)
    first = [next(iterator).n for _ in range(CHUNK + 5)]
    if first != list(range(1, CHUNK + 6)):
        fail(f"abandoned iteration read {first}")
    del iterator  # GeneratorExit: Django's cursor_iter closes the cursor
    other_saw = {}
    join([in_thread(lambda: other_saw.update(c=scalar("SELECT count(*) FROM pg_cursors")))],
         "client after an abandoned iteration")
    if other_saw.get("c") != 0:
        fail(f"after an abandoned iteration another client saw {other_saw.get('c')} cursors")
    count("after_abandoned")

    connection.close()


CASES = {"while_busy": while_busy, "pinned": pinned}

if __name__ == "__main__":
    case, total_rows, pinned_arg = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    try:
        CASES[case](total_rows, pinned_arg)
    except Exception:  # noqa: BLE001 - reported as a failure
        fail(f"{case}: {traceback.format_exc()}")
    summary = " ".join(f"{k}={v}" for k, v in sorted(stats.items()))
    print(f"RESULT case={case} failures={len(failures)} {summary}", flush=True)
    sys.exit(1 if failures else 0)
