"""A throwaway PgBouncer 1.25 in front of a test cluster, for the tests that compare sluice's
admin console with PgBouncer's own (not with a copy of its columns kept in a test).

The binary is the one tests/bench builds from ../shared/anchors/pgbouncer-1.25.2.tar.gz
(tests/bench/run.sh, or ../shared/anchors/build.sh OUTDIR), found as $SLUICE_PGBOUNCER_125,
else $BENCH_PEERS_DIR/pgbouncer-1.25.2/build/pgbouncer (default /var/tmp/sluice-peers). When
it is missing, build_pgbouncer() builds it there from the snapshot the way build.sh does
(meson and ninja, 2 jobs; scripts/deps.sh installs what that needs). Loopback only; trust authentication, since only the console's shape
is compared."""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import harness

PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR") or "/var/tmp/sluice-peers")


def pgbouncer_binary() -> str | None:
    explicit = os.environ.get("SLUICE_PGBOUNCER_125")
    candidate = Path(explicit) if explicit else PEERS_DIR / "pgbouncer-1.25.2" / "build" / "pgbouncer"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def anchors_tarball() -> Path | None:
    source = Path(os.environ.get("SOURCE_DIR") or Path(__file__).resolve().parents[2])
    for anchors in (os.environ.get("SLUICE_ANCHORS_DIR"), source.parent / "shared" / "anchors",
                    "/work/shared/anchors"):
        if anchors and (Path(anchors) / "pgbouncer-1.25.2.tar.gz").is_file():
            return Path(anchors) / "pgbouncer-1.25.2.tar.gz"
    return None


def build_pgbouncer() -> tuple[str | None, str]:
    """The binary, building it first if needed; (None, why) when it cannot be built."""
    exe = pgbouncer_binary()
    if exe:
        return exe, ""
    tarball = anchors_tarball()
    if tarball is None:
        return None, "no pgbouncer-1.25.2.tar.gz (set SLUICE_ANCHORS_DIR to ../shared/anchors)"
    if not (shutil.which("meson") and shutil.which("ninja")):
        return None, "meson or ninja is missing (scripts/deps.sh installs them)"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    # Built aside, then moved into place: a half-built tree is never taken for a built one.
    work = Path(tempfile.mkdtemp(prefix="pgbouncer-build-", dir=PEERS_DIR))
    try:
        with tarfile.open(tarball) as archive:
            # Python 3.11.4+ asks for a filter; the snapshot is trusted, so "tar" (keep modes).
            archive.extractall(work, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
        tree = work / "pgbouncer-1.25.2"
        for cmd in (["meson", "setup", "build", "-Dbuildtype=release"],
                    ["ninja", "-C", "build", "-j2", "pgbouncer"]):
            r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=240)
            if r.returncode != 0:
                return None, f"{' '.join(cmd)} failed: {(r.stdout + r.stderr)[-1500:]}"
        target = PEERS_DIR / "pgbouncer-1.25.2"
        if not pgbouncer_binary():
            shutil.rmtree(target, ignore_errors=True)
            tree.rename(target)
        return pgbouncer_binary(), "the build left no binary"
    except subprocess.TimeoutExpired as e:
        return None, f"building PgBouncer took too long: {e}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


class PgBouncer:
    def __init__(self, exe: str, pg: harness.PgCluster, *, admin_user: str):
        self.exe, self.pg, self.admin_user = exe, pg, admin_user
        self.port = harness.free_port()
        self.dir = harness.make_temp_dir("pgbouncer-peer")
        self.log_path = self.dir / "pgbouncer.log"
        (self.dir / "userlist.txt").write_text(f'"{admin_user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"postgres = host={harness.HOST} port={pg.port} dbname=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = {harness.HOST}\nlisten_port = {self.port}\n"
            f"unix_socket_dir =\nauth_type = trust\nauth_file = {self.dir}/userlist.txt\n"
            f"admin_users = {admin_user}\nstats_users = {admin_user}\n"
            "pool_mode = transaction\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PgBouncer":
        # PgBouncer refuses to run as root, as PostgreSQL does: the same drop as the cluster's.
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.exe, str(self.dir / "pgbouncer.ini")],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, **harness._as_postgres_kwargs())
        harness._reaper.add_group(self.proc.pid)
        harness.wait_until(lambda: harness.port_accepts(self.port) or self.proc.poll() is not None,
                           timeout=30, what="PgBouncer to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"PgBouncer exited: {self.log_tail()}")
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            harness._reaper.remove_group(self.proc.pid)
        harness.remove_temp_dir(self.dir)
