"""Integration-test harness: a throwaway PostgreSQL cluster, the sluice daemon,
and bounded helpers to drive both. Standard library only; run with /usr/bin/python3.

Rules this module keeps, so a broken daemon fails a test instead of hanging it:
- every wait has a deadline (run() always takes a timeout; sockets have timeouts);
- every process it starts lives in its own process group, and is killed with
  that group at exit, on SIGTERM, and (through a reaper process that notices
  this process dying) even after SIGKILL;
- every temporary directory is removed the same way (set SLUICE_TEST_KEEP=1 to
  keep them for a post-mortem; their paths are printed).

Environment:
  SLUICE_BIN          the daemon (CMake passes $<TARGET_FILE:sluice>); default build/sluice
  SOURCE_DIR          the repository root (CMake passes it); default: two levels up
  PG_BIN              PostgreSQL server binaries; default /usr/lib/postgresql/15/bin
  SLUICE_TEST_TMPDIR  where temporary directories go; default /tmp (postgres must reach it)
  SLUICE_TEST_KEEP    keep temporary directories
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import re
import secrets
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
from pathlib import Path

import pgwire

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("SOURCE_DIR") or HERE.parent.parent)
# Absolute: the daemon is started from its own temporary directory, where the README's
# `SLUICE_BIN=build/sluice` would name nothing.
SLUICE_BIN = os.path.abspath(os.environ.get("SLUICE_BIN") or SOURCE_DIR / "build" / "sluice")
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
TMP_BASE = os.environ.get("SLUICE_TEST_TMPDIR", "/tmp")
KEEP = bool(os.environ.get("SLUICE_TEST_KEEP"))
HOST = "127.0.0.1"
IS_ROOT = os.geteuid() == 0


def log(msg: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Cleanup: atexit, SIGTERM, and a reaper for when this process is SIGKILLed.
# ---------------------------------------------------------------------------

_REAPER_CODE = r"""
import os, shutil, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, dirs = set(), set()
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    if op == "group": groups.add(int(arg))
    elif op == "ungroup": groups.discard(int(arg))
    elif op == "dir": dirs.add(arg)
    elif op == "undir": dirs.discard(arg)
# EOF: the test process has exited, however it died.
for g in groups:
    try: os.killpg(g, signal.SIGKILL)
    except OSError: pass
for d in dirs: shutil.rmtree(d, ignore_errors=True)
"""


class _Reaper:
    """A detached helper that holds the read end of a pipe. When the test
    process dies (even by SIGKILL) the pipe closes, and the helper kills the
    process groups and removes the directories still registered with it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _send(self, line: str) -> None:
        if self._proc is None:
            # Through a shell that exits at once: the reaper is then no
            # descendant of this process, so a test runner that kills the
            # whole process tree on timeout does not kill it too.
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", 'exec 3<&0; /usr/bin/python3 -c "$0" <&3 3<&- &', _REAPER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                text=True,
            )
            self._proc.wait(10)
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def add_group(self, pgid: int) -> None:
        self._send(f"group {pgid}")

    def remove_group(self, pgid: int) -> None:
        self._send(f"ungroup {pgid}")

    def add_dir(self, path: str) -> None:
        if not KEEP:
            self._send(f"dir {path}")

    def remove_dir(self, path: str) -> None:
        self._send(f"undir {path}")

    def finish(self) -> None:
        """Normal exit: everything is cleaned up already; let the reaper go."""
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass


_reaper = _Reaper()
_resources: list = []  # objects with .destroy(), destroyed newest first at exit


def _destroy_all() -> None:
    while _resources:
        res = _resources.pop()
        try:
            res.destroy()
        except Exception as exc:  # keep cleaning up the rest
            log(f"cleanup of {res!r} failed: {exc}")


def _at_exit() -> None:
    _destroy_all()
    _reaper.finish()


atexit.register(_at_exit)


def _on_sigterm(signum, frame):  # ctest's timeout sends SIGTERM first on some setups
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_sigterm)


def make_temp_dir(prefix: str) -> Path:
    """A fresh directory that the postgres user can use, removed at exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=TMP_BASE))
    _reaper.add_dir(str(path))
    if IS_ROOT:
        pg = pwd.getpwnam("postgres")
        os.chown(path, pg.pw_uid, pg.pw_gid)
    path.chmod(0o755)
    return path


def remove_temp_dir(path: Path) -> None:
    if KEEP:
        log(f"keeping {path}")
        return
    shutil.rmtree(path, ignore_errors=True)
    _reaper.remove_dir(str(path))


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------
# Processes and ports
# ---------------------------------------------------------------------------


class CommandTimeout(Exception):
    def __init__(self, cmd, timeout, stdout, stderr):
        self.cmd, self.timeout, self.stdout, self.stderr = cmd, timeout, stdout, stderr
        super().__init__(
            f"command timed out after {timeout}s and was killed: {shlex.join(map(str, cmd))}\n"
            f"--- stdout ---\n{stdout[-2000:]}\n--- stderr ---\n{stderr[-2000:]}"
        )


class CommandFailed(Exception):
    def __init__(self, result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(
            f"command exited {result.returncode}: {shlex.join(map(str, result.args))}\n"
            f"--- stdout ---\n{result.stdout[-2000:]}\n--- stderr ---\n{result.stderr[-2000:]}"
        )


def _as_postgres_kwargs() -> dict:
    """Popen arguments that drop root to the postgres user (initdb and postgres
    refuse to run as root). Equivalent to `runuser -u postgres --`, but keeps
    the real PID so the process group can be signalled."""
    if not IS_ROOT:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def run(
    cmd,
    timeout: float,
    *,
    input: str | None = None,
    env: dict | None = None,
    cwd=None,
    as_postgres: bool = False,
    check: bool = False,
    quiet: bool = False,
) -> subprocess.CompletedProcess:
    """Runs cmd to completion in its own process group. On timeout the whole
    group is killed and CommandTimeout raised, so nothing outlives the call."""
    if not timeout or timeout <= 0:
        raise ValueError("run() needs a positive timeout")
    cmd = [str(c) for c in cmd]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd if cwd is not None else (TMP_BASE if as_postgres else None),
        start_new_session=True,
        **(_as_postgres_kwargs() if as_postgres else {}),
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild in another group holds the pipes
            proc.kill()
            out, err = "", ""
        log(f"$ {shlex.join(cmd)}  -> TIMEOUT after {timeout}s")
        raise CommandTimeout(cmd, timeout, out or "", err or "") from None
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if not quiet:
        log(f"$ {shlex.join(cmd)}  -> rc={proc.returncode} in {time.monotonic() - started:.2f}s")
    if check and proc.returncode != 0:
        raise CommandFailed(result)
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago. Callers that bind it
    later retry on a collision (PgCluster does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls predicate() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_until(proc: subprocess.Popen, marker: bytes, timeout: float) -> bytes:
    """What a child process wrote to its stdout pipe until `marker` appeared, it closed
    the pipe, or `timeout` seconds passed; never blocks longer than that."""
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while marker not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data


def client_env(password: str | None = None, **extra: str) -> dict:
    """The environment for libpq clients: the caller's, minus every PG* variable
    (so a developer's PGHOST or PGSSLMODE cannot change what a test does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    if password is not None:
        env["PGPASSWORD"] = password
    env.update(extra)
    return env


def pg_url(user: str, password: str | None, port: int, database: str = "postgres",
           host: str = HOST) -> str:
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    auth = quote(user) + (":" + quote(password) if password is not None else "")
    return f"postgresql://{auth}@{host}:{port}/{quote(database)}"


def psql(port: int, sql: str, *, user: str, password: str | None, database: str = "postgres",
         timeout: float = 30, check: bool = True, extra_args=(), host: str = HOST,
         env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Runs SQL (fed on stdin) through psql: unaligned, tuples only, stop on the
    first error. Returns the CompletedProcess; .stdout holds the rows."""
    cmd = [
        "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
        "-h", host, "-p", str(port), "-U", user, "-d", database, "-f", "-", *extra_args,
    ]
    return run(cmd, timeout, input=sql, env=client_env(password, **(env_extra or {})),
               check=check)


def pgbench(port: int, args, *, user: str, password: str, database: str = "postgres",
            timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = ["pgbench", "-h", HOST, "-p", str(port), "-U", user, *args, database]
    return run(cmd, timeout, env=client_env(password))


def parse_pgbench(output: str) -> dict:
    """Picks the summary numbers out of pgbench's report."""
    stats = {}
    patterns = {
        "processed": r"number of transactions actually processed: (\d+)",
        "failed": r"number of failed transactions: (\d+)",
        "tps": r"tps = ([0-9.]+)",
        "clients": r"number of clients: (\d+)",
        "mode": r"query mode: (\w+)",
    }
    for key, pattern in patterns.items():
        m = re.search(pattern, output)
        if m:
            stats[key] = m.group(1) if key == "mode" else float(m.group(1))
    return stats


def complete_message(data: bytes) -> bool:
    """data starts with one whole backend message (type byte, length, body)."""
    return len(data) >= 5 and len(data) >= 1 + int.from_bytes(data[1:5], "big")


def startup_exchange(port: int, payload: bytes, *, half_close: bool, deadline: float = 5.0,
                     host: str = HOST) -> bytes:
    """Sends payload as the first bytes of a fresh connection and returns what
    came back until the peer closed, or until a complete ErrorResponse arrived.
    Raises TimeoutError if neither happens within `deadline` seconds."""
    end = time.monotonic() + deadline
    received = b""
    with socket.create_connection((host, port), timeout=deadline) as s:
        try:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed before reading it all: that is an answer too
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer and no close within {deadline}s after "
                                   f"{payload[:16].hex()}...; got {received[:32]!r}")
            s.settimeout(remaining)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return received
            except socket.timeout:
                continue
            if not chunk:
                return received
            received += chunk
            if received[:1] == b"E" and complete_message(received):
                return received


def random_password(tag: str) -> str:
    """Distinctive, so a leak into a log is unambiguous."""
    return f"{tag}-{secrets.token_hex(12)}"


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


class PgCluster:
    """A throwaway PostgreSQL cluster: initdb into a temporary directory as the
    postgres user, SCRAM authentication everywhere, listening on a free port on
    127.0.0.1 only, with its unix socket inside the temporary directory.

        with PgCluster() as pg:
            pg.create_role("app", "secret", createdb=True)
            print(pg.psql("SELECT 1"))
    """

    def __init__(self, *, hba_rules: list[str] | None = None, settings: dict | None = None,
                 superuser_password: str | None = None, start: bool = True):
        self.superuser = "postgres"
        self.superuser_password = superuser_password or random_password("pgsuper")
        self.hba_rules = list(hba_rules or [])
        self.settings = dict(settings or {})
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.base = make_temp_dir("sluice-pg-")
        self.datadir = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        _resources.append(self)
        self._initdb()
        if start:
            self.start()

    def __repr__(self) -> str:
        return f"PgCluster(port={self.port}, dir={self.base})"

    def _chown_to_postgres(self, path: Path) -> None:
        if IS_ROOT:
            pg = pwd.getpwnam("postgres")
            os.chown(path, pg.pw_uid, pg.pw_gid)

    def _initdb(self) -> None:
        self.sockdir.mkdir(mode=0o700)
        self._chown_to_postgres(self.sockdir)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        self._chown_to_postgres(pwfile)
        run(
            [PG_BIN / "initdb", "-D", self.datadir, "-U", self.superuser,
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
             "--no-sync", "--no-instructions"],
            timeout=120, as_postgres=True, check=True,
        )
        pwfile.unlink()
        hba = [*self.hba_rules,
               "local all all scram-sha-256",
               "host all all 127.0.0.1/32 scram-sha-256"]
        (self.datadir / "pg_hba.conf").write_text(
            "# written by tests/integration/harness.py\n" + "\n".join(hba) + "\n")
        conf = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockdir),
            "password_encryption": "scram-sha-256",
            # Throwaway data: trade durability for speed.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
            "shared_buffers": "32MB",
            "log_connections": "on",
            "log_disconnections": "on",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            **{k: str(v) for k, v in self.settings.items()},
        }
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\n# written by tests/integration/harness.py\n")
            for key, value in conf.items():
                f.write(f"{key} = '{value}'\n")

    def start(self, timeout: float = 30) -> None:
        """Starts the postmaster and waits until it accepts connections. A port
        taken since free_port() picked it is retried on a new port."""
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready(timeout)
                return
            except _PortTaken:
                log(f"port {self.port} was taken; retrying on another (attempt {attempt + 1})")
                self.port = free_port()
        raise RuntimeError(f"PostgreSQL could not bind a port; log:\n{self.log_tail()}")

    def _spawn(self) -> None:
        logf = open(self.logfile, "a")
        try:
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.datadir), "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=str(self.base), start_new_session=True, **_as_postgres_kwargs(),
            )
        finally:
            logf.close()
        _reaper.add_group(self.proc.pid)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _reaper.remove_group(self.proc.pid)
                text = self.log_tail(30)
                if "could not bind" in text or "Address already in use" in text:
                    raise _PortTaken()
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; log:\n{text}")
            r = run([PG_BIN / "pg_isready", "-q", "-h", HOST, "-p", self.port, "-t", "1"],
                    timeout=10, env=client_env(), quiet=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        self._kill()
        raise TimeoutError(f"postgres not ready after {timeout}s; log:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT); immediate (SIGQUIT), then SIGKILL on the group,
        if it does not finish in time."""
        if not self.running():
            return
        assert self.proc is not None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5)):
            try:
                self.proc.send_signal(sig)
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                log(f"postgres ignored {sig.name} for {wait}s")
        self._kill()

    def _kill(self) -> None:
        if self.proc is None:
            return
        _kill_group(self.proc.pid)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log(f"postgres {self.proc.pid} survived SIGKILL for 10s")
        _reaper.remove_group(self.proc.pid)

    def crash(self) -> None:
        """SIGKILL the whole cluster, as a machine failure would."""
        self._kill()

    def restart(self, timeout: float = 30) -> None:
        port = self.port
        self.stop()
        self._spawn()
        self._wait_ready(timeout)
        assert self.port == port

    def destroy(self) -> None:
        self.stop()
        remove_temp_dir(self.base)

    def __enter__(self) -> "PgCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
        if self in _resources:
            _resources.remove(self)

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- SQL -----------------------------------------------------------------

    def psql(self, sql: str, *, database: str = "postgres", user: str | None = None,
             password: str | None = None, timeout: float = 60, check: bool = True) -> str:
        """Runs SQL directly against the cluster (as the superuser unless told
        otherwise) and returns psql's unaligned, tuples-only output, stripped."""
        if user is None:
            user, password = self.superuser, self.superuser_password
        return psql(self.port, sql, user=user, password=password, database=database,
                    timeout=timeout, check=check).stdout.strip()

    def connect(self, user: str | None = None, password: str | None = None,
                database: str = "postgres", **kwargs) -> pgwire.Connection:
        if user is None:
            user, password = self.superuser, self.superuser_password
        return pgwire.connect(HOST, self.port, user, password, database, **kwargs)

    def create_role(self, name: str, password: str | None, *, superuser: bool = False,
                    createdb: bool = False, options: str = "") -> None:
        attrs = ["LOGIN"]
        if superuser:
            attrs.append("SUPERUSER")
        if createdb:
            attrs.append("CREATEDB")
        if password is not None:
            attrs.append(f"PASSWORD {sql_literal(password)}")
        self.psql(f"CREATE ROLE {sql_ident(name)} {' '.join(attrs)} {options};")

    def create_database(self, name: str, owner: str | None = None) -> None:
        owner_clause = f" OWNER {sql_ident(owner)}" if owner else ""
        self.psql(f"CREATE DATABASE {sql_ident(name)}{owner_clause};")

    def grant_schema(self, role: str, database: str = "postgres") -> None:
        """PostgreSQL 15 no longer lets every role create in schema public."""
        self.psql(f"GRANT ALL ON SCHEMA public TO {sql_ident(role)};", database=database)

    def url(self, user: str, password: str | None, database: str = "postgres") -> str:
        return pg_url(user, password, self.port, database)


class _PortTaken(Exception):
    pass


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# ---------------------------------------------------------------------------
# sluice
# ---------------------------------------------------------------------------


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (strings double-quoted, so
    no value is ever reinterpreted). Each key is on its own line, which keeps
    line numbers predictable for the --check tests."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 1)
                out.append(f"{pad}- {body.lstrip()}")
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}\n")
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"


def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def sluice_config(*, listen_port: int, upstream_url: str, users: list[dict],
                  auth: str = "scram-sha-256", pool_mode: str = "session",
                  pool_size: int = 10, log_level: str = "debug", database: str = "postgres",
                  **extra) -> dict:
    """The one place that knows sluice's config schema (etc/sluice.yaml documents it).

    One database, `database`, served from upstream_url (a libpq URL whose
    credentials sluice logs in to the upstream with).
    users: [{"name": ..., "password": ...}] where password is plain text, a
    SCRAM verifier ("SCRAM-SHA-256$...") or an md5 hash ("md5...").
    auth: the method clients must use: scram-sha-256, md5 or plain.
    extra: more top-level keys; a dict merges into a section of the same name.
    """
    config = {
        "listen": {"host": HOST, "port": listen_port},
        "auth": auth,
        "log_level": log_level,
        "pool": {"mode": pool_mode, "size": pool_size},
        "databases": {database: {"url": upstream_url}},
        "users": users,
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


class SluiceDied(Exception):
    pass


# What the sanitizer runtimes print on the daemon's stderr (its log here) in the ASan+UBSan and
# TSan builds (scripts/test.sh: build-asan, build-tsan). Any of them fails the test script
# (main() below), wherever in the run it was printed: a sanitizer report is a bug even when
# every assertion passed.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "ThreadSanitizer: reported",
    ": runtime error: ",  # UBSan
    "SUMMARY: UndefinedBehaviorSanitizer",
)


def sanitizer_report(text: str) -> str | None:
    """The log from the first sanitizer report on (at most 6000 characters), or None."""
    starts = [i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0]
    if not starts:
        return None
    start = text.rfind("\n", 0, min(starts)) + 1
    return text[start:start + 6000]


class Sluice:
    """The daemon under test, run in the foreground with its log (stdout and
    stderr) captured to a file.

        s = Sluice(sluice_config(listen_port=port, ...), port=port)
        s.start()
        ...
        s.stop()           # SIGTERM, then SIGKILL after a deadline
        s.log_text()
    """

    def __init__(self, config: dict | str, *, port: int, binary: str | None = None,
                 env: dict | None = None):
        self.binary = binary or SLUICE_BIN
        self.port = port
        self.dir = make_temp_dir("sluice-d-")
        self.config_path = self.dir / "sluice.yaml"
        self.config_path.write_text(config if isinstance(config, str) else to_yaml(config))
        self.logfile = self.dir / "sluice.log"
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        _resources.append(self)

    def __repr__(self) -> str:
        return f"Sluice(port={self.port}, dir={self.dir})"

    def start(self, timeout: float = 15) -> "Sluice":
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"sluice binary not found or not executable: {self.binary}")
        logf = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=str(self.dir), start_new_session=True,
                env={**os.environ, **(self.env or {})},
            )
        finally:
            logf.close()
        _reaper.add_group(self.proc.pid)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                _reaper.remove_group(self.proc.pid)
                raise SluiceDied(
                    f"sluice exited with {self.returncode} before listening on {self.port}; "
                    f"log:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self._kill()
                raise TimeoutError(
                    f"sluice did not accept connections on {self.port} within {timeout}s; "
                    f"log:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL on the process group after `timeout` seconds.
        Returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"sluice ignored SIGTERM for {timeout}s; killing it")
        self._kill()
        return self.returncode

    def _kill(self) -> None:
        assert self.proc is not None
        _kill_group(self.proc.pid)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log(f"sluice {self.proc.pid} survived SIGKILL for 10s")
        self.returncode = self.proc.returncode
        _reaper.remove_group(self.proc.pid)

    def destroy(self) -> None:
        self.stop()
        remove_temp_dir(self.dir)

    def __enter__(self) -> "Sluice":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_report(self) -> str | None:
        return sanitizer_report(self.log_text())

    def url(self, user: str, password: str | None, database: str = "postgres") -> str:
        return pg_url(user, password, self.port, database)

    def psql(self, sql: str, *, user: str, password: str | None, database: str = "postgres",
             timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return psql(self.port, sql, user=user, password=password, database=database,
                    timeout=timeout, check=check)

    def connect(self, user: str, password: str | None, database: str = "postgres",
                **kwargs) -> pgwire.Connection:
        return pgwire.connect(HOST, self.port, user, password, database, **kwargs)


def sluice_cli(*args, timeout: float = 15, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the sluice binary with CLI arguments (--check, --version, ...)."""
    if not os.access(SLUICE_BIN, os.X_OK):
        raise FileNotFoundError(f"sluice binary not found or not executable: {SLUICE_BIN}")
    return run([SLUICE_BIN, *args], timeout,
               env={**os.environ, **(env or {})} if env else None)


# ---------------------------------------------------------------------------
# unittest glue
# ---------------------------------------------------------------------------


class ProxyTestCase(unittest.TestCase):
    """Base class for tests of sluice in front of a real PostgreSQL.

    setUpClass starts one cluster per test class, with an unprivileged role that
    sluice logs in to the upstream as (upstream_user / upstream_password), and
    picks the credentials clients use to log in to sluice (client_user /
    client_password: same name, different password, so a test can tell them
    apart in a log). launch_sluice() starts a daemon in front of the cluster.
    """

    upstream_user = "app"
    client_user = "app"
    pg: PgCluster

    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()
        cls.upstream_password = random_password("upstream")
        cls.client_password = random_password("client")
        cls.pg.create_role(cls.upstream_user, cls.upstream_password)
        cls.pg.grant_schema(cls.upstream_user)

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()  # the directory (and its log) stays until the process exits

    @classmethod
    def client_users(cls) -> list[dict]:
        return [{"name": cls.client_user, "password": cls.client_password}]

    @classmethod
    def launch_sluice(cls, *, users: list[dict] | None = None, upstream_url: str | None = None,
                      **config) -> Sluice:
        """Starts sluice (session pool, SCRAM for clients unless told otherwise)
        and waits until it accepts connections. A listen port taken since it
        was picked is retried on another."""
        for _ in range(3):
            port = free_port()
            cfg = sluice_config(
                listen_port=port,
                upstream_url=upstream_url or cls.pg.url(cls.upstream_user, cls.upstream_password),
                users=users if users is not None else cls.client_users(),
                **config)
            sluice = Sluice(cfg, port=port)
            try:
                return sluice.start()
            except SluiceDied as exc:
                if "in use" not in str(exc).lower():
                    raise
                log(f"sluice could not bind {port}; retrying on another port")
        raise RuntimeError("sluice could not bind a port three times")

    def client_psql(self, sluice: Sluice, sql: str, **kwargs) -> subprocess.CompletedProcess:
        """psql through sluice as the client user."""
        kwargs.setdefault("user", self.client_user)
        kwargs.setdefault("password", self.client_password)
        return sluice.psql(sql, **kwargs)

    def client_psycopg2(self, sluice: Sluice):
        """An autocommit psycopg2 connection through sluice as the client user, closed when the
        test ends. (psycopg2 is imported here: most tests use only psql and pgwire.)"""
        import psycopg2
        conn = psycopg2.connect(host=HOST, port=sluice.port, user=self.client_user,
                                password=self.client_password, dbname="postgres",
                                connect_timeout=5)
        conn.autocommit = True
        self.addCleanup(conn.close)
        return conn

    def assert_serving(self, sluice: Sluice) -> None:
        """The daemon is alive and a fresh client gets an answer."""
        self.assertTrue(sluice.alive(), f"sluice died; log:\n{sluice.log_tail()}")
        r = self.client_psql(sluice, "SELECT 41 + 1", check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "42"), r.stderr)



def _dump_logs() -> None:
    for res in list(_resources):
        text = res.log_tail(60) if hasattr(res, "log_tail") else ""
        print(f"\n===== last lines of {res!r} log =====\n{text}\n", file=sys.stderr)


def _sanitizer_reports() -> list[str]:
    """Stops every daemon still running (a leak report comes only at exit), then returns the
    sanitizer reports in their logs."""
    reports = []
    for res in list(_resources):
        if isinstance(res, Sluice):
            res.stop()
            report = res.sanitizer_report()
            if report:
                reports.append(f"===== sanitizer report in {res!r} log =====\n{report}")
    return reports


def main() -> None:
    """unittest.main() that prints the PostgreSQL and sluice logs when a test
    failed (ctest --output-on-failure shows them), fails on any sanitizer report
    in a daemon's log, then cleans up."""
    program = unittest.main(exit=False, verbosity=2)
    ok = program.result.wasSuccessful()
    reports = _sanitizer_reports()
    for report in reports:
        print(f"\n{report}\n", file=sys.stderr)
    if reports:
        print(f"FAILED: {len(reports)} sluice log(s) hold a sanitizer report", file=sys.stderr)
    ok = ok and not reports
    if not ok:
        _dump_logs()
    _destroy_all()
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------------------
# Watching the upstream side: which backends sluice holds open on PostgreSQL.
# ---------------------------------------------------------------------------


def backend_pids(conn: pgwire.Connection, user: str) -> list[int]:
    """PIDs of the client backends logged in as `user`, read from
    pg_stat_activity over `conn` (a direct connection to PostgreSQL)."""
    rows = conn.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                      f"AND usename = {sql_literal(user)} ORDER BY pid")
    return [int(r[0]) for r in rows]


class BackendSampler:
    """Counts `user`'s backends on PostgreSQL every `interval` seconds in a
    background thread, over its own direct superuser connection.

        with BackendSampler(pg, "app") as sampler:
            ...
        sampler.max_seen, sampler.samples
    """

    def __init__(self, pg: "PgCluster", user: str, interval: float = 0.1):
        import threading
        self.pg, self.user, self.interval = pg, user, interval
        self.samples: list[int] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.pg.connect() as conn:
                while not self._stop.is_set():
                    self.samples.append(len(backend_pids(conn, self.user)))
                    self._stop.wait(self.interval)
        except BaseException as exc:  # reported by the test through .error
            self.error = exc

    @property
    def max_seen(self) -> int:
        return max(self.samples, default=0)

    def __enter__(self) -> "BackendSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


class PgbenchThroughSluice(ProxyTestCase):
    """A sluice (launched with `sluice_config`) whose pgbench tables were initialised
    through it, and the count of TPC-B transactions committed over all of a class's
    runs, so that the books can be checked after each run."""

    sluice_config: dict = {}
    init_timeout = 180

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sluice = cls.launch_sluice(**cls.sluice_config)
        cls.init = pgbench(cls.sluice.port, ["-i", "-s", "1", "-q"], user=cls.client_user,
                           password=cls.client_password, timeout=cls.init_timeout)
        cls.committed = 0  # transactions that wrote a history row, over all runs

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        super().tearDownClass()

    def setUp(self):
        self.assertEqual(self.init.returncode, 0,
                         f"pgbench -i through sluice failed:\n{self.init.stdout}\n{self.init.stderr}")

    def assert_books_balance(self):
        assert_pgbench_books_balance(self, self.pg.psql(PGBENCH_BOOKS_SQL), type(self).committed)


# The tpcb invariant after pgbench runs: every balance moved by a transaction shows up in
# accounts, tellers, branches and the history alike, and history has one row per commit.
PGBENCH_BOOKS_SQL = """
    SELECT (SELECT sum(abalance) FROM pgbench_accounts),
           (SELECT sum(tbalance) FROM pgbench_tellers),
           (SELECT sum(bbalance) FROM pgbench_branches),
           (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
           (SELECT count(*) FROM pgbench_history)
"""


def assert_pgbench_books_balance(test: unittest.TestCase, row: str, committed: int) -> None:
    """`row` is PGBENCH_BOOKS_SQL's result as psql prints it (a|b|c|d|e)."""
    accounts, tellers, branches, deltas, history_rows = map(int, row.split("|"))
    test.assertEqual(accounts, tellers, row)
    test.assertEqual(tellers, branches, row)
    test.assertEqual(branches, deltas, row)
    test.assertEqual(history_rows, committed, row)
