"""`sluice import-pgbouncer` on PgBouncer's own files: the sample etc/pgbouncer.ini (with its
etc/userlist.txt) and its test suite's test/test.ini (with test/userlist.txt), taken from the
PgBouncer 1.25.2 source snapshot in shared/anchors/ and extracted to a temporary directory
(PgBouncer's files are not part of this repository). Each output must pass `sluice --check`
once the variables it names are set, carry the expected keys, and copy no plain password.

  SLUICE_BIN=build/sluice /usr/bin/python3 tests/integration/test_import_pgbouncer.py
  SLUICE_ANCHORS_DIR=/path/to/anchors ...   # where pgbouncer-1.25.2.tar.gz is
"""

from __future__ import annotations

import os
import re
import tarfile
import unittest
from pathlib import Path

import harness
from harness import make_temp_dir, run

TARBALL = "pgbouncer-1.25.2.tar.gz"
MEMBERS = ("etc/pgbouncer.ini", "etc/userlist.txt", "test/test.ini", "test/userlist.txt")


def find_tarball() -> Path | None:
    candidates = [os.environ.get("SLUICE_ANCHORS_DIR"),
                  harness.SOURCE_DIR.parent / "shared" / "anchors",
                  "/work/shared/anchors"]
    for c in candidates:
        if c and (Path(c) / TARBALL).is_file():
            return Path(c) / TARBALL
    return None


def variables_named(yaml: str) -> list[str]:
    """The variables the output's header asks for."""
    return re.findall(r"^#   (SLUICE_[A-Z0-9_]+)  ", yaml, re.M)


class ImportPgBouncer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tarball = find_tarball()
        if tarball is None:
            raise unittest.SkipTest(f"{TARBALL} not found (set SLUICE_ANCHORS_DIR)")
        cls.dir = make_temp_dir("sluice-pgb-import-")
        with tarfile.open(tarball) as tar:
            prefix = tar.getnames()[0].split("/")[0]
            for member in MEMBERS:
                source = tar.extractfile(f"{prefix}/{member}")
                target = cls.dir / member
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(source.read())

    def convert(self, *args, cwd=None) -> str:
        r = run([harness.SLUICE_BIN, "import-pgbouncer", *args], 30, cwd=cwd)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def check_passes(self, yaml: str, name: str) -> None:
        path = self.dir / name
        path.write_text(yaml)
        env = {"PATH": os.environ.get("PATH", "/usr/bin")}
        env.update({v: f"pw-{v.lower()}" for v in variables_named(yaml)})
        r = run([harness.SLUICE_BIN, "--check", "-c", path], 30, env=env)
        self.assertEqual(r.returncode, 0, f"{r.stdout}{r.stderr}\n--- output ---\n{yaml}")
        # And it does not pass without them: the passwords really come from the environment.
        if variables_named(yaml):
            r = run([harness.SLUICE_BIN, "--check", "-c", path], 30, env={"PATH": env["PATH"]})
            self.assertNotEqual(r.returncode, 0)

    def test_sample_pgbouncer_ini(self):
        yaml = self.convert("etc/pgbouncer.ini", "--userlist", "etc/userlist.txt", cwd=self.dir)
        self.check_passes(yaml, "sample.yaml")
        for expected in (r'^  host: "localhost"  # listen_addr = localhost',
                         r"^  port: 6432  # listen_port = 6432",
                         r"^auth: md5  # auth_type = md5",
                         # PgBouncer's default pool_mode, written out: sluice's differs.
                         r"^  mode: session  # PgBouncer's default pool_mode = session",
                         r"^max_clients: 100  # PgBouncer's default max_client_conn",
                         r'^  - name: "marko"', r'^  - name: "pgbouncer"',
                         r"^# ! logfile = /var/log/pgbouncer/pgbouncer.log",
                         r"^# ! pidfile = ",
                         r"! PgBouncer's \[databases\] has none that sluice can serve"):
            self.assertRegex(yaml, re.compile(expected, re.M))
        self.assertNotIn("asdasd", yaml)  # the sample's plain passwords
        self.assertEqual(variables_named(yaml), ["SLUICE_PASSWORD_MARKO",
                                                 "SLUICE_PASSWORD_POSTGRES",
                                                 "SLUICE_PASSWORD_PGBOUNCER"])

    def test_sample_without_userlist_says_what_is_missing(self):
        yaml = self.convert("etc/pgbouncer.ini", cwd=self.dir)
        self.assertIn("! No users: sluice needs at least one. Pass PgBouncer's auth_file", yaml)
        path = self.dir / "nousers.yaml"
        path.write_text(yaml)
        r = run([harness.SLUICE_BIN, "--check", "-c", path], 30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("users", r.stderr)

    def test_pgbouncer_test_suite_ini(self):
        test_dir = self.dir / "test"
        yaml = self.convert("test.ini", "--userlist", "userlist.txt", cwd=test_dir)
        self.check_passes(yaml, "test.yaml")
        ini = (test_dir / "test.ini").read_text()
        databases = re.findall(r"^([A-Za-z0-9_]+)\s*=", ini.split("[users]")[0], re.M)
        for db in databases:
            self.assertRegex(yaml, re.compile(rf'^  "{db}":  # test\.ini:\d+$', re.M))
        for expected in (r'^  host: "127.0.0.1"', r"^  port: 6667",
                         r"^  mode: transaction  # pool_mode = statement",
                         r"^  size: 5  # default_pool_size = 5",
                         r"^  recycle: 2m  # server_lifetime = 120",
                         r"^auth: plain  # auth_type = trust",
                         r'password: "md5ab8b744ff66bee42dc47bae34ca17959"',
                         r'password: "SCRAM-SHA-256\$4096:D76gvGUVj9Z4DNiGoabOBg==',
                         r"dbname=p4 user=puser1 password='\$\{SLUICE_DB_P4_PASSWORD\}'",
                         r"options='-c client_encoding=SQL_ASCII'",
                         r"! connect_query=set enable_seqscan=off",
                         r"! \[users\] maxedout = max_user_connections=3",
                         r"! tcp_socket_buffer = 4096",
                         r"! track_extra_parameters = search_path, intervalstyle"):
            self.assertRegex(yaml, re.compile(expected, re.M))
        for secret in ("zzzz", "pgbouncer-check", "password=foo", "password=wrong"):
            self.assertNotIn(secret, yaml)

    def test_include_files_are_read(self):
        main = self.dir / "main.ini"
        main.write_text("[pgbouncer]\nlisten_port = 7000\n%include test/test.ini\n"
                        "[pgbouncer]\nmax_client_conn = 77\n")
        yaml = self.convert("main.ini", "--userlist", "test/userlist.txt", cwd=self.dir)
        self.check_passes(yaml, "include.yaml")
        self.assertIn("# Included: test/test.ini", yaml)
        self.assertRegex(yaml, re.compile(r"^max_clients: 77", re.M))
        # test.ini sets listen_port again after main.ini did: the later line counts.
        self.assertRegex(yaml, re.compile(r"^  port: 6667", re.M))
        self.assertIn("listen_port at main.ini:2 is set again at test/test.ini:", yaml)


if __name__ == "__main__":
    harness.main()
