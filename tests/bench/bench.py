#!/usr/bin/python3
"""The side-by-side benchmark behind tests/bench/run.sh: PostgreSQL direct,
PgBouncer 1.18 and sluice, on this machine. Standard library only.

run.sh creates the work directory, sets the open-files limit and owns the
cleanup trap; this script starts the three servers in it and measures. Each
background process is recorded in WORK/pids/NAME.pid as "PID STARTTIME" the
moment it starts, so the trap can stop it even if this script is killed.

Modes:
  bench    pgbench matrix, targets interleaved per case and client count
  idle     RSS per logged-in idle client, for each pooler
  connect  logins per second (pgbench -C -S), for each target

Flow of one pgbench run (measure_pgbench):
  pgbench -T (longer by 1 s per 100 clients, for the logins) with a sampled
  per-transaction log
  -> while it runs, every 0.25 s: CPU of the pooler, of the PostgreSQL cluster,
     of pgbench, and of the whole host (/proc)
  -> tps and average latency from pgbench's report, p50/p99 from its log,
     failures from its stderr; CPU deltas from the first sample after its logins
     ended ("initial connection time") to the end, per 1000 transactions
  -> if the run failed on a pooler: is it alive and answering? restart it if not.
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
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HOST = "127.0.0.1"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SLUICE_BIN = os.path.realpath(os.environ.get("SLUICE_BIN") or str(REPO / "build" / "sluice"))
PGBOUNCER_BIN = os.path.realpath(shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
# 0 = sluice's default (half the cores, at least one); the report shows the count it gives.
SLUICE_WORKERS_SETTING = int(os.environ.get("BENCH_SLUICE_WORKERS") or 0)
SLUICE_WORKERS = SLUICE_WORKERS_SETTING or max(1, CORES // 2)
MAX_CONNECTIONS = 300
DB = "bench"
USER = "bench"

TARGETS = ("direct", "pgbouncer", "sluice")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _on_sigterm(signum, frame):  # run the finally blocks, then run.sh's trap
    raise SystemExit(128 + signum)


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
    results_dir: Path

    @staticmethod
    def from_env() -> "Settings":
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        wanted_cases = os.environ.get("BENCH_CASES", "").replace(",", " ").split()
        cases = [c for c in ALL_CASES
                 if not wanted_cases or any(w in (c.label, c.label.replace(" ", "-"))
                                            for w in wanted_cases)]
        if not cases:
            raise SystemExit(f"BENCH_CASES={os.environ['BENCH_CASES']!r} matches no case; "
                             f"cases: {', '.join(c.label.replace(' ', '-') for c in ALL_CASES)}")
        targets = os.environ.get("BENCH_TARGETS", "").replace(",", " ").split() or list(TARGETS)
        if unknown := set(targets) - set(TARGETS):
            raise SystemExit(f"BENCH_TARGETS: unknown {sorted(unknown)}; known: {TARGETS}")
        rate = os.environ.get("BENCH_SAMPLING_RATE")
        return Settings(
            quick=quick,
            seconds=int(os.environ.get("BENCH_SECONDS") or (5 if quick else 10)),
            clients=_env_list("BENCH_CLIENTS", [1, 10, 50] if quick else [1, 10, 50, 200, 1000]),
            cases=cases,
            targets=[t for t in TARGETS if t in targets],  # always interleaved in this order
            scale=int(os.environ.get("BENCH_SCALE") or 10),
            sampling_rate=float(rate) if rate else None,
            idle_clients=int(os.environ.get("BENCH_IDLE_CLIENTS") or (1000 if quick else 10000)),
            idle_concurrency=int(os.environ.get("BENCH_IDLE_CONCURRENCY") or 64),
            connect_clients=int(os.environ.get("BENCH_CONNECT_CLIENTS") or 10),
            results_dir=Path(os.environ.get("BENCH_RESULTS_DIR") or HERE / "results"),
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
    what is measured), with the password and a connect timeout for libpq."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "15", **extra})
    return env


def run(cmd, timeout: float, *, env=None, input: str | None = None,
        check: bool = False) -> subprocess.CompletedProcess:
    """Runs cmd in this process group (so Ctrl-C reaches it too) and kills it
    on timeout: returns returncode None then."""
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", env=env)
    try:
        out, err = proc.communicate(input, timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    finally:
        if proc.poll() is None:  # KeyboardInterrupt mid-communicate
            proc.kill()
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
# The three servers
# ---------------------------------------------------------------------------


class Daemon:
    """A background process this script started, registered with run.sh's trap."""

    name = "daemon"

    def __init__(self, work: Path):
        self.work = work
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

    def _spawn(self, cmd: list[str], logfile: Path, **kwargs) -> None:
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


class Postgres(Daemon):
    """PostgreSQL 15 with its defaults except for what the benchmark needs:
    loopback only, max_connections 300, shared_buffers 256MB. fsync stays on."""

    name = "postgres"

    def __init__(self, work: Path):
        super().__init__(work)
        self.base = work / "pg"
        self.data = self.base / "data"
        self.logfile = self.base / "postgres.log"
        self.superuser_password = "pgsuper-" + secrets.token_hex(12)
        self.password = "bench-" + secrets.token_hex(12)  # the bench role's
        self.exe = str(PG_BIN / "postgres")

    def init(self) -> None:
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
        (self.data / "pg_hba.conf").write_text("local all all scram-sha-256\n"
                                               "host all all 127.0.0.1/32 scram-sha-256\n")

    def start(self) -> None:
        for _ in range(3):  # a port taken since free_port() picked it: try another
            self.port = free_port()
            self._spawn([self.exe, "-D", self.data, "-p", str(self.port)], self.logfile,
                        cwd=self.base, user="postgres", group="postgres", extra_groups=[])
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
        which both poolers check client logins against."""
        self.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{self.password}';\n"
                  f"CREATE DATABASE {DB} OWNER {USER};", superuser=True)
        return self.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{USER}'",
                         superuser=True)


class Pooler(Daemon):
    def ping(self, password: str) -> bool:
        r = run(["psql", "-X", "-A", "-t", "-h", HOST, "-p", self.port, "-U", USER, "-d", DB,
                 "-c", "SELECT 1"], 10, env=client_env(password, PGCONNECT_TIMEOUT="5"))
        return r.returncode == 0 and r.stdout.strip() == "1"

    def restart(self) -> None:
        self.stop()
        self.start()


class PgBouncer(Pooler):
    """PgBouncer in transaction mode, clients checked against the SCRAM verifier
    in userlist.txt, logging in to PostgreSQL with the plain password."""

    name = "pgbouncer"

    def __init__(self, work: Path, pg: Postgres, verifier: str):
        super().__init__(work)
        self.dir = work / "pgbouncer"
        self.dir.mkdir()
        self.logfile = self.dir / "pgbouncer.log"
        self.ini = self.dir / "pgbouncer.ini"
        self.exe = PGBOUNCER_BIN
        self.pg = pg
        self.verifier = verifier

    def start(self) -> None:
        self.port = free_port()
        userlist = self.dir / "userlist.txt"
        userlist.write_text(f'"{USER}" "{self.verifier}"\n')
        self.ini.write_text(f"""\
[databases]
{DB} = host={HOST} port={self.pg.port} dbname={DB} user={USER} password={self.pg.password}

[pgbouncer]
listen_addr = {HOST}
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {userlist}
pool_mode = transaction
default_pool_size = 10
max_client_conn = 11000
logfile =
pidfile =
; sluice runs at log_level warn: PgBouncer does not log every login either.
log_connections = 0
log_disconnections = 0
""")
        for path in (self.dir, userlist, self.ini):
            shutil.chown(path, "postgres", "postgres")
        userlist.chmod(0o600)
        self._spawn([self.exe, "-u", "postgres", self.ini], self.logfile, cwd=self.dir)
        self._wait_port(15, self.logfile)


class Sluice(Pooler):
    name = "sluice"

    def __init__(self, work: Path, pg: Postgres, verifier: str):
        super().__init__(work)
        self.dir = work / "sluice"
        self.dir.mkdir()
        self.logfile = self.dir / "sluice.log"
        self.config = self.dir / "sluice.yaml"
        # A copy: a rebuild of build/sluice during the run must not change what is
        # measured, nor break a restart halfway through the linker writing it.
        self.exe = str(self.dir / "sluice")
        shutil.copy2(SLUICE_BIN, self.exe)
        self.sha256 = hashlib.sha256(Path(self.exe).read_bytes()).hexdigest()
        self.pg = pg
        self.verifier = verifier
        self.restarts = 0

    def start(self) -> None:
        self.port = free_port()
        url = f"postgresql://{USER}:{self.pg.password}@{HOST}:{self.pg.port}/{DB}"
        self.config.write_text(f"""\
listen:
  host: "{HOST}"
  port: {self.port}
workers: {SLUICE_WORKERS_SETTING}
max_clients: 11000
auth: scram-sha-256
log_level: warn
pool:
  mode: transaction
  size: 10
databases:
  {DB}:
    url: "{url}"
users:
  - name: "{USER}"
    password: "{self.verifier}"
""")
        with open(self.logfile, "a") as f:
            f.write(f"\n===== started {time.strftime('%H:%M:%S')} =====\n")
        self._spawn([self.exe, "-c", self.config], self.logfile, cwd=self.dir)
        self._wait_port(15, self.logfile)


# ---------------------------------------------------------------------------
# pgbench runs
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One measured run; also a CSV row."""

    mode: str = ""
    case: str = ""
    clients: int = 0
    target: str = ""
    status: str = ""  # ok | fail | timeout | n/a | skipped
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


def parse_pgbench(out: str, err: str) -> dict:
    def num(pattern):
        m = re.search(pattern, out)
        return float(m.group(1)) if m else None

    aborted = re.findall(r"client \d+ .*aborted", err)
    errors = [line.strip() for line in err.splitlines()
              if "ERROR" in line or "FATAL" in line or "error:" in line]
    return {
        "processed": int(num(r"number of transactions actually processed: (\d+)") or 0),
        "failed": int(num(r"number of failed transactions: (\d+)") or 0),
        "tps": num(r"tps = ([0-9.]+)"),
        "lat_avg_ms": num(r"latency average = ([0-9.]+) ms"),
        "conn_ms": num(r"(?:initial|average) connection time = ([0-9.]+) ms"),
        "aborted": len(aborted),
        "errors": errors,
    }


def latency_percentiles(prefix: Path) -> tuple[int, float | None, float | None]:
    """(samples, p50 ms, p99 ms) from pgbench's per-transaction logs (one file
    per thread). Each line: client_id transaction_no time_us script_no epoch us."""
    latencies = []
    for path in glob.glob(f"{prefix}.*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():  # "failed"/"skipped" are not
                    latencies.append(int(parts[2]))
        os.unlink(path)
    if not latencies:
        return 0, None, None
    latencies.sort()

    def rank(p):  # nearest-rank percentile
        return latencies[min(len(latencies) - 1, max(0, -(-len(latencies) * p // 100) - 1))] / 1000

    return len(latencies), rank(50), rank(99)


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


class Bench:
    def __init__(self, work: Path, settings: Settings, mode: str):
        self.work = work
        self.s = settings
        self.mode = mode
        self.pg = Postgres(work)
        self.pgbouncer: PgBouncer | None = None
        self.sluice: Sluice | None = None
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.run_no = 0
        self.background_cpu_pct: float | None = None
        (work / "runs").mkdir()

    # -- setup ---------------------------------------------------------------

    def setup(self, *, load: bool) -> None:
        busy0, total0 = host_cpu()
        time.sleep(2)
        busy1, total1 = host_cpu()
        self.background_cpu_pct = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
        log(f"machine CPU busy before starting anything: {self.background_cpu_pct}%")
        log(f"initdb + PostgreSQL 15 in {self.work}")
        self.pg.init()
        self.pg.start()
        verifier = self.pg.create_bench_role()
        if load:
            log(f"pgbench -i -s {self.s.scale}")
            r = run(["pgbench", "-i", "-q", "-s", self.s.scale, "-h", HOST, "-p", self.pg.port,
                     "-U", USER, DB], 1800, env=client_env(self.pg.password))
            if r.returncode != 0:
                raise RuntimeError(f"pgbench -i failed:\n{r.stdout}\n{r.stderr}")
            self.pg.psql("CHECKPOINT", superuser=True)
        self.pgbouncer = PgBouncer(self.work, self.pg, verifier)
        self.pgbouncer.start()
        self.sluice = Sluice(self.work, self.pg, verifier)
        self.sluice.start()
        log(f"PostgreSQL :{self.pg.port}  PgBouncer :{self.pgbouncer.port}  "
            f"sluice :{self.sluice.port} (pid {self.sluice.pid}, {SLUICE_WORKERS} workers)")

    def teardown(self) -> None:
        for daemon in (self.sluice, self.pgbouncer, self.pg):
            if daemon is not None:
                try:
                    daemon.stop()
                except Exception as exc:  # keep stopping the rest; run.sh's trap backs this up
                    log(f"stopping {daemon.name}: {exc}")

    def target(self, name: str) -> tuple[int, Pooler | None]:
        if name == "direct":
            return self.pg.port, None
        pooler = self.pgbouncer if name == "pgbouncer" else self.sluice
        return pooler.port, pooler

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
               "-j", min(2, clients), "-T", duration, *args]
        if sampling_rate is not None:
            cmd += ["--log", f"--log-prefix={prefix}", f"--sampling-rate={sampling_rate}"]
        cmd.append(DB)
        timeout = duration + 30 + clients * 0.05
        r, samples, end = self.run_sampled(cmd, timeout, pooler.pid if pooler else None)
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
        if r.returncode is None:
            row.status = "timeout"
            row.detail = (f"pgbench still running {timeout:.0f} s after start; killed. "
                          + "; ".join(stats["errors"][:2]))
        elif r.returncode == 0 and row.processed > 0 and not row.failed_tx \
                and not row.aborted_clients:
            row.status = "ok"
        else:
            row.status = "fail"
            first = stats["errors"][:2] or r.stderr.strip().splitlines()[-2:]
            row.detail = (f"pgbench exit {r.returncode}, {row.aborted_clients}/{clients} clients "
                          f"aborted, {row.failed_tx} failed tx, {row.processed} tx done; "
                          + " | ".join(first))
        if pooler is not None and row.status != "ok":
            self.check_pooler(pooler, f"{label or ' '.join(args)} c={clients}")
        return row

    def sample(self, proxy_pid: int | None, pgbench_ticks: float | None) -> "CpuSample":
        return CpuSample(time.monotonic(), proc_cpu_ticks(proxy_pid) if proxy_pid else None,
                         self.pg_ticks(), pgbench_ticks, host_cpu())

    def run_sampled(self, cmd: list, timeout: float, proxy_pid: int | None):
        """Runs pgbench, sampling CPU every SAMPLE_INTERVAL s while it runs. Returns
        (CompletedProcess with returncode None on timeout, samples, final sample)."""
        cmd = [str(c) for c in cmd]
        out_path, err_path = self.work / "runs" / "stdout", self.work / "runs" / "stderr"
        reaped0 = children_cpu_s()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=client_env(self.pg.password))
            samples = []
            try:
                while True:
                    ticks = proc_cpu_ticks(proc.pid)
                    samples.append(self.sample(proxy_pid, ticks))
                    if proc.poll() is not None:
                        break
                    if samples[-1].t - samples[0].t > timeout:
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
        timed_out = samples[-1].t - samples[0].t > timeout
        result = subprocess.CompletedProcess(
            cmd, None if timed_out else proc.returncode,
            out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))
        samples[0] = samples[0]._replace(pgbench=0)  # it had barely started
        return result, samples, end

    def fill_cpu(self, row: Row, begin: "CpuSample", end: "CpuSample") -> None:
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
        """After a failed run: is the pooler alive and answering? If not, note
        why and restart it, so one bad case does not sink every later one."""
        if pooler.alive() and pooler.ping(self.pg.password):
            return
        how = (f"exited with {pooler.proc.returncode}" if not pooler.alive()
               else "alive but not answering SELECT 1 within 10 s")
        logged = "\n".join(line for line in tail(pooler.logfile, 15).splitlines()
                           if line.strip() and not line.startswith("====="))
        self.notes.append(f"{pooler.name} {how} after {after}; "
                          + (f"last log lines:\n\n```\n{logged}\n```\n" if logged
                             else "it logged nothing."))
        log(f"{pooler.name} {how}; restarting it")
        try:
            pooler.restart()
            if isinstance(pooler, Sluice):
                pooler.restarts += 1
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

    # -- modes ---------------------------------------------------------------

    def run_bench(self) -> None:
        s = self.s
        log("warm-up: 3 s of -S at 10 clients through each target (fills the pools and caches)")
        for name in s.targets:
            warm = self.measure_pgbench(name, ["-S", "-M", "simple"], clients=10, seconds=3,
                                        sampling_rate=None, label="warm-up")
            if warm.status != "ok":
                self.notes.append(f"warm-up through {name} failed: {warm.detail}")
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
                elif name == "pgbouncer" and case.query_mode == "prepared":
                    row = self.pgbouncer_prepared(case, clients)
                else:
                    self.prepare_case(case)
                    row = self.measure_pgbench(name, case.args, clients=clients,
                                               seconds=s.seconds,
                                               sampling_rate=s.sampling_rate_for(case),
                                               label=case.label)
                row.case = case.label
                self.rows.append(row)
                log(f"[{i}/{len(plan)}] {case.label:<13} c={clients:<4} {name:<9} "
                    f"{describe(row)}")

    def pgbouncer_prepared(self, case: Case, clients: int) -> Row:
        """PgBouncer 1.18 keeps no track of prepared statements, so in transaction
        mode a client's Bind lands on a server that never saw its Parse. A short
        attempt records how it fails; should it not fail (one client can keep
        landing on the same server), the full run is measured and flagged."""
        self.prepare_case(case)
        seconds = min(3, self.s.seconds)
        row = self.measure_pgbench("pgbouncer", case.args, clients=clients, seconds=seconds,
                                   sampling_rate=None, label=case.label)
        if row.status == "ok":
            self.prepare_case(case)
            seconds = self.s.seconds
            row = self.measure_pgbench("pgbouncer", case.args, clients=clients, seconds=seconds,
                                       sampling_rate=self.s.sampling_rate_for(case),
                                       label=case.label)
            if row.status == "ok":
                row.detail = ("did not fail this time: each client kept getting a server that "
                              "held its statements and none that held another's")
        if row.status == "fail":
            # Statements also outlive their client on PgBouncer's servers: a later
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
            log(f"connect c={c} {name:<9} {describe(row)}")

    def run_idle(self) -> list[dict]:
        n = self.s.idle_clients
        results = []
        if not self.fd_limit_ok(n + 200, f"idle with {n} clients"):
            return results
        for name in ("pgbouncer", "sluice"):
            if name not in self.s.targets:
                continue
            _, pooler = self.target(name)
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


def machine_summary(s: Settings, mode: str, bench: "Bench") -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])

    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                                  cwd=REPO).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    rev = first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    sluice_exe = bench.sluice.exe if bench.sluice else SLUICE_BIN
    built = datetime.datetime.fromtimestamp(os.path.getmtime(sluice_exe)).strftime(
        "%Y-%m-%d %H:%M:%S")
    sha = f", sha256 {bench.sluice.sha256[:12]}" if bench.sluice else ""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    lines = [
        f"- **When:** {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, `run.sh {mode}`"
        f"{' with BENCH_QUICK=1' if s.quick else ''}",
        f"- **Machine:** {cpu}, {CORES} cores, {mem_kb / 1048576:.0f} GB RAM, "
        f"Linux {os.uname().release}; open-files limit {soft}; CPU busy before the start "
        f"(other work on the machine): {fmt(bench.background_cpu_pct, 0)}%",
        f"- **Software:** {first_line([PG_BIN / 'postgres', '--version'])}; "
        f"{first_line([PGBOUNCER_BIN, '--version'])}; {first_line([sluice_exe, '--version'])} "
        f"(a copy of `{SLUICE_BIN}` taken at the start, built {built}{sha}; the tree was at "
        f"{rev}{' + local changes' if dirty != '?' and dirty else ''})",
        f"- **Setup:** everything on 127.0.0.1 on the same {CORES} cores: the client, the "
        f"pooler and PostgreSQL compete for CPU. PostgreSQL defaults (fsync on) except "
        f"max_connections {MAX_CONNECTIONS} and shared_buffers 256MB"
        f"{f'; `pgbench -i -s {s.scale}`' if mode != 'idle' else ''}. "
        f"Both poolers: transaction mode, pool size 10, SCRAM for clients (checked against the "
        f"role's SCRAM verifier); sluice workers {SLUICE_WORKERS} ({'BENCH_SLUICE_WORKERS' if SLUICE_WORKERS_SETTING else 'its default'}), log_level warn.",
    ]
    return "\n".join(lines) + "\n"


def write_results(s: Settings, stem: str, markdown: str, csv_rows: list[dict]) -> None:
    s.results_dir.mkdir(parents=True, exist_ok=True)
    (s.results_dir / f"{stem}.md").write_text(markdown)
    if csv_rows:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(csv_rows[0].keys()))
        writer.writeheader()
        writer.writerows(csv_rows)
        (s.results_dir / f"{stem}.csv").write_text(buf.getvalue())
    log(f"wrote {s.results_dir / stem}.md and .csv")


def status_cell(row: Row) -> str:
    if row.status == "ok":
        return "ok" if not row.detail else "ok*"
    if row.status == "n/a":
        return "n/a (fails)"
    return row.status.upper()


def bench_report(bench: Bench) -> str:
    s = bench.s
    out = ["# sluice benchmark: pgbench, direct vs PgBouncer vs sluice\n\n",
           machine_summary(s, "bench", bench),
           f"- **Runs:** `-T {s.seconds}` per run (plus 1 s per 100 clients for the logins), `-n`, "
           f"`-j 2`, targets interleaved (direct, PgBouncer, sluice) for every case and client "
           f"count; CPU columns cover the part after the logins; p99 from pgbench's "
           f"per-transaction log "
           f"(`--sampling-rate` {s.sampling_rate or '0.1 for -S, 1.0 for tpcb'}).\n\n"]
    out.append(noise_warning(bench.rows))
    table = []
    for row in bench.rows:
        if row.status in ("ok",):
            table.append([row.case, str(row.clients), row.target, fmt(row.tps, 0),
                          fmt(row.lat_avg_ms, 3), fmt(row.lat_p99_ms, 3),
                          fmt(row.proxy_cpu_ms_per_1k, 1), fmt(row.proxy_cpu_pct, 0),
                          fmt(row.pg_cpu_ms_per_1k, 1), fmt(row.other_cpu_pct, 0),
                          status_cell(row)])
        else:
            table.append([row.case, str(row.clients), row.target, "–", "–", "–", "–", "–", "–",
                          "–", status_cell(row)])
    out.append("## Throughput, latency, proxy CPU\n\n")
    out.append(md_table(["case", "clients", "target", "tps", "avg ms", "p99 ms",
                         "proxy CPU ms / 1k tx", "proxy % of a core", "PG CPU ms / 1k tx",
                         "other load %", "status"],
                        table, right_from=3))
    # Ratios: one line per case and client count.
    by_key: dict[tuple[str, int], dict[str, Row]] = {}
    for row in bench.rows:
        by_key.setdefault((row.case, row.clients), {})[row.target] = row
    ratios = []
    for (case, clients), targets in by_key.items():
        sl = targets.get("sluice")
        if sl is None:
            continue

        def ok(name):
            r = targets.get(name)
            return r if r is not None and r.status == "ok" else None

        pgb, direct, slok = ok("pgbouncer"), ok("direct"), ok("sluice")
        pick = lambda r, attr: getattr(r, attr) if r else None  # noqa: E731
        ratios.append([case, str(clients),
                       ratio(pick(slok, "tps"), pick(pgb, "tps")),
                       ratio(pick(slok, "tps"), pick(direct, "tps")),
                       ratio(pick(slok, "lat_p99_ms"), pick(pgb, "lat_p99_ms")),
                       ratio(pick(slok, "lat_p99_ms"), pick(direct, "lat_p99_ms")),
                       ratio(pick(slok, "proxy_cpu_ms_per_1k"), pick(pgb, "proxy_cpu_ms_per_1k"))])
    out.append("\n## Ratios, sluice ÷ the other\n\nAbove 1× is better for tps, worse for p99 "
               "and CPU. A dash: one side has no valid result.\n\n")
    out.append(md_table(["case", "clients", "tps ÷ PgBouncer", "tps ÷ direct", "p99 ÷ PgBouncer",
                         "p99 ÷ direct", "CPU/tx ÷ PgBouncer"], ratios, right_from=2))
    out.append(notes_section(bench, [r for r in bench.rows if r.status != "ok" or r.detail]))
    return "".join(out)


def noise_warning(rows: list[Row]) -> str:
    other = sorted(r.other_cpu_pct for r in rows if r.other_cpu_pct is not None)
    if not other:
        return ""
    median = other[len(other) // 2]
    if median <= 5:
        return (f"Other work on the machine during the runs: median {median:.0f}% of the CPU, "
                f"most {other[-1]:.0f}% (column *other load*).\n\n")
    return (f"> **Warning: the machine was not quiet.** Processes outside the benchmark used a "
            f"median {median:.0f}% (most {other[-1]:.0f}%) of the CPU during the runs (column "
            f"*other load*). Treat these numbers as rough; rerun on an idle machine.\n\n")


def notes_section(bench: Bench, rows: list[Row]) -> str:
    lines = []
    for row in rows:
        lines.append(f"- **{row.case} c={row.clients} {row.target}** ({row.status}): {row.detail}")
    if bench.sluice is not None:
        rss = [r.proxy_rss_kb for r in bench.rows if r.target == "sluice" and r.proxy_rss_kb]
        if rss:
            lines.append(f"- sluice RSS after its runs: first {rss[0] / 1024:.1f} MB, largest "
                         f"{max(rss) / 1024:.1f} MB, last {rss[-1] / 1024:.1f} MB; restarts: "
                         f"{bench.sluice.restarts}.")
        warnings = [l for l in bench.sluice.logfile.read_text(errors="replace").splitlines()
                    if l.strip() and not l.startswith("=====")] \
            if bench.sluice.logfile.exists() else []
        if warnings:
            lines.append(f"- sluice logged {len(warnings)} lines at warn or above; the first:\n\n"
                         "```\n" + "\n".join(w[:300] for w in warnings[:5]) + "\n```")
    lines += [f"- {n}" for n in bench.notes]
    if not lines:
        return ""
    return "\n## Failures and notes\n\n" + "\n".join(lines) + "\n"


def connect_report(bench: Bench) -> str:
    s = bench.s
    out = ["# sluice benchmark: logins per second (`pgbench -C -S`)\n\n",
           machine_summary(s, "connect", bench),
           f"- **Runs:** `pgbench -C -S -M simple -c {s.connect_clients} -j 2 -T {s.seconds}`: "
           f"every transaction opens a new connection and logs in with SCRAM, so tps = logins/s. "
           f"pgbench's own PBKDF2 per login bounds the rate; compare the proxy CPU per login.\n\n"]
    out.append(noise_warning(bench.rows))
    by = {r.target: r for r in bench.rows}
    table = [[r.target, fmt(r.tps, 0) if r.status == "ok" else "–",
              fmt(r.conn_ms, 3) if r.status == "ok" else "–",
              fmt(r.proxy_cpu_ms_per_1k, 1) if r.status == "ok" else "–",
              fmt(r.proxy_cpu_pct, 0) if r.status == "ok" else "–",
              fmt(r.pg_cpu_ms_per_1k, 1) if r.status == "ok" else "–",
              fmt(r.other_cpu_pct, 0), status_cell(r)] for r in bench.rows]
    out.append(md_table(["target", "logins/s", "avg connection ms", "proxy CPU ms / 1k logins",
                         "proxy % of a core", "PG CPU ms / 1k logins", "other load %", "status"],
                        table, right_from=1))
    sl, pgb, direct = by.get("sluice"), by.get("pgbouncer"), by.get("direct")
    val = lambda r: r.tps if r and r.status == "ok" else None  # noqa: E731
    out.append(f"\nsluice ÷ PgBouncer logins/s: {ratio(val(sl), val(pgb))}; "
               f"sluice ÷ direct: {ratio(val(sl), val(direct))}.\n")
    out.append(notes_section(bench, [r for r in bench.rows if r.status != "ok" or r.detail]))
    return "".join(out)


def mb(kb) -> str:
    return fmt(kb / 1024, 1) if kb is not None else "–"


def idle_report(bench: Bench, results: list[dict]) -> str:
    s = bench.s
    out = ["# sluice benchmark: memory per idle client\n\n",
           machine_summary(s, "idle", bench),
           f"- **Runs:** {s.idle_clients} clients log in (SCRAM, at most {s.idle_concurrency} "
           f"logins at a time), run `SELECT 1` once, and stay connected. Per client = "
           f"(VmRSS with them − VmRSS before) ÷ clients logged in, VmRSS read {3:.0f} s after "
           f"the last login. Kernel socket buffers are not in RSS, for either pooler. A "
           f"second round of as many clients then runs on the same daemon: RSS that climbs "
           f"again is a leak, RSS that stays put is memory kept for reuse.\n\n"]
    table = [[r["pooler"], f"{r['logged_in']}/{r['clients']}", str(r["failures"]),
              fmt(r["logins_per_s"], 0), fmt(r["login_cpu_ms_per_1k"], 1),
              fmt((r["rss_before_kb"] or 0) / 1024, 1), fmt((r["rss_with_kb"] or 0) / 1024, 1),
              fmt(r["per_client_kb"], 2), fmt((r["rss_after_kb"] or 0) / 1024, 1),
              mb(r.get("round2_rss_with_kb")), mb(r.get("round2_rss_after_kb")),
              "yes" if r["alive_after"] else "**no**"] for r in results]
    out.append(md_table(["pooler", "logged in", "failures", "logins/s",
                         "pooler CPU ms / 1k logins", "RSS before MB", "RSS with clients MB",
                         "RSS per client kB", "RSS after they left MB",
                         "2nd round: RSS with MB", "2nd round: after MB", "alive"], table,
                        right_from=1))
    by = {r["pooler"]: r for r in results}
    if "sluice" in by and "pgbouncer" in by:
        out.append(f"\nsluice ÷ PgBouncer RSS per client: "
                   f"{ratio(by['sluice']['per_client_kb'], by['pgbouncer']['per_client_kb'])}.\n")
    failed = [r for r in results if r["failures"]]
    lines = [f"- {r['pooler']}: {r['failures']} failures; first: {r['first_failure']}"
             for r in failed] + [f"- {n}" for n in bench.notes]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["bench", "idle", "connect"])
    parser.add_argument("--work", required=True, type=Path,
                        help="an empty directory with a pids/ subdirectory (run.sh makes it)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    settings = Settings.from_env()
    bench = Bench(args.work, settings, args.mode)
    try:
        bench.setup(load=args.mode != "idle")
        if args.mode == "bench":
            bench.run_bench()
            report, stem, csv_rows = bench_report(bench), "latest", rows_as_dicts(bench.rows)
        elif args.mode == "connect":
            bench.run_connect()
            report, stem, csv_rows = connect_report(bench), "latest-connect", rows_as_dicts(
                bench.rows)
        else:
            results = bench.run_idle()
            report, stem, csv_rows = idle_report(bench, results), "latest-idle", results
    finally:
        bench.teardown()
    write_results(settings, stem, report, csv_rows)
    print(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
