"""The Debian package, installed for real: dpkg -i, then its files, conffile, system user and
unit on the machine, the installed daemon run as the `sluice` user in front of a throwaway
PostgreSQL on loopback, and dpkg --purge, after which nothing of it is left.
(tests/packaging/test_deb_contents.py checks the package itself without installing it.)

It changes the machine (a package, a system user, for a minute), so it needs root on Debian 12,
exits 77 (skipped) otherwise, and is meant for a CI machine or a throwaway one. It refuses to
run when a sluice package is already installed, so an admin's own install is never replaced,
and removes the `sluice` user at the end only when this test's install created it.

  packaging/build-deb.sh && /usr/bin/python3 tests/packaging/test_deb_install.py
  SLUICE_DEB_DIR=/tmp/debs ...       # the directory build-deb.sh wrote to (OUT_DIR)
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import deb_artifacts  # noqa: E402
import harness  # noqa: E402
from harness import PgCluster, free_port, log, make_temp_dir, port_accepts, psql, run  # noqa: E402

SKIP = 77  # CTest's SKIP_RETURN_CODE for this test

# What the package must install, and what purging it must take away again.
EXPECTED_FILES = [
    "/usr/sbin/sluice",
    "/etc/sluice/sluice.yaml",
    "/lib/systemd/system/sluice.service",
    "/usr/share/man/man8/sluice.8.gz",
    "/usr/share/man/man5/sluice.yaml.5.gz",
    "/usr/share/doc/sluice/copyright",
]


def installed_version(package: str) -> str | None:
    r = run(["dpkg-query", "-W", "-f=${Status}|${Version}", package], 30, quiet=True)
    if r.returncode != 0:
        return None
    status, _, version = r.stdout.partition("|")
    return version if status.endswith(" installed") else None


class DebPackage(unittest.TestCase):
    deb: Path
    user_existed: bool

    @classmethod
    def setUpClass(cls):
        if installed_version("sluice") is not None:
            raise RuntimeError("a sluice package is installed already; this test installs and "
                               "purges its own, so remove that one first (dpkg --purge sluice)")
        cls.user_existed = cls._user_exists()
        cls.deb = deb_artifacts.the_deb()

    @classmethod
    def tearDownClass(cls):
        cls._purge()

    @staticmethod
    def _user_exists() -> bool:
        try:
            pwd.getpwnam("sluice")
            return True
        except KeyError:
            return False

    @classmethod
    def _purge(cls):
        if installed_version("sluice") is not None:
            run(["dpkg", "--purge", "sluice"], 300)
        if not cls.user_existed and cls._user_exists():
            run(["deluser", "--system", "--quiet", "sluice"], 60)
            run(["delgroup", "--system", "--quiet", "--only-if-empty", "sluice"], 60)

    # The steps depend on each other, so they run as one test, in order.
    def test_package(self):
        self.install()
        self.check_files_and_user()
        self.check_config()
        self.check_unit()
        self.run_as_sluice_user()
        self.purge_leaves_nothing()

    def install(self):
        r = run(["dpkg", "-i", self.deb], 300, env={**os.environ, "DEBIAN_FRONTEND":
                                                    "noninteractive"})
        self.assertEqual(r.returncode, 0, f"dpkg -i failed:\n{r.stdout}\n{r.stderr}")
        self.assertEqual(installed_version("sluice") is not None, True)

    def check_files_and_user(self):
        for path in EXPECTED_FILES:
            self.assertTrue(os.path.exists(path), f"{path} was not installed")
        self.assertTrue(os.access("/usr/sbin/sluice", os.X_OK))
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "sluice"], 30).stdout
        self.assertIn("/etc/sluice/sluice.yaml", conffiles)
        user = pwd.getpwnam("sluice")
        self.assertLess(user.pw_uid, 1000, "sluice is not a system user")
        self.assertIn(user.pw_shell, ("/usr/sbin/nologin", "/bin/false"))
        self.assertFalse(os.path.exists(user.pw_dir) and user.pw_dir != "/nonexistent")
        # man finds both pages where the package put them (test_deb_contents renders them).
        if shutil.which("man"):
            for section, page in (("8", "sluice"), ("5", "sluice.yaml")):
                r = run(["man", "-w", section, page], 60)
                self.assertEqual(r.stdout.strip(), f"/usr/share/man/man{section}/{page}."
                                 f"{section}.gz", r.stderr)
        r = run(["/usr/sbin/sluice", "--version"], 30)
        self.assertEqual(r.stdout.strip(), f"sluice {deb_artifacts.cmake_version()}")

    def check_config(self):
        config = Path("/etc/sluice/sluice.yaml").read_text()
        self.assertNotRegex(config, r"(?i)password:\s*[^\s\"#$]", "a plain password is shipped")
        # As root and as the user the unit runs it as, with an empty environment.
        for cmd in (["/usr/sbin/sluice", "--check", "-c", "/etc/sluice/sluice.yaml"],
                    ["runuser", "-u", "sluice", "--", "/usr/sbin/sluice", "--check", "-c",
                     "/etc/sluice/sluice.yaml"]):
            r = run(cmd, 30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            self.assertEqual(r.returncode, 0, f"{cmd}: {r.stdout}{r.stderr}")
            self.assertIn("configuration is valid", r.stdout)

    def check_unit(self):
        """The unit as installed: not enabled (the admin enables it once the config has a
        password), and systemd-analyze finds the binary it starts and, now that they are
        installed, the man pages its Documentation= names."""
        self.assertFalse(os.path.lexists(
            "/etc/systemd/system/multi-user.target.wants/sluice.service"))
        if not shutil.which("systemd-analyze"):
            log("systemd-analyze is not installed: the installed unit is not verified")
            return
        r = run(["systemd-analyze", "verify", "--man=yes", "/lib/systemd/system/sluice.service"],
                60)
        # Without systemd as PID 1 it may say things about the machine; what is wrong with the
        # unit names it.
        problems = [l for l in (r.stdout + r.stderr).splitlines() if "sluice" in l]
        self.assertEqual(problems, [], r.stdout + r.stderr)

    def run_as_sluice_user(self):
        with PgCluster() as pg:
            password = harness.random_password("upstream")
            client_password = harness.random_password("client")
            pg.create_role("app", password)
            config_dir = make_temp_dir("sluice-deb-run-")
            port = free_port()
            config_path = config_dir / "sluice.yaml"
            # The passwords come from the environment, as the package's unit would give them
            # (random_password() is URL-safe).
            config_path.write_text(harness.to_yaml(harness.sluice_config(
                listen_port=port,
                upstream_url=f"postgresql://app:${{UPSTREAM_PASSWORD}}@{harness.HOST}:{pg.port}"
                             "/postgres",
                users=[{"name": "app", "password": "${CLIENT_PASSWORD}"}],
                pool_mode="transaction")))
            config_path.chmod(0o644)
            logfile = config_dir / "sluice.log"
            env = {"PATH": "/usr/sbin:/usr/bin", "UPSTREAM_PASSWORD": password,
                   "CLIENT_PASSWORD": client_password}
            with open(logfile, "wb") as logf:
                proc = subprocess.Popen(
                    ["/usr/sbin/sluice", "-c", str(config_path)], stdin=subprocess.DEVNULL,
                    stdout=logf, stderr=logf, cwd="/", env=env, start_new_session=True,
                    user="sluice", group="sluice", extra_groups=[])
            harness._reaper.add_group(proc.pid)
            try:
                deadline = time.monotonic() + 15
                while not port_accepts(port):
                    self.assertIsNone(proc.poll(), logfile.read_text())
                    self.assertLess(time.monotonic(), deadline, logfile.read_text())
                    time.sleep(0.05)
                status = Path(f"/proc/{proc.pid}/status").read_text()
                uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
                self.assertEqual(uid, pwd.getpwnam("sluice").pw_uid)
                r = psql(port, "SELECT current_user, 40 + 2", user="app",
                         password=client_password)
                self.assertEqual(r.stdout.strip(), "app|42")
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0, logfile.read_text())
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                harness._reaper.remove_group(proc.pid)
            text = logfile.read_text()
            self.assertNotIn(password, text)
            self.assertNotIn(client_password, text)

    def purge_leaves_nothing(self):
        listed = run(["dpkg-query", "-L", "sluice"], 30, check=True).stdout.split("\n")
        r = run(["dpkg", "--purge", "sluice"], 300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIsNone(installed_version("sluice"))
        # Every file is gone; directories may stay only when another package has them too
        # (isdir follows symlinks: on a merged-/usr system /lib, listed, is a link to usr/lib).
        for path in filter(None, listed):
            if os.path.isdir(path):
                continue
            self.assertFalse(os.path.lexists(path), f"{path} survived dpkg --purge")
        self.assertFalse(os.path.exists("/etc/sluice"), os.listdir("/etc/sluice")
                         if os.path.isdir("/etc/sluice") else "")
        r = run(["dpkg-query", "-W", "sluice"], 30, quiet=True)
        self.assertNotEqual(r.returncode, 0, "dpkg still knows the package after --purge")


def main() -> None:
    if os.geteuid() != 0 or not shutil.which("dpkg"):
        print("test_deb_install: needs root and dpkg; skipped", file=sys.stderr)
        sys.exit(SKIP)
    harness.main()


if __name__ == "__main__":
    main()
