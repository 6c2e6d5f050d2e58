#!/usr/bin/python3
"""The side-by-side benchmark behind tests/bench/run.sh: PostgreSQL direct,
PgBouncer 1.18 (Debian's), PgBouncer 1.25, Odyssey 1.5.3 and sluice, on this
machine. Standard library only.

run.sh creates the work directory, sets the open-files limit, builds the peer
poolers (../shared/anchors/build.sh) and owns the cleanup trap; this script
starts the servers in the work directory and measures. Each background process
is recorded in WORK/pids/NAME.pid as "PID STARTTIME" the moment it starts, so
the trap can stop it even if this script is killed.

Every target is described once, in TARGETS: what it is, which class starts it
and with which settings. The rest of the script only loops over targets.

Modes:
  bench      pgbench matrix, targets interleaved per case and client count
  idle       RSS per logged-in idle client, for each pooler
  connect    logins per second (pgbench -C -S), for each target
  callgrind  user-space instructions per transaction, the pooler under callgrind
  tls        -S and logins per second with TLS from the clients to the pooler

Flow of one pgbench run (measure_pgbench):
  pgbench -T (longer by 1 s per 100 clients, for the logins) with -P 1 and a
  sampled per-transaction log
  -> while it runs, every 0.25 s: CPU of the pooler, of the PostgreSQL cluster,
     of pgbench, and of the whole host (/proc); pgbench's progress lines, to see
     a hang (no transaction for HANG_AFTER_S seconds) without waiting out the
     outer timeout
  -> tps and average latency from pgbench's report, p50/p99 from its log,
     failures from its stderr; CPU deltas from the first sample after its logins
     ended ("initial connection time") to the end, per 1000 transactions
  -> if the run failed or hung on a pooler: is it alive and answering? restart
     it if not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import datetime
import glob
import hashlib
import hmac
import io
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HOST = "127.0.0.1"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SLUICE_BIN = os.path.realpath(os.environ.get("SLUICE_BIN") or str(REPO / "build" / "sluice"))
# Where run.sh had ../shared/anchors/build.sh build the peers, and how that went.
PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR") or "/var/tmp/sluice-peers")
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
# 0 = sluice's default (half the cores, at least one); the report shows the count it gives.
SLUICE_WORKERS_SETTING = int(os.environ.get("BENCH_SLUICE_WORKERS") or 0)
SLUICE_WORKERS = SLUICE_WORKERS_SETTING or max(1, CORES // 2)
MAX_CONNECTIONS = 300
POOL_SIZE = 10
DB = "bench"
USER = "bench"
# A run is a hang when pgbench's progress (-P 1) shows no completed transaction for
# this many seconds in a row, when pgbench uses no CPU at all for as long (its threads
# are blocked in libpq), or when it is still running long after its -T.
HANG_AFTER_S = 10


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _on_sigterm(signum, frame):  # run the finally blocks, then run.sh's trap
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------
# The targets: one description each
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSpec:
    """One thing pgbench can be pointed at. `kind` names the class that starts it
    (None: PostgreSQL itself); `settings` are the target's own config lines on
    top of what its class writes for every instance of that pooler."""

    name: str  # in BENCH_TARGETS, the CSV and the logs
    title: str  # in the report
    kind: str | None  # "pgbouncer" | "odyssey" | "sluice" | None for direct
    exe: str = ""
    settings: tuple[tuple[str, object], ...] = ()
    # Keeps protocol-level prepared statements right in transaction mode. Without it
    # a -M prepared run is a short attempt that records how it fails.
    prepared: bool = True
    built: bool = False  # by ../shared/anchors/build.sh, into PEERS_DIR
    peer: bool = True  # one of the poolers sluice is compared with
    setup: str = ""  # one line for the report

    @property
    def pooler(self) -> bool:
        return self.kind is not None


TARGETS = (
    TargetSpec("direct", "direct", None, peer=False, setup="PostgreSQL itself"),
    TargetSpec("pgbouncer-1.18", "PgBouncer 1.18", "pgbouncer",
               exe=os.path.realpath(shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"),
               settings=(("max_client_conn", 11000),), prepared=False,
               setup="Debian's; `max_client_conn = 11000`; no prepared-statement support in "
                     "transaction mode"),
    TargetSpec("pgbouncer-1.25", "PgBouncer 1.25", "pgbouncer",
               exe=str(PEERS_DIR / "pgbouncer-1.25.2" / "build" / "pgbouncer"),
               settings=(("max_client_conn", 20000), ("max_prepared_statements", 200)),
               built=True,
               setup="built from the anchors snapshot; `max_client_conn = 20000`, "
                     "`max_prepared_statements = 200`"),
    TargetSpec("odyssey", "Odyssey 1.5.3", "odyssey",
               exe=str(PEERS_DIR / "odyssey-1.5.3" / "build" / "sources" / "odyssey"),
               settings=(("workers", 1),), built=True,
               setup="built from the anchors snapshot; `workers 1`, "
                     "`pool_reserve_prepared_statement yes`, `pool_discard no`"),
    TargetSpec("sluice", "sluice", "sluice", exe=SLUICE_BIN, peer=False,
               setup="`max_clients: 11000`, log_level warn, every other key at its default"),
)
SPECS = {t.name: t for t in TARGETS}

# The targets each mode runs unless BENCH_TARGETS says otherwise.
DEFAULT_TARGETS = {
    "bench": [t.name for t in TARGETS],
    "connect": [t.name for t in TARGETS],
    "idle": [t.name for t in TARGETS if t.pooler],
    "callgrind": ["pgbouncer-1.18", "pgbouncer-1.25", "sluice"],
    "tls": ["direct", "pgbouncer-1.25", "sluice"],
}


# ---------------------------------------------------------------------------
# Settings (environment variables; README.md documents them)
# ---------------------------------------------------------------------------


def _env_list(name: str, default: list[int]) -> list[int]:
    raw = os.environ.get(name, "").replace(",", " ").split()
    return [int(x) for x in raw] if raw else default


@dataclass(frozen=True)
class Case:
    """One pgbench workload: the built-in script and the query protocol."""

    script: str  # "select-only" (-S) or "tpcb-like"
    query_mode: str  # simple | extended | prepared

    @property
    def label(self) -> str:
        return f"{'-S' if self.script == 'select-only' else 'tpcb'} {self.query_mode}"

    @property
    def args(self) -> list[str]:
        return (["-S"] if self.script == "select-only" else []) + ["-M", self.query_mode]


ALL_CASES = [
    Case("select-only", "simple"),
    Case("select-only", "extended"),
    Case("select-only", "prepared"),
    Case("tpcb-like", "prepared"),
]


@dataclass
class Settings:
    quick: bool
    seconds: int
    clients: list[int]
    cases: list[Case]
    targets: list[str]
    scale: int
    sampling_rate: float | None  # None: per script (see sampling_rate_for)
    idle_clients: int
    idle_concurrency: int
    connect_clients: int
    tls_clients: int
    callgrind_clients: int
    callgrind_seconds: int
    results_dir: Path

    @staticmethod
    def from_env(mode: str) -> "Settings":
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        wanted_cases = os.environ.get("BENCH_CASES", "").replace(",", " ").split()
        cases = [c for c in ALL_CASES
                 if not wanted_cases or any(w in (c.label, c.label.replace(" ", "-"))
                                            for w in wanted_cases)]
        if not cases:
            raise SystemExit(f"BENCH_CASES={os.environ['BENCH_CASES']!r} matches no case; "
                             f"cases: {', '.join(c.label.replace(' ', '-') for c in ALL_CASES)}")
        targets = (os.environ.get("BENCH_TARGETS", "").replace(",", " ").split()
                   or DEFAULT_TARGETS[mode])
        if unknown := set(targets) - set(SPECS):
            raise SystemExit(f"BENCH_TARGETS: unknown {sorted(unknown)}; known: "
                             f"{', '.join(SPECS)}")
        rate = os.environ.get("BENCH_SAMPLING_RATE")
        # A smoke test must not overwrite the committed results: it gets its own
        # directory, which git ignores.
        results = os.environ.get("BENCH_RESULTS_DIR") or HERE / "results" / ("quick" if quick
                                                                             else "")
        return Settings(
            quick=quick,
            seconds=int(os.environ.get("BENCH_SECONDS") or (5 if quick else 10)),
            clients=_env_list("BENCH_CLIENTS", [1, 10, 50] if quick else [1, 10, 50, 200, 1000]),
            cases=cases,
            targets=[t.name for t in TARGETS if t.name in targets],  # always in this order
            scale=int(os.environ.get("BENCH_SCALE") or 10),
            sampling_rate=float(rate) if rate else None,
            idle_clients=int(os.environ.get("BENCH_IDLE_CLIENTS") or (1000 if quick else 10000)),
            idle_concurrency=int(os.environ.get("BENCH_IDLE_CONCURRENCY") or 64),
            connect_clients=int(os.environ.get("BENCH_CONNECT_CLIENTS") or 10),
            tls_clients=int(os.environ.get("BENCH_TLS_CLIENTS") or 50),
            callgrind_clients=int(os.environ.get("BENCH_CALLGRIND_CLIENTS") or 50),
            callgrind_seconds=int(os.environ.get("BENCH_CALLGRIND_SECONDS") or (5 if quick
                                                                                 else 10)),
            results_dir=Path(results),
        )

    def sampling_rate_for(self, case: Case) -> float:
        # p99 needs a few thousand samples. select-only runs at tens of thousands of tps,
        # so 10% is plenty; tpcb-like commits with fsync on and is far slower: log it all.
        if self.sampling_rate is not None:
            return self.sampling_rate
        return 0.1 if case.script == "select-only" else 1.0


# ---------------------------------------------------------------------------
# Processes, ports, /proc
# ---------------------------------------------------------------------------


def client_env(password: str, **extra: str) -> dict:
    """The caller's environment minus PG* (a developer's PGHOST must not change
    what is measured), with the password, a connect timeout for libpq and, unless
    the caller asks for TLS, sslmode disable: libpq's default (prefer) would cost
    every login an SSLRequest round trip."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "15", "PGSSLMODE": "disable",
                **extra})
    return env


def run(cmd, timeout: float, *, env=None, input: str | None = None,
        check: bool = False) -> subprocess.CompletedProcess:
    """Runs cmd and kills it on timeout: returns returncode None then. It runs in
    a process group of its own, and the whole group is killed, so a helper it
    started that still holds its output open (vgdb under callgrind_control) cannot
    keep this call waiting. On any exit from here (SIGTERM from run.sh's trap
    included) the group is killed too."""
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", env=env, start_new_session=True)

    def kill_group():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    try:
        out, err = proc.communicate(input, timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a member that left the group holds the pipes
            out, err = "", ""
        rc = None
    finally:
        if proc.poll() is None:  # interrupted mid-communicate
            kill_group()
            proc.wait()
    result = subprocess.CompletedProcess(cmd, rc, out, err)
    if check and rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {'timeout' if rc is None else rc}\n{out[-2000:]}"
                           f"\n{err[-2000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def proc_cpu_ticks(pid: int) -> int | None:
    """utime + stime of the whole process (every thread), in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    return int(rest[11]) + int(rest[12])  # fields 14 and 15 of proc(5)


def proc_runtime_ns(pid: int) -> int | None:
    """Time on a CPU of every thread of the process, in ns (schedstat): precise
    enough to tell a process that is blocked from one that does a little work."""
    total, seen = 0, False
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(Path(path).read_text().split()[0])
            seen = True
        except (OSError, ValueError, IndexError):
            pass
    return total if seen else None


def proc_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: when the process started, in ticks since boot."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[19]


def proc_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat from field 3 on (state, ppid, ...), past the command name,
    which may hold spaces or parentheses; None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def tree_cpu_ticks(parent: int) -> int | None:
    """CPU of `parent` and every process it ever started, in clock ticks: its own
    utime+stime, cutime+cstime (children it has reaped) and the live children's
    utime+stime. A delta of this counts a PostgreSQL backend that exits during
    the run too: it moves from the live sum into the postmaster's cutime.

    A child reaped between reading the parent and scanning /proc would be in
    neither; that shows as a change in the parent's cutime across the scan, and
    the read is then repeated."""
    for _ in range(50):
        before = _stat_fields(parent)
        if before is None:
            return None
        live = 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                child = _stat_fields(entry.name)
                if child is not None and int(child[1]) == parent:
                    live += int(child[11]) + int(child[12])
        after = _stat_fields(parent)
        if after is None:
            return None
        if after[13:15] == before[13:15]:
            return sum(int(v) for v in after[11:15]) + live
        time.sleep(0.01)
    return None


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (pgbench, once it is waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total



# ---------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------


class Daemon:
    """A background process this script started, registered with run.sh's trap."""

    def __init__(self, work: Path, name: str):
        self.work = work
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.exe = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _register(self) -> None:
        # PID plus its start time (set at fork, so readable before the exec) names
        # this process and no later one that reuses the PID.
        assert self.proc is not None
        started = proc_start_time(self.proc.pid)
        (self.work / "pids" / f"{self.name}.pid").write_text(f"{self.proc.pid} {started}\n")

    def _unregister(self) -> None:
        (self.work / "pids" / f"{self.name}.pid").unlink(missing_ok=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, cmd: list, logfile: Path, *, user: str | None = None, **kwargs) -> None:
        if user is not None:
            kwargs.update(user=user, group=user, extra_groups=[])
        # As that user's own login would have them; valgrind's vgdb pipes are named
        # after $USER, and callgrind_control (run as the same user) looks for them so.
        kwargs["env"] = {**os.environ, "USER": user or "root", "LOGNAME": user or "root"}
        with open(logfile, "ab") as logf:
            self.proc = subprocess.Popen(
                [str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True,  # Ctrl-C goes to the trap, not straight to the daemon
                **kwargs)
        self._register()

    def _wait_port(self, timeout: float, logfile: Path) -> None:
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"listening on {self.port}:\n{tail(logfile)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not listening on {self.port} after "
                                   f"{timeout}s:\n{tail(logfile)}")
            time.sleep(0.05)

    def stop(self, first_signal=signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(first_signal)
            self.proc.send_signal(signal.SIGCONT)  # a stopped process acts on it only now
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored {first_signal.name} for {timeout}s; killing it")
                self.proc.kill()
                self.proc.wait(10)
        self._unregister()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def first_line(cmd, cwd=None) -> str:
    try:
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=10,
                              cwd=cwd).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


@dataclass(frozen=True)
class Certs:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl
    CLI. Every TLS target serves the same certificate (RSA 2048), so a TLS
    handshake costs every server the same signature."""

    dir: Path

    @property
    def cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def key(self) -> Path:
        return self.dir / "server.key"

    @staticmethod
    def make(dir: Path) -> "Certs":
        dir.mkdir()
        (dir / "server.ext").write_text("subjectAltName = IP:127.0.0.1\n")
        openssl = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=sluice bench CA", "-keyout", "ca.key", "-out", "ca.crt"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt"],
        ]
        for args in openssl:
            r = subprocess.run(["openssl", *args], cwd=dir, capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")
        certs = Certs(dir)
        # PostgreSQL wants its key owned by its user with no access for others; the
        # poolers that run as postgres must read it too. sluice runs as root.
        for path in (certs.cert, certs.key):
            shutil.chown(path, "postgres", "postgres")
        certs.key.chmod(0o600)
        return certs


class Postgres(Daemon):
    """PostgreSQL 15 with its defaults except for what the benchmark needs:
    loopback only, max_connections 300, shared_buffers 256MB, and in tls mode
    ssl on (for the direct target; hba still accepts both). fsync stays on."""

    def __init__(self, work: Path):
        super().__init__(work, "postgres")
        self.base = work / "pg"
        self.data = self.base / "data"
        self.logfile = self.base / "postgres.log"
        self.superuser_password = "pgsuper-" + secrets.token_hex(12)
        self.password = "bench-" + secrets.token_hex(12)  # the bench role's
        self.exe = str(PG_BIN / "postgres")

    def init(self, certs: Certs | None = None) -> None:
        self.base.mkdir()
        (self.base / "sock").mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        for path in (self.base, self.base / "sock", pwfile):
            shutil.chown(path, "postgres", "postgres")
        run(["runuser", "-u", "postgres", "--", PG_BIN / "initdb", "-D", self.data,
             "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
             "--locale=C"], timeout=180, check=True)
        pwfile.unlink()
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# tests/bench/bench.py: everything else stays at its default\n"
                       "listen_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.base / 'sock'}'\n"
                       f"max_connections = {MAX_CONNECTIONS}\n"
                       "shared_buffers = '256MB'\n")
            if certs is not None:
                conf.write(f"ssl = on\nssl_cert_file = '{certs.cert}'\n"
                           f"ssl_key_file = '{certs.key}'\n")
        (self.data / "pg_hba.conf").write_text("local all all scram-sha-256\n"
                                               "host all all 127.0.0.1/32 scram-sha-256\n")

    def start(self) -> None:
        for _ in range(3):  # a port taken since free_port() picked it: try another
            self.port = free_port()
            self._spawn([self.exe, "-D", self.data, "-p", str(self.port)], self.logfile,
                        cwd=self.base, user="postgres")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.alive():
                r = run([PG_BIN / "pg_isready", "-q", "-h", HOST, "-p", self.port, "-t", "1"],
                        timeout=10, env=client_env(""))
                if r.returncode == 0:
                    return
                time.sleep(0.1)
            if self.alive():
                raise RuntimeError(f"PostgreSQL not ready after 60 s:\n{tail(self.logfile)}")
            if "could not bind" not in tail(self.logfile):
                raise RuntimeError(f"PostgreSQL exited:\n{tail(self.logfile)}")
        raise RuntimeError("PostgreSQL could not bind a port three times")

    def stop(self, first_signal=signal.SIGINT, timeout: float = 30) -> None:
        super().stop(first_signal, timeout)  # SIGINT: fast shutdown

    def psql(self, sql: str, *, superuser: bool = False, timeout: float = 600) -> str:
        user, password = ("postgres", self.superuser_password) if superuser else (USER,
                                                                                   self.password)
        r = run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", HOST,
                 "-p", self.port, "-U", user, "-d", DB if not superuser else "postgres",
                 "-f", "-"], timeout, env=client_env(password), input=sql, check=True)
        return r.stdout.strip()

    def create_bench_role(self) -> str:
        """Creates the bench role and database; returns the role's SCRAM verifier,
        which every pooler checks client logins against."""
        self.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{self.password}';\n"
                  f"CREATE DATABASE {DB} OWNER {USER};", superuser=True)
        return self.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{USER}'",
                         superuser=True)


class Pooler(Daemon):
    """A pooler in transaction mode with a pool of POOL_SIZE, clients logging in
    with SCRAM against the bench role's verifier, the pooler logging in to
    PostgreSQL with the plain password and without TLS. A subclass writes its
    config and says how to start it (command()); this class starts, stops and
    checks it. `wrapper` goes in front of the command (valgrind, in callgrind
    mode); `certs` turns on client TLS (mode require)."""

    run_as: str | None = None  # None: as root

    def __init__(self, spec: TargetSpec, work: Path, pg: Postgres, verifier: str, *,
                 certs: Certs | None = None, wrapper: list[str] | None = None):
        super().__init__(work, spec.name)
        self.spec = spec
        self.dir = work / spec.name
        self.dir.mkdir()
        if self.run_as:
            shutil.chown(self.dir, self.run_as, self.run_as)
        self.logfile = self.dir / f"{spec.name}.log"
        self.exe = spec.exe
        self.pg = pg
        self.verifier = verifier
        self.certs = certs
        self.wrapper = wrapper or []
        self.restarts = 0

    @property
    def sslmode(self) -> str:
        return "require" if self.certs else "disable"

    def command(self) -> list:
        """Writes the config for self.port; returns the command that starts it."""
        raise NotImplementedError

    def write(self, name: str, text: str, mode: int = 0o600) -> Path:
        path = self.dir / name
        path.write_text(text)
        path.chmod(mode)
        if self.run_as:
            shutil.chown(path, self.run_as, self.run_as)
        return path

    def version(self) -> str:
        return first_line([self.exe, "--version"])

    def start(self) -> None:
        self.port = free_port()
        cmd = [*self.wrapper, *self.command()]
        with open(self.logfile, "a") as f:
            f.write(f"\n===== started {time.strftime('%H:%M:%S')}: {' '.join(map(str, cmd))}"
                    " =====\n")
        self._spawn(cmd, self.logfile, cwd=self.dir, user=self.run_as)
        self._wait_port(120 if self.wrapper else 15, self.logfile)

    def stop(self, first_signal=signal.SIGTERM, timeout: float = 15) -> None:
        super().stop(first_signal, 60 if self.wrapper else timeout)  # valgrind writes its files

    def ping(self, password: str) -> str | None:
        """None if the pooler answers SELECT 1 within 10 s; else what went wrong."""
        r = run(["psql", "-X", "-A", "-t", "-h", HOST, "-p", self.port, "-U", USER, "-d", DB,
                 "-c", "SELECT 1"], 10,
                env=client_env(password, PGCONNECT_TIMEOUT="5", PGSSLMODE=self.sslmode))
        if r.returncode == 0 and r.stdout.strip() == "1":
            return None
        if r.returncode is None:
            return "no answer to SELECT 1 within 10 s"
        return "SELECT 1 failed: " + " ".join(r.stderr.split())[:200]

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


class PgBouncer(Pooler):
    """Both PgBouncers: one template, each version's own lines from its spec."""

    run_as = "postgres"  # PgBouncer refuses to run as root

    def command(self) -> list:
        userlist = self.write("userlist.txt", f'"{USER}" "{self.verifier}"\n')
        settings: dict[str, object] = {
            "listen_addr": HOST, "listen_port": self.port, "unix_socket_dir": "",
            "auth_type": "scram-sha-256", "auth_file": userlist,
            "pool_mode": "transaction", "default_pool_size": POOL_SIZE,
            "logfile": "", "pidfile": "",
            # sluice runs at log_level warn: PgBouncer does not log every login either.
            "log_connections": 0, "log_disconnections": 0,
            # 1.25's default is prefer; every target talks to PostgreSQL in plain text.
            "server_tls_sslmode": "disable",
            **dict(self.spec.settings),
        }
        if self.certs:
            settings.update(client_tls_sslmode="require", client_tls_cert_file=self.certs.cert,
                            client_tls_key_file=self.certs.key)
        lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
        ini = self.write("pgbouncer.ini", f"[databases]\n{DB} = host={HOST} port={self.pg.port} "
                                          f"dbname={DB} user={USER} password={self.pg.password}"
                                          f"\n\n[pgbouncer]\n{lines}")
        return [self.exe, ini]


class Odyssey(Pooler):
    """Odyssey as the anchors README configures it: one route, transaction pool,
    prepared statements kept (pool_reserve_prepared_statement), no DISCARD."""

    run_as = "postgres"

    def command(self) -> list:
        settings = dict(self.spec.settings)
        tls = (f'  tls "require"\n  tls_cert_file "{self.certs.cert}"\n'
               f'  tls_key_file "{self.certs.key}"\n' if self.certs else "")
        conf = self.write("odyssey.conf", f"""\
daemonize no
log_format "%p %t %l [%i %s] (%c) %m\\n"
log_to_stdout yes
log_debug no
log_config no
log_session no
log_query no
log_stats no
workers {settings.get('workers', 1)}
enable_online_restart no
bindwith_reuseport no

listen {{
  host "{HOST}"
  port {self.port}
{tls}}}

storage "postgres" {{
  type "remote"
  host "{HOST}"
  port {self.pg.port}
}}

database "{DB}" {{
  user "{USER}" {{
    authentication "scram-sha-256"
    password "{self.verifier}"
    storage "postgres"
    storage_user "{USER}"
    storage_password "{self.pg.password}"
    pool "transaction"
    pool_size {POOL_SIZE}
    pool_reserve_prepared_statement yes
    pool_discard no
  }}
}}
""")
        return [self.exe, conf]


class Sluice(Pooler):
    def __init__(self, spec: TargetSpec, work: Path, pg: Postgres, verifier: str, *,
                 workers: int = SLUICE_WORKERS_SETTING, **kwargs):
        super().__init__(spec, work, pg, verifier, **kwargs)
        self.config = self.dir / "sluice.yaml"
        self.workers = workers
        # A copy: a rebuild of build/sluice during the run must not change what is
        # measured, nor break a restart halfway through the linker writing it.
        self.exe = str(self.dir / "sluice")
        shutil.copy2(SLUICE_BIN, self.exe)
        self.sha256 = hashlib.sha256(Path(self.exe).read_bytes()).hexdigest()

    def command(self) -> list:
        url = f"postgresql://{USER}:{self.pg.password}@{HOST}:{self.pg.port}/{DB}?sslmode=disable"
        tls = (f"tls:\n  mode: require\n  cert_file: \"{self.certs.cert}\"\n"
               f"  key_file: \"{self.certs.key}\"\n" if self.certs else "")
        self.write("sluice.yaml", f"""\
listen:
  host: "{HOST}"
  port: {self.port}
{tls}workers: {self.workers}
max_clients: 11000
auth: scram-sha-256
log_level: warn
pool:
  mode: transaction
  size: {POOL_SIZE}
databases:
  {DB}:
    url: "{url}"
users:
  - name: "{USER}"
    password: "{self.verifier}"
""")
        return [self.exe, "-c", self.config]

    def check_config(self) -> str | None:
        """None if `sluice --check` accepts the config this instance would run
        with (with its tls: section, in tls mode); else what it said."""
        self.port = self.port or free_port()
        self.command()
        r = run([self.exe, "--check", "-c", self.config], 30)
        if r.returncode == 0:
            return None
        said = " ".join((r.stdout + r.stderr).split())
        return said[:300] or f"exit {r.returncode}"


POOLER_CLASSES: dict[str, type[Pooler]] = {"pgbouncer": PgBouncer, "odyssey": Odyssey,
                                           "sluice": Sluice}

# ---------------------------------------------------------------------------
# pgbench runs
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One measured run; also a row of the CSV of every run."""

    mode: str = ""
    case: str = ""
    clients: int = 0
    target: str = ""
    # ok | fail | hang | n/a (fails by design) | unsupported | skipped
    status: str = ""
    detail: str = ""
    seconds: int = 0
    processed: int = 0
    failed_tx: int = 0
    aborted_clients: int = 0
    tps: float | None = None
    lat_avg_ms: float | None = None
    lat_p50_ms: float | None = None
    lat_p99_ms: float | None = None
    samples: int = 0
    conn_ms: float | None = None  # initial connection time, or average per login with -C
    proxy_cpu_ms: float | None = None
    proxy_cpu_ms_per_1k: float | None = None
    proxy_cpu_pct: float | None = None  # of one core, over the run's wall time
    proxy_rss_kb: int | None = None  # after the run
    pg_cpu_ms_per_1k: float | None = None  # every PostgreSQL process of this cluster
    pgbench_cpu_ms_per_1k: float | None = None
    host_cpu_pct: float | None = None  # of all cores
    # CPU spent outside the benchmark's own processes (other work on the machine),
    # as a share of all cores: a run with more than a few percent is suspect.
    other_cpu_pct: float | None = None
    wall_s: float | None = None
    measured_s: float | None = None  # the steady part the CPU figures cover (after logins)
    pgbench_rc: int | None = None

    @property
    def valid(self) -> bool:
        """Counts in the ratios: ok, and not a lucky pass of an unsupported case."""
        return self.status == "ok" and not self.detail


PROGRESS = re.compile(r"^progress: ([0-9.]+) s, ([0-9.]+) tps")


def parse_pgbench(out: str, err: str) -> dict:
    def num(pattern):
        m = re.search(pattern, out)
        return float(m.group(1)) if m else None

    lines = [line for line in err.splitlines() if not PROGRESS.match(line)]
    aborted = [line for line in lines if re.search(r"client \d+ .*aborted", line)]
    errors = [line.strip() for line in lines
              if "ERROR" in line or "FATAL" in line or "error:" in line]
    return {
        "processed": int(num(r"number of transactions actually processed: (\d+)") or 0),
        "failed": int(num(r"number of failed transactions: (\d+)") or 0),
        "tps": num(r"tps = ([0-9.]+)"),
        "lat_avg_ms": num(r"latency average = ([0-9.]+) ms"),
        "conn_ms": num(r"(?:initial|average) connection time = ([0-9.]+) ms"),
        "aborted": len(aborted),
        "errors": errors,
        "last_lines": [line.strip() for line in lines if line.strip()][-2:],
    }


def transaction_log(prefix: Path) -> list[tuple[float, int]]:
    """(completion time as Unix epoch seconds, latency µs) of every transaction in
    pgbench's per-transaction logs (one file per thread), which it deletes. Each
    line: client_id transaction_no time_us script_no time_epoch time_us."""
    out = []
    for path in glob.glob(f"{prefix}.*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[2].isdigit():  # "failed"/"skipped" are not
                    out.append((int(parts[4]) + int(parts[5]) / 1e6, int(parts[2])))
        os.unlink(path)
    return out


def latency_percentiles(prefix: Path) -> tuple[int, float | None, float | None]:
    """(samples, p50 ms, p99 ms) from pgbench's per-transaction logs."""
    latencies = sorted(lat for _, lat in transaction_log(prefix))
    if not latencies:
        return 0, None, None

    def rank(p):  # nearest-rank percentile
        return latencies[min(len(latencies) - 1, max(0, -(-len(latencies) * p // 100) - 1))] / 1000

    return len(latencies), rank(50), rank(99)


class Progress:
    """pgbench's -P 1 lines on its stderr file, read as they are written. Tells
    when pgbench has finished its logins (the first line) and when it has hung
    (HANG_AFTER_S lines in a row with 0.0 tps)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.lines = 0
        self.zero_since: float | None = None  # pgbench's clock, s
        self.zero_run = 0
        self.last = ""

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        for raw in complete:
            m = PROGRESS.match(raw.decode(errors="replace"))
            if not m:
                continue
            self.lines += 1
            self.last = m.group(0)
            at, tps = float(m.group(1)), float(m.group(2))
            if tps == 0:
                self.zero_run += 1
                if self.zero_since is None:
                    self.zero_since = at - 1
            else:
                self.zero_run, self.zero_since = 0, None

    @property
    def stalled(self) -> bool:
        return self.zero_run >= HANG_AFTER_S


class CpuSample(NamedTuple):
    """Cumulative CPU counters at one moment, in clock ticks."""

    t: float  # time.monotonic()
    proxy: int | None  # the pooler (None for direct)
    pg: int | None  # the PostgreSQL cluster, reaped children included
    pgbench: float | None
    host: tuple[int, int]  # (busy, total) over all cores


# Cheap enough on 2 cores (a /proc scan for PostgreSQL's processes takes a few ms),
# fine enough to find where pgbench's logins end.
SAMPLE_INTERVAL = 0.25


class Sampled(NamedTuple):
    result: subprocess.CompletedProcess  # returncode None: killed (hang)
    hang: str  # why it was killed, or ""
    samples: list[CpuSample]
    end: CpuSample


class Bench:
    def __init__(self, work: Path, settings: Settings, mode: str):
        self.work = work
        self.s = settings
        self.mode = mode
        self.pg = Postgres(work)
        self.poolers: dict[str, Pooler] = {}
        # Targets that cannot run, with why (not built, would not start, no TLS).
        self.unavailable: dict[str, str] = {}
        self.unsupported: set[str] = set()  # of those, the ones that lack a feature
        self.sslmode = "require" if mode == "tls" else "disable"
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.run_no = 0
        self.background_cpu_pct: float | None = None
        (work / "runs").mkdir()

    # -- setup ---------------------------------------------------------------

    def setup(self) -> None:
        busy0, total0 = host_cpu()
        time.sleep(2)
        busy1, total1 = host_cpu()
        self.background_cpu_pct = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
        log(f"machine CPU busy before starting anything: {self.background_cpu_pct}%")
        certs = None
        if self.mode == "tls":
            certs = Certs.make(self.work / "tls")
            log(f"made a CA and a server certificate for {HOST} in {certs.dir}")
        log(f"initdb + PostgreSQL 15 in {self.work}")
        self.pg.init(certs)
        self.pg.start()
        verifier = self.pg.create_bench_role()
        if self.mode != "idle":
            log(f"pgbench -i -s {self.s.scale}")
            r = run(["pgbench", "-i", "-q", "-s", self.s.scale, "-h", HOST, "-p", self.pg.port,
                     "-U", USER, DB], 1800, env=client_env(self.pg.password))
            if r.returncode != 0:
                raise RuntimeError(f"pgbench -i failed:\n{r.stdout}\n{r.stderr}")
            self.pg.psql("CHECKPOINT", superuser=True)
        for name in self.s.targets:
            if SPECS[name].pooler:
                self.add_pooler(SPECS[name], verifier, certs)
        log(f"PostgreSQL :{self.pg.port}  " + "  ".join(
            f"{p.name} :{p.port}" for p in self.poolers.values() if p.alive()))

    def add_pooler(self, spec: TargetSpec, verifier: str, certs: Certs | None) -> None:
        """Makes the pooler of `spec` and, except in callgrind mode (which starts
        each under valgrind in turn), starts it. A pooler that cannot be built,
        started or configured as the mode needs is noted and left out."""
        if not os.access(spec.exe, os.X_OK):
            return self.leave_out(spec, f"not built: there is no {spec.exe}. "
                                        + peers_build_outcome(self.work))
        kwargs: dict = {"certs": certs}
        if self.mode == "callgrind":
            kwargs["wrapper"] = valgrind_command(self.work / spec.name)
            if spec.kind == "sluice":
                kwargs["workers"] = 1
        pooler = POOLER_CLASSES[spec.kind](spec, self.work, self.pg, verifier, **kwargs)
        if self.mode == "tls" and isinstance(pooler, Sluice):
            if said := pooler.check_config():
                self.unsupported.add(spec.name)
                return self.leave_out(spec, "not supported: `sluice --check` rejects a config "
                                            "with `tls: {mode: require, cert_file: ..., "
                                            f"key_file: ...}}`: {said}")
        self.poolers[spec.name] = pooler
        if self.mode != "callgrind":
            try:
                pooler.start()
            except RuntimeError as exc:
                self.leave_out(spec, f"could not be started: {exc}")

    def leave_out(self, spec: TargetSpec, why: str) -> None:
        self.unavailable[spec.name] = why
        first, _, logged = why.partition("\n")  # a start failure comes with its log
        self.notes.append(f"**{spec.title}** is left out: {first}"
                          + (f"\n\n```\n{logged.strip()}\n```\n" if logged.strip() else ""))
        log(f"{spec.name} is left out: {why}")

    def teardown(self) -> None:
        for daemon in (*self.poolers.values(), self.pg):
            try:
                daemon.stop()
            except Exception as exc:  # keep stopping the rest; run.sh's trap backs this up
                log(f"stopping {daemon.name}: {exc}")

    def target(self, name: str) -> tuple[int, Pooler | None]:
        if name == "direct":
            return self.pg.port, None
        pooler = self.poolers[name]
        return pooler.port, pooler

    def left_out_row(self, name: str, **fields_) -> Row | None:
        """The row of a run that cannot happen because its target is left out."""
        if name not in self.unavailable:
            return None
        status = "unsupported" if name in self.unsupported else "skipped"
        return Row(mode=self.mode, target=name, status=status, detail="left out (see the notes)",
                   **fields_)

    def fd_limit_ok(self, needed: int, what: str) -> bool:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= needed:
            return True
        self.notes.append(f"{what}: skipped, the open-files limit is {soft} and it needs "
                          f"about {needed} (see run.sh)")
        return False

    # -- one pgbench run -----------------------------------------------------

    def measure_pgbench(self, target: str, args: list[str], *, clients: int, seconds: int,
                        sampling_rate: float | None, label: str = "") -> Row:
        if row := self.left_out_row(target, case=label, clients=clients, seconds=seconds):
            return row
        port, pooler = self.target(target)
        row = Row(mode=self.mode, case=label, clients=clients, target=target, seconds=seconds)
        if pooler is not None and not pooler.alive():
            row.status, row.detail = "skipped", f"{target} is down"
            return row
        self.run_no += 1
        prefix = self.work / "runs" / f"run{self.run_no}"
        logins_are_the_work = "-C" in args
        # pgbench's -T clock includes the initial logins (its tps leaves them out). 1000
        # SCRAM logins take seconds, PBKDF2 in pgbench mostly, so high client counts get
        # that much longer: about `seconds` of steady load remain for every target.
        login_allowance = 0 if logins_are_the_work else clients // 100
        duration = seconds + login_allowance
        cmd = ["pgbench", "-h", HOST, "-p", port, "-U", USER, "-n", "-c", clients,
               "-j", min(2, clients), "-T", duration, "-P", "1", *args]
        if sampling_rate is not None:
            cmd += ["--log", f"--log-prefix={prefix}", f"--sampling-rate={sampling_rate}"]
        cmd.append(DB)
        timeout = duration + 30 + clients * 0.05
        r, hang, samples, end = self.run_sampled(cmd, timeout, pooler.pid if pooler else None)
        stats = parse_pgbench(r.stdout, r.stderr)
        row.seconds = duration
        row.wall_s = round(end.t - samples[0].t, 2)
        row.pgbench_rc = r.returncode
        row.processed, row.failed_tx = stats["processed"], stats["failed"]
        row.aborted_clients = stats["aborted"]
        row.tps, row.lat_avg_ms, row.conn_ms = stats["tps"], stats["lat_avg_ms"], stats["conn_ms"]
        if sampling_rate is not None:
            row.samples, row.lat_p50_ms, row.lat_p99_ms = latency_percentiles(prefix)
        # CPU over the steady part only: from the first sample taken after the logins
        # (pgbench's "initial connection time") to the end. Every transaction falls in
        # it, so per-transaction CPU does not carry 1000 logins at 1000 clients.
        begin = samples[0]
        if row.conn_ms is not None and not logins_are_the_work:
            after_logins = [x for x in samples if x.t >= samples[0].t + row.conn_ms / 1000]
            begin = after_logins[0] if after_logins else end
        row.measured_s = round(end.t - begin.t, 2)
        self.fill_cpu(row, begin, end)
        if pooler is not None:
            row.proxy_rss_kb = proc_rss_kb(pooler.pid)
        if hang:
            row.status = "hang"
            row.detail = "; ".join([hang, "pgbench killed", *stats["errors"][:2]])
        elif r.returncode == 0 and row.processed > 0 and not row.failed_tx \
                and not row.aborted_clients:
            row.status = "ok"
        else:
            row.status = "fail"
            first = stats["errors"][:2] or stats["last_lines"]
            row.detail = (f"pgbench exit {r.returncode}, {row.aborted_clients}/{clients} clients "
                          f"aborted, {row.failed_tx} failed tx, {row.processed} tx done; "
                          + " | ".join(first))
        if pooler is not None and row.status != "ok":
            self.check_pooler(pooler, f"{label or ' '.join(args)} c={clients}")
        return row

    def sample(self, proxy_pid: int | None, pgbench_ticks: float | None) -> CpuSample:
        return CpuSample(time.monotonic(), proc_cpu_ticks(proxy_pid) if proxy_pid else None,
                         self.pg_ticks(), pgbench_ticks, host_cpu())

    def run_sampled(self, cmd: list, timeout: float, proxy_pid: int | None) -> Sampled:
        """Runs pgbench (with -P 1), sampling CPU every SAMPLE_INTERVAL s while it
        runs. It is killed as hung when its progress shows no transaction for
        HANG_AFTER_S s, or when it still runs `timeout` s after it started."""
        cmd = [str(c) for c in cmd]
        out_path, err_path = self.work / "runs" / "stdout", self.work / "runs" / "stderr"
        reaped0 = children_cpu_s()
        hang = ""
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=client_env(self.pg.password, PGSSLMODE=self.sslmode))
            progress = Progress(err_path)
            samples = []
            runtime, ran_at = None, time.monotonic()  # pgbench's CPU, and when it last grew
            try:
                while True:
                    ticks = proc_cpu_ticks(proc.pid)
                    samples.append(self.sample(proxy_pid, ticks))
                    if proc.poll() is not None:
                        break
                    progress.poll()
                    now_runtime = proc_runtime_ns(proc.pid)
                    if now_runtime != runtime:
                        runtime, ran_at = now_runtime, samples[-1].t
                    if progress.stalled:
                        hang = (f"no transaction completed for {HANG_AFTER_S} s "
                                f"(pgbench -P showed 0 tps from {progress.zero_since:.0f} s "
                                f"into the run)")
                    elif runtime is not None and samples[-1].t - ran_at > HANG_AFTER_S:
                        # libpq's synchronous calls (PQprepare with -M prepared, the
                        # logins) block a whole pgbench thread, progress lines included.
                        hang = (f"pgbench's threads used no CPU for {HANG_AFTER_S} s, "
                                f"all blocked on the server's answer; its last progress: "
                                f"{progress.last or 'none'}")
                    elif samples[-1].t - samples[0].t > timeout:
                        hang = (f"pgbench still running {timeout:.0f} s after it started; "
                                f"its last progress: {progress.last or 'none'}")
                    if hang:
                        proc.kill()
                        proc.wait()
                        break
                    time.sleep(SAMPLE_INTERVAL)
            finally:
                if proc.poll() is None:  # interrupted: do not leave pgbench behind
                    proc.kill()
                    proc.wait()
        # Once reaped, pgbench's total CPU is in this process's children's rusage.
        pgbench_total = (children_cpu_s() - reaped0) * CLK_TCK
        end = self.sample(proxy_pid, pgbench_total)
        result = subprocess.CompletedProcess(
            cmd, None if hang else proc.returncode,
            out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))
        samples[0] = samples[0]._replace(pgbench=0)  # it had barely started
        if hang:
            log(f"hang: {hang}")
        return Sampled(result, hang, samples, end)

    def fill_cpu(self, row: Row, begin: CpuSample, end: CpuSample) -> None:
        """The CPU figures of `row` over [begin, end]."""
        def ms(a, b):
            return (b - a) * 1000 / CLK_TCK if a is not None and b is not None else None

        per_1k = lambda v: v / (row.processed / 1000) if v is not None and row.processed \
            else None  # noqa: E731
        proxy_ms, pg_ms = ms(begin.proxy, end.proxy), ms(begin.pg, end.pg)
        pgbench_ms = ms(begin.pgbench, end.pgbench)
        window_s = end.t - begin.t
        row.proxy_cpu_ms = proxy_ms
        row.proxy_cpu_ms_per_1k = per_1k(proxy_ms)
        if proxy_ms is not None and window_s > 0:
            row.proxy_cpu_pct = round(100 * proxy_ms / 1000 / window_s, 1)
        row.pg_cpu_ms_per_1k = per_1k(pg_ms)
        row.pgbench_cpu_ms_per_1k = per_1k(pgbench_ms)
        busy_ms, all_ms = ms(begin.host[0], end.host[0]), ms(begin.host[1], end.host[1])
        if all_ms and pg_ms is not None and pgbench_ms is not None:
            row.host_cpu_pct = round(100 * busy_ms / all_ms, 1)
            ours = pg_ms + pgbench_ms + (proxy_ms or 0)
            row.other_cpu_pct = round(max(0.0, 100 * (busy_ms - ours) / all_ms), 1)

    def pg_ticks(self) -> int | None:
        return tree_cpu_ticks(self.pg.pid) if self.pg.pid else None

    def check_pooler(self, pooler: Pooler, after: str) -> None:
        """After a failed or hung run: is the pooler alive and answering? If not,
        note why and restart it, so one bad case does not sink every later one."""
        trouble = pooler.ping(self.pg.password) if pooler.alive() else None
        if pooler.alive() and trouble is None:
            return
        how = (f"exited with {pooler.proc.returncode}" if not pooler.alive()
               else f"alive, but {trouble}")
        logged = "\n".join(line for line in tail(pooler.logfile, 15).splitlines()
                           if line.strip() and not line.startswith("====="))
        self.notes.append(f"{pooler.name} {how} after {after}; "
                          + (f"last log lines:\n\n```\n{logged}\n```\n" if logged
                             else "it logged nothing."))
        log(f"{pooler.name} {how}; restarting it")
        try:
            pooler.restart()
        except Exception as exc:
            self.notes.append(f"{pooler.name} could not be restarted: {exc}")
            log(f"{pooler.name} could not be restarted: {exc}")

    def prepare_case(self, case: Case) -> None:
        # What pgbench itself does before a tpcb-like run (its default vacuum), but
        # done directly, so no proxy CPU or time is spent on it; then a checkpoint, so
        # every run starts with no dirty buffers left over by the one before.
        if case.script == "tpcb-like":
            self.pg.psql("VACUUM pgbench_branches; VACUUM pgbench_tellers; "
                         "TRUNCATE pgbench_history;")
            self.pg.psql("CHECKPOINT", superuser=True)

    def warm_up(self) -> None:
        log("warm-up: 3 s of -S at 10 clients through each target (fills the pools and caches)")
        for name in self.s.targets:
            if name in self.unavailable:
                continue
            warm = self.measure_pgbench(name, ["-S", "-M", "simple"], clients=10, seconds=3,
                                        sampling_rate=None, label="warm-up")
            if warm.status != "ok":
                self.notes.append(f"warm-up through {name} failed: {warm.detail}")

    # -- modes ---------------------------------------------------------------

    def run_bench(self) -> None:
        s = self.s
        self.warm_up()
        plan = [(case, c) for case in s.cases for c in s.clients]
        for i, (case, clients) in enumerate(plan, 1):
            for name in s.targets:
                if name == "direct" and clients > MAX_CONNECTIONS - 10:
                    row = Row(mode="bench", case=case.label, clients=clients, target=name,
                              status="skipped",
                              detail=f"{clients} > max_connections {MAX_CONNECTIONS} - 10")
                elif clients >= 900 and not self.fd_limit_ok(clients + 200, f"{case.label} "
                                                             f"c={clients} {name}"):
                    row = Row(mode="bench", case=case.label, clients=clients, target=name,
                              status="skipped", detail="open-files limit too low")
                elif (name not in self.unavailable and not SPECS[name].prepared
                      and case.query_mode == "prepared"):
                    row = self.attempt_unsupported_prepared(name, case, clients)
                else:
                    self.prepare_case(case)
                    row = self.measure_pgbench(name, case.args, clients=clients,
                                               seconds=s.seconds,
                                               sampling_rate=s.sampling_rate_for(case),
                                               label=case.label)
                row.case = case.label
                self.rows.append(row)
                log(f"[{i}/{len(plan)}] {case.label:<13} c={clients:<4} {name:<14} "
                    f"{describe(row)}")

    def attempt_unsupported_prepared(self, name: str, case: Case, clients: int) -> Row:
        """A pooler that keeps no track of prepared statements (PgBouncer 1.18)
        lets a client's Bind land on a server that never saw its Parse. A short
        attempt records how it fails; should it not fail (one client can keep
        landing on the same server), the full run is measured and flagged."""
        self.prepare_case(case)
        seconds = min(3, self.s.seconds)
        row = self.measure_pgbench(name, case.args, clients=clients, seconds=seconds,
                                   sampling_rate=None, label=case.label)
        if row.status == "ok":
            self.prepare_case(case)
            row = self.measure_pgbench(name, case.args, clients=clients, seconds=self.s.seconds,
                                       sampling_rate=self.s.sampling_rate_for(case),
                                       label=case.label)
            if row.status == "ok":
                row.detail = ("did not fail this time: each client kept getting a server that "
                              "held its statements and none that held another's")
        if row.status == "fail":
            # Statements also outlive their client on such a pooler's servers: a later
            # client's Parse of the same name then fails with 42P05.
            row.status = "n/a"
            row.detail = (f"fails (-T {row.seconds}): {row.aborted_clients}/{clients} clients "
                          f"aborted, {row.processed} tx done; " + row.detail.split("; ", 1)[-1])
        return row

    def run_connect(self) -> None:
        c = self.s.connect_clients
        for name in self.s.targets:
            row = self.measure_pgbench(name, ["-C", "-S", "-M", "simple"], clients=c,
                                       seconds=self.s.seconds, sampling_rate=None,
                                       label="-C -S simple")
            self.rows.append(row)
            log(f"connect c={c} {name:<14} {describe(row)}")

    def run_tls(self) -> None:
        """-S through TLS at tls_clients, then logins per second through TLS, each
        with the targets back to back."""
        self.warm_up()
        cases = [("-S simple, TLS", ["-S", "-M", "simple"], self.s.tls_clients, 0.1),
                 ("-C -S simple, TLS", ["-C", "-S", "-M", "simple"], self.s.connect_clients,
                  None)]
        for label, args, clients, rate in cases:
            for name in self.s.targets:
                row = self.measure_pgbench(name, args, clients=clients, seconds=self.s.seconds,
                                           sampling_rate=rate, label=label)
                self.rows.append(row)
                log(f"{label} c={clients} {name:<14} {describe(row)}")

    def run_idle(self) -> list[dict]:
        n = self.s.idle_clients
        results = []
        if not self.fd_limit_ok(n + 200, f"idle with {n} clients"):
            return results
        for name, pooler in self.poolers.items():
            if name in self.unavailable:
                continue
            # Two rounds on the same daemon. The first gives the figure per client. The
            # second tells a leak (RSS climbs again) from memory the allocator kept for
            # reuse after the first round's clients left (RSS stays put).
            rounds = []
            for round_no in (1, 2):
                r = asyncio.run(idle_clients(pooler, self.pg.password, n,
                                             self.s.idle_concurrency))
                rounds.append(r)
                log(f"idle {name} round {round_no}: {r['logged_in']}/{n} logged in in "
                    f"{r['login_s']:.1f} s; RSS {r['rss_before_kb']} -> {r['rss_with_kb']} kB "
                    f"({fmt(r['per_client_kb'], 2)} kB/client), after close "
                    f"{r['rss_after_kb']} kB")
                if r["failures"]:
                    self.check_pooler(pooler, f"idle with {n} clients")
                    break
            first = rounds[0]
            if len(rounds) > 1:
                first["round2_rss_with_kb"] = rounds[1]["rss_with_kb"]
                first["round2_rss_after_kb"] = rounds[1]["rss_after_kb"]
                first["alive_after"] = rounds[1]["alive_after"]
            results.append(first)
        return results

    def run_callgrind(self) -> list[dict]:
        results = []
        for name in self.s.targets:
            spec = SPECS[name]
            result = {"target": name, "status": "", "detail": "", "ir": None,
                      "transactions": None, "ir_per_tx": None, "window_s": None, "tps": None,
                      "login_ms": None}
            if not spec.pooler:
                self.notes.append("direct has no pooler to count instructions of; left out")
                continue
            if name in self.unavailable:
                results.append({**result, "status": "skipped",
                                "detail": "left out (see the notes)"})
                continue
            pooler = self.poolers[name]
            try:
                log(f"callgrind: starting {name} under valgrind")
                pooler.start()
                result.update(self.measure_callgrind(pooler))
            except RuntimeError as exc:
                result.update(status="fail", detail=str(exc)[:600])
            finally:
                pooler.stop()
            log(f"callgrind {name}: {result['status']} {fmt(result['ir_per_tx'], 0)} Ir/tx "
                f"over {result['transactions']} tx {result['detail']}")
            results.append(result)
        return results

    def measure_callgrind(self, pooler: Pooler) -> dict:
        """User-space instructions the pooler (under callgrind) executes per
        transaction of `pgbench -S -M simple`: a warm-up run fills its pool and
        times the logins; in a second run, once its clients are logged in, the
        counters are zeroed, and dumped callgrind_seconds later. Transactions in
        between are counted from pgbench's log of every transaction."""
        c, window = self.s.callgrind_clients, self.s.callgrind_seconds
        env = client_env(self.pg.password, PGSSLMODE=self.sslmode)
        base = ["pgbench", "-h", HOST, "-p", pooler.port, "-U", USER, "-n", "-S", "-M", "simple",
                "-c", c, "-j", min(2, c)]
        warm_s = 3 if self.s.quick else 5
        warm = run(base + ["-T", warm_s, DB], warm_s + 120 + c, env=env)
        stats = parse_pgbench(warm.stdout, warm.stderr)
        if warm.returncode != 0 or stats["conn_ms"] is None:
            raise RuntimeError(f"warm-up pgbench: {'hang' if warm.returncode is None else 'exit '}"
                               f"{warm.returncode or ''}; " + " | ".join(stats["errors"][:2]
                                                                       or stats["last_lines"]))
        login_s = stats["conn_ms"] / 1000
        # The measured run: its logins (twice the warm-up's, to be safe), a second to
        # settle, the window, and 3 s of margin before its -T ends.
        duration = int(2 * login_s + 1 + window + 3) + 1
        prefix = self.work / "runs" / f"callgrind-{pooler.name}"
        err_path = self.work / "runs" / "stderr"
        cmd = [str(x) for x in base + ["-T", duration, "-P", "1", "--log",
                                       f"--log-prefix={prefix}", DB]]
        with open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, text=True, env=env)
        try:
            progress = Progress(err_path)
            deadline = time.monotonic() + duration
            while progress.lines == 0 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                progress.poll()
            if progress.lines == 0:
                raise RuntimeError(f"pgbench did not get past its logins: {tail(err_path, 3)}")
            time.sleep(1)
            t0 = callgrind_control(pooler, "--zero")
            time.sleep(window)
            dumps_before = set(glob.glob(str(pooler.dir / "callgrind.out*")))
            t1 = callgrind_control(pooler, "--dump")
            if proc.poll() is not None:
                raise RuntimeError("pgbench ended before the measured window did; "
                                   f"{tail(err_path, 3)}")
            try:
                out, _ = proc.communicate(timeout=duration + 30 + c * 0.05)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"hang: pgbench still running {duration + 30} s after it "
                                   f"started; last progress: {progress.last}") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stats = parse_pgbench(out, err_path.read_text(errors="replace"))
        if proc.returncode != 0 or stats["failed"] or stats["aborted"]:
            raise RuntimeError(f"pgbench exit {proc.returncode}, {stats['aborted']} aborted, "
                               f"{stats['failed']} failed: " + " | ".join(stats["errors"][:2]))
        ended = time.time()
        ir = callgrind_dump_ir(pooler.dir, dumps_before)
        completions = [at for at, _ in transaction_log(prefix)]
        # The window is cut on this script's clock, the log is on pgbench's: its last
        # transaction must have ended just before pgbench did.
        if not completions or not 0 <= ended - max(completions) < 5:
            raise RuntimeError("pgbench's transaction log does not line up with the wall clock "
                               f"(last completion {ended - max(completions or [0]):.1f} s before "
                               "pgbench ended)")
        done = sum(1 for at in completions if t0 <= at <= t1)
        if not done:
            raise RuntimeError("no transaction completed inside the measured window")
        return {"status": "ok", "ir": ir, "transactions": done, "ir_per_tx": ir / done,
                "window_s": round(t1 - t0, 2), "tps": round(done / (t1 - t0), 1),
                "login_ms": round(stats["conn_ms"] or 0, 1)}


def valgrind_command(dir: Path) -> list[str]:
    """callgrind, its files and its vgdb pipes in the pooler's own directory."""
    return ["valgrind", "--tool=callgrind", "--quiet",
            f"--callgrind-out-file={dir / 'callgrind.out'}", f"--vgdb-prefix={dir / 'vgdb'}"]


def callgrind_control(pooler: Pooler, action: str) -> float:
    """Runs `callgrind_control ACTION PID`; returns when it took effect, as the
    Unix time halfway through the call (the call waits for valgrind to act)."""
    # As the user valgrind runs as: vgdb, run by root, hangs on a process of another
    # user. runuser sets USER, which names vgdb's pipes, as the pooler's spawn did.
    user = pooler.run_as or "root"
    before = time.time()
    r = run(["runuser", "-u", user, "--", "callgrind_control",
             f"--vgdb-prefix={pooler.dir / 'vgdb'}", action, pooler.pid], 60,
            env={**os.environ, "USER": user, "LOGNAME": user})
    after = time.time()
    if r.returncode != 0 or "Error" in r.stdout + r.stderr:
        raise RuntimeError(f"callgrind_control {action} {pooler.pid}: exit {r.returncode}: "
                           f"{(r.stdout + r.stderr).strip()[-400:]}")
    return (before + after) / 2


def callgrind_dump_ir(dir: Path, before: set[str]) -> int:
    """Ir of the dump that appeared since `before`: its `totals:` (or older
    valgrinds' `summary:`) line."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in sorted(set(glob.glob(str(dir / "callgrind.out*"))) - before):
            text = Path(path).read_text(errors="replace")
            totals = re.findall(r"^(?:totals|summary):\s+(\d+)", text, re.M)
            if totals:
                return int(totals[-1])
        time.sleep(0.2)
    raise RuntimeError(f"no new callgrind dump with totals in {dir}")


def peers_build_outcome(work: Path) -> str:
    """What run.sh saw when it ran ../shared/anchors/build.sh (see run.sh)."""
    rc_file, log_file = work / "peers-build.rc", work / "peers-build.log"
    if not rc_file.exists():
        return "run.sh did not build the peers (BENCH_PEERS_BUILD=0, or no anchors directory)."
    rc = rc_file.read_text().strip()
    if rc == "0":
        return "build.sh reported success but made no such binary."
    last = " | ".join(line.strip() for line in tail(log_file, 5).splitlines() if line.strip())
    return f"the anchors' build.sh failed (exit {rc}; peers-build.log): {last}"


def describe(row: Row) -> str:
    if row.status not in ("ok",):
        return f"{row.status.upper()}: {row.detail}"
    return (f"{fmt(row.tps, 0)} tps, avg {fmt(row.lat_avg_ms, 3)} ms, "
            f"p99 {fmt(row.lat_p99_ms, 3)} ms, proxy {fmt(row.proxy_cpu_ms_per_1k, 1)} "
            f"CPU ms/1k tx, PG {fmt(row.pg_cpu_ms_per_1k, 1)} CPU ms/1k tx, "
            f"host CPU {fmt(row.host_cpu_pct, 0)}% (other {fmt(row.other_cpu_pct, 0)}%)")


# ---------------------------------------------------------------------------
# Idle clients: a minimal asyncio PostgreSQL client (startup, SCRAM, one query)
# ---------------------------------------------------------------------------


class LoginError(Exception):
    pass


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def _read_msg(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!I", header[1:])
    return header[:1], await reader.readexactly(length - 4)


def _error_text(body: bytes) -> str:
    fields_ = {}
    for part in body.split(b"\0"):
        if part:
            fields_[chr(part[0])] = part[1:].decode(errors="replace")
    return f"{fields_.get('C', '?')}: {fields_.get('M', '?')}"


class _Scram:
    """SCRAM-SHA-256 client (RFC 7677, no channel binding). The salted password
    depends only on the password, salt and iteration count, all the same for every
    login here, so it is computed once: 10,000 logins measure the pooler, not
    PBKDF2 in this process."""

    salted_cache: dict[tuple[str, bytes, int], bytes] = {}

    def __init__(self, password: str):
        self.password = password
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.client_first_bare = f"n=,r={self.nonce}"

    def first(self) -> bytes:
        data = ("n,," + self.client_first_bare).encode()
        return b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise LoginError("server nonce does not extend ours")
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        key = (self.password, salt, iterations)
        if key not in self.salted_cache:
            self.salted_cache[key] = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt,
                                                         iterations)
        salted = self.salted_cache[key]
        without_proof = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.client_first_bare},{server_first.decode()},{without_proof}"
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        signature = hmac.digest(hashlib.sha256(client_key).digest(), self.auth_message.encode(),
                                "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        expected = hmac.digest(self.server_key, self.auth_message.encode(), "sha256")
        if server_final.decode() != "v=" + base64.b64encode(expected).decode():
            raise LoginError("wrong server signature")


async def _until_ready(reader) -> None:
    while True:
        kind, body = await _read_msg(reader)
        if kind == b"E":
            raise LoginError(_error_text(body))
        if kind == b"Z":
            return


async def _login(port: int, password: str):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        params = f"user\0{USER}\0database\0{DB}\0application_name\0bench-idle\0\0".encode()
        writer.write(struct.pack("!II", len(params) + 8, 196608) + params)
        scram = None
        while True:
            kind, body = await _read_msg(reader)
            if kind == b"E":
                raise LoginError(_error_text(body))
            if kind != b"R":
                raise LoginError(f"unexpected {kind!r} during login")
            (code,) = struct.unpack("!I", body[:4])
            if code == 10:  # AuthenticationSASL
                if b"SCRAM-SHA-256\0" not in body[4:]:
                    raise LoginError(f"no SCRAM-SHA-256 in {body[4:]!r}")
                scram = _Scram(password)
                writer.write(_msg(b"p", scram.first()))
            elif code == 11 and scram:  # AuthenticationSASLContinue
                writer.write(_msg(b"p", scram.final(body[4:])))
            elif code == 12 and scram:  # AuthenticationSASLFinal
                scram.verify(body[4:])
            elif code == 0:  # AuthenticationOk
                break
            else:
                raise LoginError(f"unexpected authentication request {code}")
        await _until_ready(reader)
        # One query, as a real client would have run before going idle: a pooler that
        # allocates per-client buffers on first use is then measured with them.
        writer.write(_msg(b"Q", b"SELECT 1\0"))
        await _until_ready(reader)
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def idle_clients(pooler: Pooler, password: str, n: int, concurrency: int) -> dict:
    """Logs n clients in to the pooler (at most `concurrency` logins at a time),
    keeps them connected and idle, and reads the pooler's VmRSS before, with them,
    and after they have all gone."""
    pid = pooler.pid
    settle = 3.0
    rss_before = proc_rss_kb(pid)
    cpu0 = proc_cpu_ticks(pid)
    sem = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one():
        async with sem:
            try:
                return await asyncio.wait_for(_login(pooler.port, password), 30)
            except (OSError, LoginError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                return None

    t0 = time.monotonic()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=max(120, n * 0.05))
    for task in pending:
        task.cancel()
    if pending:
        failures.append(f"{len(pending)} logins still pending after the deadline")
    login_s = time.monotonic() - t0
    conns = [t.result() for t in done if not t.cancelled() and t.result() is not None]
    cpu1 = proc_cpu_ticks(pid)
    await asyncio.sleep(settle)
    rss_with = proc_rss_kb(pid)
    for _, writer in conns:
        try:
            writer.write(_msg(b"X", b""))
            writer.close()
        except OSError:
            pass
    for _, writer in conns:
        try:
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError):
            pass
    await asyncio.sleep(settle)
    rss_after = proc_rss_kb(pid)
    ok = len(conns)
    per_client = ((rss_with - rss_before) / ok if ok and rss_with is not None
                  and rss_before is not None else None)
    return {
        "pooler": pooler.name, "clients": n, "logged_in": ok, "failures": len(failures),
        "first_failure": failures[0] if failures else "",
        "login_s": round(login_s, 2), "logins_per_s": round(ok / login_s, 1) if login_s else None,
        "login_cpu_ms_per_1k": (round((cpu1 - cpu0) * 1000 / CLK_TCK / (ok / 1000), 1)
                                if ok and cpu0 is not None and cpu1 is not None else None),
        "rss_before_kb": rss_before, "rss_with_kb": rss_with, "rss_after_kb": rss_after,
        "per_client_kb": round(per_client, 2) if per_client is not None else None,
        "alive_after": pooler.alive(),
        "round2_rss_with_kb": None, "round2_rss_after_kb": None,  # filled by run_idle
    }



# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def fmt(value, digits: int) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def md_table(header: list[str], rows: list[list[str]], right_from: int = 0) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def status_cell(row: Row | None) -> str:
    if row is None:
        return "–"
    return {"ok": "ok" if not row.detail else "ok*", "n/a": "n/a (fails)",
            "unsupported": "not supported", "hang": "**HANG**",
            "fail": "**FAIL**"}.get(row.status, row.status.upper())


@dataclass(frozen=True)
class Metric:
    """One table of a report: a cell per target, and sluice against the best
    peer (and against direct) on `value`."""

    key: str  # in the CSV
    title: str
    value: Callable[[Row], float | None]
    cell: Callable[[Row], str]
    higher_is_better: bool
    vs_direct: bool = True


def _cell_ms(row: Row) -> str:
    return f"{fmt(row.lat_avg_ms, 3)} / {fmt(row.lat_p99_ms, 3)}"


TPS = Metric("tps", "Throughput: tps (with `-C`: logins per second)", lambda r: r.tps,
             lambda r: fmt(r.tps, 0), True)
LATENCY = Metric("p99", "Latency: average / p99 (ms); the ratios compare p99",
                 lambda r: r.lat_p99_ms, _cell_ms, False)
PROXY_CPU = Metric("cpu", "Pooler CPU per 1000 transactions (ms; with `-C`: per 1000 logins)",
                   lambda r: r.proxy_cpu_ms_per_1k, lambda r: fmt(r.proxy_cpu_ms_per_1k, 1),
                   False, vs_direct=False)
PG_CPU = Metric("pg_cpu", "PostgreSQL CPU per 1000 transactions (ms)",
                lambda r: r.pg_cpu_ms_per_1k, lambda r: fmt(r.pg_cpu_ms_per_1k, 1), False)
CONN = Metric("conn", "pgbench's average connection time (ms; without `-C`: all its initial "
              "logins)", lambda r: r.conn_ms, lambda r: fmt(r.conn_ms, 3), False)


def by_case(rows: list[Row]) -> dict[tuple[str, int], dict[str, Row]]:
    """Rows grouped by (case, clients), in the order they ran."""
    out: dict[tuple[str, int], dict[str, Row]] = {}
    for row in rows:
        out.setdefault((row.case, row.clients), {})[row.target] = row
    return out


def best_peer(runs: dict[str, Row], metric: Metric) -> tuple[TargetSpec, float] | None:
    values = [(SPECS[name], metric.value(r)) for name, r in runs.items()
              if SPECS[name].peer and r.valid and metric.value(r) is not None]
    if not values:
        return None
    pick = max if metric.higher_is_better else min
    return pick(values, key=lambda tv: tv[1])


def comparisons(runs: dict[str, Row], metric: Metric) -> dict:
    """sluice ÷ the best peer and sluice ÷ direct on `metric`, where both exist."""
    sl = runs.get("sluice")
    mine = metric.value(sl) if sl is not None and sl.valid else None
    best = best_peer(runs, metric)
    direct = runs.get("direct")
    theirs = metric.value(direct) if direct is not None and direct.valid else None
    return {"best_peer": best[0].name if best else "",
            "vs_best_peer": mine / best[1] if mine is not None and best and best[1] else None,
            "vs_direct": (mine / theirs if metric.vs_direct and mine is not None and theirs
                          else None)}


def wide_tables(bench: "Bench", metrics: list[Metric]) -> str:
    """One table per metric, one row per case and client count, every target side
    by side, then sluice ÷ the best peer and ÷ direct."""
    targets = [SPECS[n] for n in bench.s.targets]
    has_sluice, has_direct = "sluice" in bench.s.targets, "direct" in bench.s.targets
    groups = by_case(bench.rows)
    out = []
    for m in metrics:
        header = ["case", "clients", *[t.title for t in targets]]
        if has_sluice:
            header.append("sluice ÷ best peer")
            if has_direct and m.vs_direct:
                header.append("sluice ÷ direct")
        table = []
        for (case, clients), runs in groups.items():
            cells = [case, str(clients)]
            for t in targets:
                r = runs.get(t.name)
                if r is not None and r.status == "ok":
                    cells.append(m.cell(r) + ("*" if r.detail else ""))
                else:
                    cells.append(status_cell(r))
            if has_sluice:
                c = comparisons(runs, m)
                cells.append(f"{c['vs_best_peer']:.2f}× ({SPECS[c['best_peer']].title})"
                             if c["vs_best_peer"] is not None else "–")
                if has_direct and m.vs_direct:
                    cells.append(f"{c['vs_direct']:.2f}×" if c["vs_direct"] is not None else "–")
            table.append(cells)
        out.append(f"### {m.title}\n\n" + md_table(header, table, right_from=2) + "\n")
    titles = [t.title for t in targets if t.peer]
    peers = (", ".join(titles[:-1]) + " and " if len(titles) > 1 else "") + (
        titles[-1] if titles else "no peer (none ran)")
    better = ("Ratios: above 1× is better for tps and worse for latency, CPU and connection "
              f"time. *Best peer* is the best valid result of {peers} in that row (highest "
              "tps, lowest latency or CPU). A dash: no valid result on one side. `*`: see the "
              "notes.\n\n")
    return better + "".join(out)


WIDE_FIELDS = ("tps", "lat_avg_ms", "lat_p99_ms", "proxy_cpu_ms_per_1k", "pg_cpu_ms_per_1k",
               "conn_ms")


def wide_csv(bench: "Bench", metrics: list[Metric]) -> list[dict]:
    """The CSV twin of wide_tables: one row per case and client count."""
    out = []
    for (case, clients), runs in by_case(bench.rows).items():
        d: dict[str, object] = {"case": case, "clients": clients}
        for name in bench.s.targets:
            r = runs.get(name)
            d[f"{name}_status"] = (r.status + ("*" if r.detail and r.status == "ok" else "")
                                   if r else "")
            for f in WIDE_FIELDS:
                v = getattr(r, f) if r is not None and r.status == "ok" else None
                d[f"{name}_{f}"] = "" if v is None else round(v, 3)
        for m in metrics:
            c = comparisons(runs, m)
            d[f"best_peer_{m.key}"] = c["best_peer"]
            d[f"sluice_{m.key}_vs_best_peer"] = ("" if c["vs_best_peer"] is None
                                                 else round(c["vs_best_peer"], 3))
            if m.vs_direct:
                d[f"sluice_{m.key}_vs_direct"] = ("" if c["vs_direct"] is None
                                                  else round(c["vs_direct"], 3))
        out.append(d)
    return out


def every_run_table(rows: list[Row]) -> str:
    table = []
    for row in rows:
        ok = row.status == "ok"
        v = (lambda x, d: fmt(x, d) if ok else "–")  # noqa: E731
        table.append([row.case, str(row.clients), row.target, v(row.tps, 0),
                      v(row.lat_avg_ms, 3), v(row.lat_p99_ms, 3), v(row.proxy_cpu_ms_per_1k, 1),
                      v(row.proxy_cpu_pct, 0), v(row.pg_cpu_ms_per_1k, 1),
                      v(row.other_cpu_pct, 0), status_cell(row)])
    return ("\n<details><summary>Every run</summary>\n\n"
            + md_table(["case", "clients", "target", "tps", "avg ms", "p99 ms",
                        "proxy CPU ms / 1k tx", "proxy % of a core", "PG CPU ms / 1k tx",
                        "other load %", "status"], table, right_from=3)
            + "\n</details>\n")


def machine_summary(s: Settings, mode: str, bench: "Bench") -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    rev = first_line(["git", "rev-parse", "--short", "HEAD"], cwd=REPO)
    # The reports of earlier runs are not local changes to what is measured.
    dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                        ":!tests/bench/results"], cwd=REPO)
    sluice = bench.poolers.get("sluice")
    sluice_exe = sluice.exe if sluice else SLUICE_BIN
    built = datetime.datetime.fromtimestamp(os.path.getmtime(sluice_exe)).strftime(
        "%Y-%m-%d %H:%M:%S")
    sha = f", sha256 {sluice.sha256[:12]}" if isinstance(sluice, Sluice) else ""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    software = [first_line([PG_BIN / "postgres", "--version"])]
    setups = []
    for name in s.targets:
        spec = SPECS[name]
        if not spec.pooler:
            continue
        pooler = bench.poolers.get(name)
        version = pooler.version() if pooler else f"{spec.title}: not available"
        if spec.kind == "sluice":
            version += (f" (a copy of `{SLUICE_BIN}` taken at the start, built {built}{sha}; the "
                        f"tree was at {rev}{' + local changes' if dirty != '?' and dirty else ''})")
        software.append(version)
        setups.append(f"{spec.title}: {spec.setup}")
    workers = (f"1 (callgrind mode)" if mode == "callgrind" else
               f"{SLUICE_WORKERS} ({'BENCH_SLUICE_WORKERS' if SLUICE_WORKERS_SETTING else 'its default'})")
    lines = [
        f"- **When:** {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, `run.sh {mode}`"
        f"{' with BENCH_QUICK=1' if s.quick else ''}",
        f"- **Machine:** {cpu}, {CORES} cores, {mem_kb / 1048576:.0f} GB RAM, "
        f"Linux {os.uname().release}; open-files limit {soft}; CPU busy before the start "
        f"(other work on the machine): {fmt(bench.background_cpu_pct, 0)}%",
        "- **Software:** " + "; ".join(software),
        f"- **Setup:** everything on 127.0.0.1 on the same {CORES} cores: the client, the "
        f"pooler and PostgreSQL compete for CPU. PostgreSQL defaults (fsync on) except "
        f"max_connections {MAX_CONNECTIONS} and shared_buffers 256MB"
        f"{f'; `pgbench -i -s {s.scale}`' if mode != 'idle' else ''}"
        f"{'; ssl on (for direct)' if mode == 'tls' else ''}. "
        f"Every pooler: transaction mode, pool size {POOL_SIZE}, SCRAM for clients (checked "
        f"against the role's SCRAM verifier), plain TCP to PostgreSQL"
        f"{', TLS (mode require) from clients' if mode == 'tls' else ''}. "
        + "; ".join(setups) + f". sluice workers: {workers}.",
    ]
    return "\n".join(lines) + "\n"


def write_results(s: Settings, stem: str, markdown: str, csv_rows: list[dict],
                  run_rows: list[dict] | None = None) -> None:
    s.results_dir.mkdir(parents=True, exist_ok=True)
    (s.results_dir / f"{stem}.md").write_text(markdown)
    for name, rows in ((stem, csv_rows), (f"{stem}-runs", run_rows)):
        if rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
            (s.results_dir / f"{name}.csv").write_text(buf.getvalue())
    log(f"wrote {s.results_dir / stem}.md and .csv" + (f" and {stem}-runs.csv" if run_rows
                                                        else ""))


def pgbench_report(bench: "Bench", title: str, runs_line: str, metrics: list[Metric]) -> str:
    out = [f"# {title}\n\n", machine_summary(bench.s, bench.mode, bench), runs_line + "\n\n",
           noise_warning(bench.rows), wide_tables(bench, metrics), every_run_table(bench.rows),
           notes_section(bench, [r for r in bench.rows
                                 if (r.status != "ok" or r.detail)
                                 and r.detail != "left out (see the notes)"])]
    return "".join(out)


def target_list(s: Settings) -> str:
    return ", ".join(SPECS[n].title for n in s.targets)


def bench_report(bench: "Bench") -> str:
    s = bench.s
    return pgbench_report(
        bench, "sluice benchmark: pgbench, " + " vs ".join(SPECS[n].title for n in s.targets),
        f"- **Runs:** `-T {s.seconds}` per run (plus 1 s per 100 clients for the logins), `-n`, "
        f"`-j 2`, `-P 1`, targets interleaved ({target_list(s)}) for every case and client "
        f"count; CPU figures cover the part after the logins; p99 from pgbench's "
        f"per-transaction log (`--sampling-rate` {s.sampling_rate or '0.1 for -S, 1.0 for tpcb'}"
        f"). A run is a **HANG** when no transaction completes for {HANG_AFTER_S} s (pgbench's "
        f"progress shows 0 tps, or its threads use no CPU at all, blocked in libpq), or when "
        f"pgbench still runs 30 s (plus 0.05 s per client) past its `-T`; it is then killed.",
        [TPS, LATENCY, PROXY_CPU, PG_CPU])


def connect_report(bench: "Bench") -> str:
    s = bench.s
    return pgbench_report(
        bench, "sluice benchmark: logins per second (`pgbench -C -S`)",
        f"- **Runs:** `pgbench -C -S -M simple -c {s.connect_clients} -j 2 -T {s.seconds}`: "
        f"every transaction opens a new connection and logs in with SCRAM, so tps = logins/s. "
        f"pgbench's own PBKDF2 per login bounds the rate; compare the pooler CPU per login.",
        [TPS, CONN, PROXY_CPU, PG_CPU])


def tls_report(bench: "Bench") -> str:
    s = bench.s
    return pgbench_report(
        bench, "sluice benchmark: TLS from the clients to the pooler",
        f"- **Runs:** every client connects with `sslmode=require` (TLS 1.3 with OpenSSL's "
        f"defaults, an RSA 2048 certificate made by `openssl` for this run); the poolers talk "
        f"to PostgreSQL in plain text. `-S -M simple -c {s.tls_clients} -j 2 -T {s.seconds}`, "
        f"then `-C -S -M simple -c {s.connect_clients} -j 2 -T {s.seconds}`: with `-C` every "
        f"transaction is a new TLS handshake plus a SCRAM login, so its tps is TLS logins per "
        f"second, and the pooler CPU per 1000 logins is what a TLS login costs the pooler.",
        [TPS, LATENCY, CONN, PROXY_CPU])


def noise_warning(rows: list[Row]) -> str:
    other = sorted(r.other_cpu_pct for r in rows if r.other_cpu_pct is not None)
    if not other:
        return ""
    median = other[len(other) // 2]
    if median <= 5:
        return (f"Other work on the machine during the runs: median {median:.0f}% of the CPU, "
                f"most {other[-1]:.0f}% (column *other load* of every run).\n\n")
    return (f"> **Warning: the machine was not quiet.** Processes outside the benchmark used a "
            f"median {median:.0f}% (most {other[-1]:.0f}%) of the CPU during the runs (column "
            f"*other load*). Treat these numbers as rough; rerun on an idle machine.\n\n")


def notes_section(bench: "Bench", rows: list[Row]) -> str:
    lines = [f"- {n}" for n in bench.notes]
    for row in rows:
        lines.append(f"- **{row.case} c={row.clients} {row.target}** ({status_cell(row)}): "
                     f"{row.detail}")
    for pooler in bench.poolers.values():
        rss = [r.proxy_rss_kb for r in bench.rows if r.target == pooler.name and r.proxy_rss_kb]
        if rss:
            lines.append(f"- {pooler.spec.title} RSS after its runs: first {rss[0] / 1024:.1f} MB, "
                         f"largest {max(rss) / 1024:.1f} MB, last {rss[-1] / 1024:.1f} MB; "
                         f"restarts: {pooler.restarts}.")
    sluice = bench.poolers.get("sluice")
    if sluice is not None and sluice.logfile.exists() and not sluice.wrapper:
        warnings = [line for line in sluice.logfile.read_text(errors="replace").splitlines()
                    if line.strip() and not line.startswith("=====")]
        if warnings:
            lines.append(f"- sluice logged {len(warnings)} lines at warn or above; the first:\n\n"
                         "```\n" + "\n".join(w[:300] for w in warnings[:5]) + "\n```")
    if not lines:
        return ""
    return "\n## Failures and notes\n\n" + "\n".join(lines) + "\n"


def mb(kb) -> str:
    return fmt(kb / 1024, 1) if kb is not None else "–"


def idle_report(bench: "Bench", results: list[dict]) -> str:
    s = bench.s
    out = ["# sluice benchmark: memory per idle client\n\n",
           machine_summary(s, "idle", bench),
           f"- **Runs:** {s.idle_clients} clients log in (SCRAM, at most {s.idle_concurrency} "
           f"logins at a time), run `SELECT 1` once, and stay connected. Per client = "
           f"(VmRSS with them − VmRSS before) ÷ clients logged in, VmRSS read {3:.0f} s after "
           f"the last login. Kernel socket buffers are not in RSS, for any pooler. A "
           f"second round of as many clients then runs on the same daemon: RSS that climbs "
           f"again is a leak, RSS that stays put is memory kept for reuse.\n\n"]
    table = [[SPECS[r["pooler"]].title, f"{r['logged_in']}/{r['clients']}", str(r["failures"]),
              fmt(r["logins_per_s"], 0), fmt(r["login_cpu_ms_per_1k"], 1),
              mb(r["rss_before_kb"]), mb(r["rss_with_kb"]),
              fmt(r["per_client_kb"], 2), mb(r["rss_after_kb"]),
              mb(r.get("round2_rss_with_kb")), mb(r.get("round2_rss_after_kb")),
              "yes" if r["alive_after"] else "**no**"] for r in results]
    out.append(md_table(["pooler", "logged in", "failures", "logins/s",
                         "pooler CPU ms / 1k logins", "RSS before MB", "RSS with clients MB",
                         "RSS per client kB", "RSS after they left MB",
                         "2nd round: RSS with MB", "2nd round: after MB", "alive"], table,
                        right_from=1))
    by = {r["pooler"]: r for r in results if not r["failures"]}
    peers = [(SPECS[n].title, r["per_client_kb"]) for n, r in by.items()
             if SPECS[n].peer and r["per_client_kb"] is not None]
    if "sluice" in by and peers:
        title, best = min(peers, key=lambda p: p[1])
        out.append(f"\nsluice ÷ best peer ({title}) RSS per client: "
                   f"{ratio(by['sluice']['per_client_kb'], best)}.\n")
    failed = [r for r in results if r["failures"]]
    lines = [f"- {n}" for n in bench.notes] + [
        f"- {r['pooler']}: {r['failures']} failures; first: {r['first_failure']}" for r in failed]
    if lines:
        out.append("\n## Failures and notes\n\n" + "\n".join(lines) + "\n")
    return "".join(out)


def callgrind_report(bench: "Bench", results: list[dict]) -> str:
    s = bench.s
    out = ["# sluice benchmark: user-space instructions per transaction (callgrind)\n\n",
           machine_summary(s, "callgrind", bench),
           f"- **Runs:** each pooler in turn under `valgrind --tool=callgrind`; "
           f"`pgbench -S -M simple -c {s.callgrind_clients} -j 2` through it. A first run warms "
           f"it up (fills its pool); in a second, once pgbench's clients are logged in, "
           f"`callgrind_control --zero`, {s.callgrind_seconds} s of load, then "
           f"`callgrind_control --dump`. Ir per transaction = the dump's instructions (every "
           f"thread, user space only) ÷ the transactions pgbench logged as completed between "
           f"the zero and the dump. Logins and disconnects are outside the window. The pooler "
           f"runs some 50× slower under valgrind, so it is the bottleneck and tps is low; "
           f"the count of instructions does not depend on the machine's load.\n\n"]
    table = [[SPECS[r["target"]].title, fmt(r["ir_per_tx"], 0), fmt(r["transactions"], 0),
              fmt(r["window_s"], 1), fmt(r["tps"], 0), fmt(r["ir"], 0),
              "ok" if r["status"] == "ok" else f"**{r['status'].upper()}**"] for r in results]
    out.append(md_table(["pooler", "Ir per transaction", "transactions in the window",
                         "window s", "tps under callgrind", "Ir in the window", "status"],
                        table, right_from=1))
    by = {r["target"]: r for r in results if r["status"] == "ok"}
    if "sluice" in by:
        lines = [f"sluice ÷ {SPECS[n].title}: {ratio(by['sluice']['ir_per_tx'], r['ir_per_tx'])}"
                 for n, r in by.items() if SPECS[n].peer]
        if lines:
            out.append("\n" + "; ".join(lines) + " (below 1× is fewer instructions).\n")
    lines = [f"- {n}" for n in bench.notes] + [
        f"- {SPECS[r['target']].title}: {r['status']}: {r['detail']}" for r in results
        if r["status"] != "ok" and r["detail"] != "left out (see the notes)"]
    if lines:
        out.append("\n## Failures and notes\n\n" + "\n".join(lines) + "\n")
    return "".join(out)


def rows_as_dicts(rows: list[Row]) -> list[dict]:
    out = []
    for row in rows:
        d = {}
        for f in fields(Row):
            v = getattr(row, f.name)
            d[f.name] = round(v, 3) if isinstance(v, float) else ("" if v is None else v)
        out.append(d)
    return out


# ---------------------------------------------------------------------------

MODES = ("bench", "idle", "connect", "callgrind", "tls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--work", required=True, type=Path,
                        help="an empty directory with a pids/ subdirectory (run.sh makes it)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    settings = Settings.from_env(args.mode)
    bench = Bench(args.work, settings, args.mode)
    run_rows = None
    try:
        bench.setup()
        if args.mode == "bench":
            bench.run_bench()
            report, stem = bench_report(bench), "latest"
            csv_rows, run_rows = wide_csv(bench, [TPS, LATENCY, PROXY_CPU]), rows_as_dicts(
                bench.rows)
        elif args.mode == "connect":
            bench.run_connect()
            report, stem = connect_report(bench), "latest-connect"
            csv_rows, run_rows = wide_csv(bench, [TPS, CONN, PROXY_CPU]), rows_as_dicts(
                bench.rows)
        elif args.mode == "tls":
            bench.run_tls()
            report, stem = tls_report(bench), "latest-tls"
            csv_rows, run_rows = wide_csv(bench, [TPS, LATENCY, PROXY_CPU]), rows_as_dicts(
                bench.rows)
        elif args.mode == "callgrind":
            results = bench.run_callgrind()
            report, stem, csv_rows = callgrind_report(bench, results), "latest-callgrind", results
        else:
            results = bench.run_idle()
            report, stem, csv_rows = idle_report(bench, results), "latest-idle", results
    finally:
        bench.teardown()
    write_results(settings, stem, report, csv_rows, run_rows)
    print(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
