"""Where the package tests find the .deb that packaging/build-deb.sh built, and what its name
must be. CTest's packaging.deb_build fixture builds it into SLUICE_DEB_DIR; run by hand, the
tests read build-deb.sh's default output directory, build-deb/.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("SOURCE_DIR") or HERE.parent.parent)
DEB_DIR = Path(os.environ.get("SLUICE_DEB_DIR") or SOURCE_DIR / "build-deb")


def changelog_version() -> str:
    """The package version: the top entry of debian/changelog."""
    text = (SOURCE_DIR / "debian" / "changelog").read_text()
    return re.search(r"^sluice \(([^)]+)\)", text).group(1)


def cmake_version() -> str:
    """The version the daemon reports (`sluice --version`), from CMake's project()."""
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    return re.search(r"project\(sluice VERSION ([0-9.]+)", text).group(1)


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def the_deb() -> Path:
    """The one sluice_<version>_<arch>.deb in DEB_DIR (its -dbgsym package aside)."""
    debs = sorted(DEB_DIR.glob("sluice_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one sluice_*.deb in {DEB_DIR}, found {debs}: build it "
                           "with packaging/build-deb.sh (or ctest -R packaging.deb)")
    return debs[0]


def the_changes() -> Path | None:
    """dpkg-buildpackage's .changes file, which lintian reads to check the whole upload."""
    changes = sorted(DEB_DIR.glob("sluice_*.changes"))
    return changes[-1] if changes else None
