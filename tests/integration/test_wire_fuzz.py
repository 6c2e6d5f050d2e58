"""A protocol fuzzer over the wire: thousands of mutated startup packets, SCRAM
messages, extended-protocol batches, COPY and FunctionCall messages sent to a
running sluice (in CI, the ASan+UBSan build's), eight connections at a time.

Each case is valid traffic (what libpq, psql and pgbench send) with one to three
mutations: flipped bits, bytes set to edge values, bytes inserted, deleted or
repeated, a truncation, or a length field set to an edge value. Session cases
run on a logged-in connection and end with a Sync and a marker query; when the
marker comes back it must be this connection's own (a reply never crosses
clients), and the connection is reused; otherwise it is dropped.

After each batch a well-behaved client must still get correct results (simple
query, extended protocol with parameters, COPY in), PostgreSQL must see no more
backends than the pool size, and the daemon must be alive with no sanitizer
report in its log (harness.main() also fails on one found at exit). sluice runs
two worker threads, so the TSan build runs this too (ctest -L multi_worker).

The cases are reproducible: SLUICE_WIRE_FUZZ_SEED picks them (default 13),
SLUICE_WIRE_FUZZ_CASES how many (default 3000)."""

import os
import random
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import harness
import pgwire

SEED = int(os.environ.get("SLUICE_WIRE_FUZZ_SEED", "13"))
CASES = int(os.environ.get("SLUICE_WIRE_FUZZ_CASES", "3000"))
BATCH = 250
PARALLEL = 8
POOL_SIZE = 4
# How long a case waits for sluice to answer or close. A mutated length can make a message
# longer than what was sent: sluice then rightly waits for the rest, and the case gives up.
CASE_WAIT_S = 2.0


def msg(kind: str, body: bytes = b"") -> bytes:
    return kind.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def parse(name: str, sql: str, oids=()) -> bytes:
    return msg("P", cstr(name) + cstr(sql) + struct.pack("!H", len(oids))
               + b"".join(struct.pack("!I", o) for o in oids))


def bind(portal: str, statement: str, params=(), result_formats=()) -> bytes:
    body = cstr(portal) + cstr(statement) + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    body += struct.pack("!h", len(result_formats))
    body += b"".join(struct.pack("!h", f) for f in result_formats)
    return msg("B", body)


def describe(kind: str, name: str) -> bytes:
    return msg("D", kind.encode() + cstr(name))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return msg("E", cstr(portal) + struct.pack("!i", max_rows))


def close(kind: str, name: str) -> bytes:
    return msg("C", kind.encode() + cstr(name))


def function_call(oid: int, args: list[bytes]) -> bytes:
    """FunctionCall with binary arguments and a binary result."""
    body = struct.pack("!I", oid) + struct.pack("!hh", 1, 1) + struct.pack("!h", len(args))
    for a in args:
        body += struct.pack("!i", len(a)) + a
    return msg("F", body + struct.pack("!h", 1))


SYNC, FLUSH = msg("S"), msg("H")
INT4PL = 177  # int4pl(int4, int4)


class Mutator:
    """Applies one to three random mutations to a list of messages."""

    EDGE_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, ord("S"), ord("Q"), ord("p"))
    EDGE_LENGTHS = (0, 1, 3, 4, 5, 8, 0x7FFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __call__(self, messages: list[bytes], *, typed: bool = True) -> bytes:
        rng = self.rng
        if rng.random() < 0.04:
            return b"".join(messages)  # now and then the valid traffic itself
        if typed and rng.random() < 0.6:
            # Inside one message, its length then fixed up: bad framing ends a connection at
            # once (in PostgreSQL too), while a bad body gets past the framing to the decoders,
            # the statement relay and PostgreSQL, and the session goes on.
            i = rng.randrange(len(messages))
            body = self.mutate_bytes(messages[i][5:], [])
            kind = messages[i][:1] if rng.random() < 0.9 else bytes([rng.choice(b"PBDECSHQFdcfpX")])
            messages = [*messages[:i], kind + struct.pack("!I", len(body) + 4) + body,
                        *messages[i + 1:]]
            return b"".join(messages)
        starts, pos = [], 0
        for m in messages:
            starts.append(pos + (1 if typed else 0))
            pos += len(m)
        return self.mutate_bytes(b"".join(messages), starts)

    def mutate_bytes(self, original: bytes, length_fields: list[int]) -> bytes:
        """One to three mutations of `original`; `length_fields` are offsets of Int32 lengths."""
        rng = self.rng
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            if not data:
                data += bytes([rng.randrange(256)])
            op = rng.randrange(8)
            i = rng.randrange(len(data))
            if op == 0:
                data[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[i] = rng.choice(self.EDGE_BYTES)
            elif op == 2:
                data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 3:
                del data[i:i + rng.randint(1, 8)]
            elif op == 4:
                data[i:i] = data[i:i + rng.randint(1, 16)]
            elif op == 5:
                del data[rng.randrange(len(data) + 1):]
            elif op == 6 and length_fields:
                # A length field at a message boundary. Large values are rarer: each one stalls
                # its case.
                at = rng.choice(length_fields)
                if at + 4 <= len(data):
                    value = rng.choice(self.EDGE_LENGTHS[:6] if rng.random() < 0.7
                                       else self.EDGE_LENGTHS)
                    if rng.random() < 0.5:
                        (old,) = struct.unpack("!I", bytes(data[at:at + 4]))
                        value = (old + rng.choice((-2, -1, 1, 2))) & 0xFFFFFFFF
                    data[at:at + 4] = struct.pack("!I", value)
            else:
                j = rng.randrange(len(data))
                data[i], data[j] = data[j], data[i]
        return bytes(data)


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    """Everything the peer sends until it closes, or until `wait` seconds pass."""
    got = b""
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


class WireFuzzTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql("CREATE TABLE fuzz_copy (a int, b text)")
        cls.pg.psql(f"GRANT ALL ON fuzz_copy TO {harness.sql_ident(cls.upstream_user)}")
        # Few SCRAM iterations: a login per case would otherwise cost most of the run.
        verifier = pgwire.scram_verifier(cls.client_password, iterations=16)
        cls.sluice = cls.launch_sluice(
            users=[{"name": cls.client_user, "password": verifier}], pool_mode="transaction",
            pool_size=POOL_SIZE, workers=2, log_level="info", client_login_timeout="2s",
            pool={"timeout": "20s"})

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    # -- the cases ------------------------------------------------------------

    def startup_messages(self, rng: random.Random) -> list[bytes]:
        params = {"user": self.client_user, "database": "postgres"}
        if rng.random() < 0.5:
            params["application_name"] = "fuzz"
        if rng.random() < 0.3:
            params["options"] = rng.choice(["-c work_mem=4MB", "--search_path=x\\ y", "-X"])
        startup = pgwire.startup_packet(params, version=rng.choice(
            [pgwire.PROTOCOL_V3] * 6 + [196609, 131072]))
        choice = rng.randrange(5)
        if choice == 0:
            return [struct.pack("!II", 8, pgwire.SSL_REQUEST_CODE), startup]
        if choice == 1:
            return [struct.pack("!II", 8, 80877104), startup]  # GSSENCRequest
        if choice == 2:
            return [pgwire.cancel_request(rng.randrange(1 << 31), rng.randrange(1 << 31))]
        return [startup]

    def run_startup(self, data: bytes) -> None:
        with socket.create_connection((harness.HOST, self.sluice.port), timeout=5) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                return
            read_until_closed(s, CASE_WAIT_S)

    def run_auth(self, rng: random.Random, mutate: Mutator) -> None:
        """A valid StartupMessage, then a mutated SASLInitialResponse, or a valid one and a
        mutated SASLResponse (client-final with the real proof)."""
        conn = pgwire.Connection(harness.HOST, self.sluice.port, self.client_user,
                                 self.client_password, "postgres", timeout=5)
        conn._arm()
        conn.sock = socket.create_connection((harness.HOST, self.sluice.port), timeout=5)
        try:
            conn.send_raw(pgwire.startup_packet({"user": self.client_user,
                                                 "database": "postgres"}))
            kind, _ = conn.read_message()
            if kind != "R":
                return
            scram = pgwire._ScramClient(self.client_password)
            first = scram.client_first()
            initial = msg("p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
            if rng.random() < 0.5:
                conn.send_raw(mutate([initial]))
            else:
                conn.send_raw(initial)
                kind, body = conn.read_message()
                if kind != "R" or len(body) < 4:
                    return
                conn.send_raw(mutate([msg("p", scram.client_final(body[4:]))]))
            conn.sock.shutdown(socket.SHUT_WR)
            read_until_closed(conn.sock, CASE_WAIT_S)
        except (OSError, pgwire.ProtocolError, TimeoutError):
            pass
        finally:
            conn.close_without_terminate()

    def session_messages(self, rng: random.Random) -> list[bytes]:
        kind = rng.randrange(10)
        name = rng.choice(["", "s1", "__asyncpg_stmt_1__", "P_0"])
        if kind < 5:  # extended protocol, as drivers send it
            out = [parse(name, rng.choice(["SELECT $1::int + 1", "SELECT 1", "SELECT $1::text",
                                           "INSERT INTO fuzz_copy VALUES ($1::int, 'e')"]),
                         rng.choice([(), (23,), (25,)]))]
            if rng.random() < 0.3:
                out += [describe("S", name), FLUSH]
            out += [bind("", name, (b"7",), rng.choice([(), (1,), (0,)])), describe("P", ""),
                    execute("", rng.choice([0, 0, 1])), SYNC]
            if rng.random() < 0.3:
                out += [close("S", name), SYNC]
            return out
        if kind < 7:  # COPY in and out
            if rng.random() < 0.6:
                data = [msg("d", b"1\tone\n"), msg("d", b"2\t\\N\n")]
                end = msg("c") if rng.random() < 0.8 else msg("f", cstr("client gave up"))
                return [msg("Q", cstr("COPY fuzz_copy FROM STDIN")), *data, end]
            return [msg("Q", cstr("COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT"))]
        if kind < 9:  # FunctionCall, the legacy fast path
            return [function_call(INT4PL, [struct.pack("!i", 20), struct.pack("!i", 22)])]
        return [msg("Q", cstr(rng.choice(["SELECT 1", "BEGIN; SELECT 2; COMMIT",
                                          "PREPARE q AS SELECT 1; EXECUTE q; DEALLOCATE q",
                                          "DISCARD ALL", ""])))]

    def run_session(self, data: bytes, marker: str, local: threading.local) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            try:
                conn = self.sluice.connect(self.client_user, self.client_password, timeout=5)
            except (OSError, pgwire.ProtocolError, pgwire.ServerError, TimeoutError) as exc:
                local.errors.append(f"a valid login failed: {exc!r}")
                return
            local.conn = conn
        conn.timeout = CASE_WAIT_S
        conn._arm()
        try:
            conn.send_raw(data + SYNC + msg("Q", cstr(f"SELECT '{marker}'")))
            while True:
                kind, body = conn.read_message()
                if kind == "D" and b"alive-" in body:
                    value = body[6:].decode(errors="replace")
                    if value != marker:
                        local.errors.append(f"expected {marker}, got a reply for {value}")
                        raise pgwire.ProtocolError("crossed reply")
                    kind, body = conn.read_message()
                    while kind != "Z":
                        kind, body = conn.read_message()
                    local.outcomes["answered"] += 1
                    return  # answered in order: the connection stays for the next case
        except (OSError, pgwire.ProtocolError, TimeoutError):
            local.outcomes["dropped"] += 1
            conn.abort()
            local.conn = None

    # -- checks ---------------------------------------------------------------

    def assert_healthy(self, after: str) -> None:
        self.assertTrue(self.sluice.alive(), f"sluice died {after}; log:\n{self.sluice.log_tail()}")
        report = self.sluice.sanitizer_report()
        self.assertIsNone(report, f"sanitizer report {after}:\n{report}")
        with self.sluice.connect(self.client_user, self.client_password, timeout=20) as conn:
            self.assertEqual(conn.query("SELECT 40 + 2"), [["42"]], after)
            conn._arm()
            conn.send_raw(parse("", "SELECT $1::int * 2", (23,)) + bind("", "", (b"21",))
                          + execute() + SYNC)
            replies = pgwire.read_until_ready(conn)
            self.assertEqual(pgwire.data_rows(replies), [["42"]], after)
            self.assertEqual(pgwire.errors_in(replies), [], after)
            conn._arm()
            conn.send_raw(msg("Q", cstr("COPY fuzz_copy FROM STDIN")))
            kind, _ = conn.read_message()
            self.assertEqual(kind, "G", after)  # CopyInResponse
            conn.send_raw(msg("d", b"42\thealthy\n") + msg("c"))
            self.assertEqual(pgwire.errors_in(pgwire.read_until_ready(conn)), [], after)
            self.assertEqual(conn.query("SELECT count(*) > 0 FROM fuzz_copy WHERE b = 'healthy'"),
                             [["t"]], after)
        backends = int(self.pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND usename = {harness.sql_literal(self.upstream_user)}"))
        self.assertLessEqual(backends, POOL_SIZE, after)

    def test_mutated_traffic(self):
        rng = random.Random(SEED)
        mutate = Mutator(rng)
        local = threading.local()
        errors: list[str] = []
        counts = {"startup": 0, "auth": 0, "session": 0}
        outcomes = {"answered": 0, "dropped": 0}  # session cases (+= on ints: one bytecode step
        # is not atomic, but the GIL makes a lost update rare and these only go to the log)

        def worker_init():
            local.conn = None
            local.errors = errors
            local.outcomes = outcomes

        self.assert_healthy("before fuzzing")
        started = time.monotonic()
        with ThreadPoolExecutor(PARALLEL, initializer=worker_init) as pool:
            for first in range(0, CASES, BATCH):
                futures = []
                for n in range(first, min(first + BATCH, CASES)):
                    roll = rng.random()
                    if roll < 0.3:
                        counts["startup"] += 1
                        data = mutate(self.startup_messages(rng), typed=False)
                        futures.append(pool.submit(self.run_startup, data))
                    elif roll < 0.5:
                        counts["auth"] += 1
                        # Its own generator, drawn here: the cases stay the same whatever order
                        # the threads run them in.
                        case_rng = random.Random(rng.randrange(1 << 62))
                        futures.append(pool.submit(self.run_auth, case_rng, Mutator(case_rng)))
                    else:
                        counts["session"] += 1
                        data = mutate(self.session_messages(rng))
                        futures.append(pool.submit(self.run_session, data, f"alive-{n}", local))
                for f in futures:
                    f.result(timeout=120)
                self.assertEqual(errors, [], f"cases {first}..{first + BATCH}")
                self.assert_healthy(f"after cases {first}..{first + BATCH}")
        harness.log(f"wire fuzz: {CASES} cases {counts} (seed {SEED}) in "
                    f"{time.monotonic() - started:.1f}s; session cases {outcomes}")
        self.assertEqual(sum(counts.values()), CASES)
        # Most mutated batches still end in an answered marker: the fuzzer reached the relay,
        # not only the framing that closes a connection.
        self.assertGreater(outcomes["answered"], counts["session"] // 4, outcomes)


if __name__ == "__main__":
    harness.main()
