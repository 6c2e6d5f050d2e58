"""The Debian package, inspected without installing it: nothing on the machine changes, so it
needs no root. Its control fields and conffiles (dpkg-deb), its file list (paths, owners,
modes), lintian (no errors), and then the package unpacked with `dpkg -x` into a temporary
directory: the daemon in it runs (--version, --help, --check of the shipped config), its man
pages render and are what the key table says, and its systemd unit passes
`systemd-analyze verify` against that directory as the root.

  packaging/build-deb.sh && /usr/bin/python3 tests/packaging/test_deb_contents.py
  SLUICE_DEB_DIR=/tmp/debs ...       # the directory build-deb.sh wrote to (OUT_DIR)
"""

from __future__ import annotations

import gzip
import shutil
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import deb_artifacts  # noqa: E402
import harness  # noqa: E402
from harness import log, make_temp_dir, run  # noqa: E402

SOURCE_DIR = deb_artifacts.SOURCE_DIR

# Every file the package holds, with its mode; directories are not listed. Anything else in it
# is a test failure, so a new file is a decision, not an accident.
EXPECTED_FILES = {
    "/usr/sbin/sluice": "-rwxr-xr-x",
    "/etc/sluice/sluice.yaml": "-rw-r--r--",
    "/lib/systemd/system/sluice.service": "-rw-r--r--",
    "/usr/share/man/man8/sluice.8.gz": "-rw-r--r--",
    "/usr/share/man/man5/sluice.yaml.5.gz": "-rw-r--r--",
    "/usr/share/doc/sluice/copyright": "-rw-r--r--",
    "/usr/share/doc/sluice/changelog.gz": "-rw-r--r--",
    "/usr/share/doc/sluice/README.md.gz": "-rw-r--r--",
    "/usr/share/doc/sluice/configuration.md.gz": "-rw-r--r--",
}
# A clean environment: the shipped config must not depend on the caller's.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def dpkg_deb(*args) -> str:
    return run(["dpkg-deb", *args], 60, check=True, quiet=True).stdout


class DebContents(unittest.TestCase):
    deb: Path
    root: Path

    @classmethod
    def setUpClass(cls):
        cls.deb = deb_artifacts.the_deb()
        log(f"inspecting {cls.deb}")
        cls.root = make_temp_dir("sluice-deb-x-")
        run(["dpkg", "-x", cls.deb, cls.root], 120, check=True)

    @classmethod
    def tearDownClass(cls):
        harness.remove_temp_dir(cls.root)

    def extracted(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def test_name_and_control_fields(self):
        version = deb_artifacts.changelog_version()
        self.assertEqual(version, deb_artifacts.cmake_version(),
                         "debian/changelog and CMakeLists.txt disagree on the version")
        arch = deb_artifacts.architecture()
        self.assertEqual(self.deb.name, f"sluice_{version}_{arch}.deb")
        fields = {name: dpkg_deb("--field", self.deb, name).strip()
                  for name in ("Package", "Version", "Architecture", "Depends", "Section",
                               "Maintainer", "Description")}
        self.assertEqual(fields["Package"], "sluice")
        self.assertEqual(fields["Version"], version)
        self.assertEqual(fields["Architecture"], arch)
        depends = [d.strip().split(" ")[0] for d in fields["Depends"].split(",")]
        # The postinst creates the system user with adduser; dh_shlibdeps filled in the
        # libraries the daemon links (no ${...} left unexpanded).
        self.assertIn("adduser", depends)
        for library in ("libc6", "libssl3", "libyaml-cpp0.7", "libfmt9"):
            self.assertIn(library, depends, fields["Depends"])
        self.assertNotIn("${", fields["Depends"])
        self.assertTrue(fields["Description"].startswith("PostgreSQL connection pooler"))

    def test_conffile_and_maintainer_scripts(self):
        info = make_temp_dir("sluice-deb-control-")
        try:
            run(["dpkg-deb", "--control", self.deb, info], 60, check=True, quiet=True)
            self.assertEqual((info / "conffiles").read_text().split(),
                             ["/etc/sluice/sluice.yaml"])
            postinst = (info / "postinst").read_text()
            self.assertIn("adduser --system", postinst)
            # dh_installsystemd --no-enable --no-start: the install never starts the unit (the
            # shipped config serves nobody until edited). It is enabled again only on upgrade,
            # where the admin had enabled it (test_deb_install checks a first install leaves it
            # disabled).
            self.assertNotIn("deb-systemd-invoke", postinst)
            self.assertNotIn("was-enabled defaults to true", postinst)
            for script in ("postinst", "postrm", "prerm"):
                path = info / script
                if path.exists():
                    run(["sh", "-n", path], 30, check=True, quiet=True)
        finally:
            harness.remove_temp_dir(info)

    def test_file_list(self):
        files = {}
        for line in dpkg_deb("--contents", self.deb).splitlines():
            # -rwxr-xr-x root/root   1234 2026-12-03 12:00 ./usr/sbin/sluice
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            path = path.removeprefix(".")
            self.assertEqual(owner, "root/root", line)
            if not mode.startswith("d"):
                files[path.split(" -> ")[0]] = mode
        self.assertEqual(files, EXPECTED_FILES)

    def test_lintian_reports_no_errors(self):
        if not shutil.which("lintian"):
            self.skipTest("lintian is not installed (scripts/deps.sh installs it)")
        # The .changes covers the .deb, its -dbgsym and the .buildinfo.
        target = deb_artifacts.the_changes() or self.deb
        r = run(["lintian", "--info", "--display-info", "--fail-on", "error", target], 900)
        output = r.stdout + r.stderr
        errors = [l for l in output.splitlines() if l.startswith("E: ")]
        self.assertEqual(errors, [], output)
        self.assertEqual(r.returncode, 0, output)
        warnings = [l for l in output.splitlines() if l.startswith("W: ")]
        log(f"lintian {target.name}: {len(errors)} errors, {len(warnings)} warnings"
            + "".join(f"\n  {w}" for w in warnings))

    def test_daemon_runs(self):
        sluice = self.extracted("/usr/sbin/sluice")
        version = run([sluice, "--version"], 30, env=CLEAN_ENV, check=True)
        self.assertEqual(version.stdout.strip(), f"sluice {deb_artifacts.cmake_version()}")
        help_text = run([sluice, "--help"], 30, env=CLEAN_ENV, check=True).stdout
        for word in ("--check", "config-reference", "import-pgbouncer", "max_clients"):
            self.assertIn(word, help_text)
        # The shipped config is valid as it is, with no environment variables set.
        config = self.extracted("/etc/sluice/sluice.yaml")
        r = run([sluice, "--check", "-c", config], 30, env=CLEAN_ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration is valid", r.stdout)
        self.assertEqual(config.read_text(), (SOURCE_DIR / "packaging" / "sluice.yaml")
                         .read_text())
        self.assertNotRegex(config.read_text(), r"(?im)^\s*password:\s*[^\s\"#$]",
                            "a plain password is shipped")

    def test_man_pages(self):
        sluice = self.extracted("/usr/sbin/sluice")
        pages = {"/usr/share/man/man8/sluice.8.gz":
                 (SOURCE_DIR / "packaging" / "man" / "sluice.8").read_text(),
                 "/usr/share/man/man5/sluice.yaml.5.gz":
                 run([sluice, "config-reference", "--man"], 30, env=CLEAN_ENV,
                     check=True).stdout}
        for page, expected in pages.items():
            with gzip.open(self.extracted(page), "rt", encoding="utf-8") as f:
                self.assertEqual(f.read(), expected, f"{page} is not what it was built from")
            if shutil.which("man"):
                r = run(["man", "--warnings", "-E", "UTF-8", "-l", self.extracted(page)], 60,
                        env={**CLEAN_ENV, "MANWIDTH": "80"})
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr.strip(), "", f"{page}: {r.stderr}")
                self.assertIn("sluice", r.stdout)

    def test_unit(self):
        unit_path = self.extracted("/lib/systemd/system/sluice.service")
        self.assertEqual(unit_path.read_text(),
                         (SOURCE_DIR / "packaging" / "sluice.service").read_text())
        settings: dict[str, list[str]] = {}
        for line in unit_path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                settings.setdefault(key.strip(), []).append(value.strip())
        for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                           ("User", "sluice"), ("Group", "sluice"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("PrivateDevices", "yes")):
            self.assertEqual(settings.get(key), [value], key)
        self.assertEqual(settings["ExecStart"], ["/usr/sbin/sluice -c /etc/sluice/sluice.yaml"])
        # A descriptor per client and per server connection: room for the default max_clients
        # (10000) and as many server connections again.
        self.assertGreaterEqual(int(settings["LimitNOFILE"][0]), 2 * 10000)

        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (scripts/deps.sh installs systemd)")
        self.assertEqual(self.verify_unit(unit_path.read_text()), "")
        # The check can fail: the same unit with a misspelt setting does not pass.
        broken = unit_path.read_text().replace("ProtectSystem=", "ProtectSystm=")
        self.assertIn("ProtectSystm", self.verify_unit(broken))

    def verify_unit(self, unit_text: str) -> str:
        """What `systemd-analyze verify` says about unit_text, installed as sluice.service in a
        root made of the unpacked package plus this machine's own units (the targets it names,
        sysinit.target under them), so that ExecStart= is checked against the package's
        /usr/sbin/sluice. Returns its complaints; "" when it found none."""
        root = make_temp_dir("sluice-unit-root-")
        try:
            shutil.copytree(self.root, root, symlinks=True, dirs_exist_ok=True)
            units = root / "lib" / "systemd" / "system"
            shutil.copytree("/lib/systemd/system", units, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("sluice*"))
            (units / "sluice.service").write_text(unit_text)
            # --man=no: the man pages it names are in the package, not yet in man's index.
            r = run(["systemd-analyze", "verify", "--man=no", f"--root={root}",
                     "/lib/systemd/system/sluice.service"], 120, env=CLEAN_ENV)
            output = (r.stdout + r.stderr).strip()
            if r.returncode != 0 and not output:
                output = f"systemd-analyze verify exited {r.returncode}"
            return output
        finally:
            harness.remove_temp_dir(root)


if __name__ == "__main__":
    harness.main()
