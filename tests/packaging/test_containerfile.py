"""packaging/container/Containerfile, checked statically: no container engine runs on this
project's machines (and Debian 12 has no hadolint), so the file is parsed as Dockerfile syntax
(instructions, line continuations, exec-form JSON) and held to what the README promises: a
multi-stage build on debian:bookworm-slim, a runtime stage that runs as a non-root numeric
user, the config read from /etc/sluice, the ports the Kubernetes manifests use, and a build
stage that makes the package with packaging/build-deb.sh (so its Build-Depends stay in one
place, debian/control).

  /usr/bin/python3 tests/packaging/test_containerfile.py
"""

from __future__ import annotations

import json
import os
import re
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("SOURCE_DIR") or HERE.parent.parent)
CONTAINERFILE = SOURCE_DIR / "packaging" / "container" / "Containerfile"

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                "SHELL"}
EXEC_FORM = {"CMD", "ENTRYPOINT"}


def parse(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction, as BuildKit allows
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, args = full.partition(" ")
        out.append((start, word, args.strip()))
    if pending:
        raise ValueError("the file ends inside a continued line")
    return out


class Containerfile(unittest.TestCase):
    def setUp(self):
        self.instructions = parse(CONTAINERFILE.read_text())
        self.stages: list[list[tuple[int, str, str]]] = []
        for ins in self.instructions:
            if ins[1] == "FROM":
                self.stages.append([])
            self.assertTrue(self.stages, f"line {ins[0]}: {ins[1]} before any FROM")
            self.stages[-1].append(ins)

    def test_syntax(self):
        for line, word, args in self.instructions:
            self.assertIn(word, INSTRUCTIONS, f"line {line}: unknown instruction {word}")
            self.assertEqual(word, word.upper(), f"line {line}")
            self.assertTrue(args, f"line {line}: {word} without arguments")
            if word in EXEC_FORM:
                value = json.loads(args)  # exec form: signals reach sluice itself, not a shell
                self.assertIsInstance(value, list)

    def test_multi_stage_on_bookworm_slim(self):
        self.assertGreaterEqual(len(self.stages), 2)
        names = []
        for stage in self.stages:
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", stage[0][2], re.I)
            self.assertEqual(m.group(1), "debian:bookworm-slim")
            names.append(m.group(2))
        for stage in self.stages:
            for line, word, args in stage:
                m = re.search(r"--from=(\S+)", args)
                if word == "COPY" and m:
                    self.assertIn(m.group(1), names[:-1], f"line {line}: no such stage")
        build = "\n".join(a for _, w, a in self.stages[0] if w == "RUN")
        self.assertIn("packaging/build-deb.sh", build)
        self.assertTrue((SOURCE_DIR / "packaging" / "build-deb.sh").exists())

    def test_runtime_runs_as_non_root_with_config_from_etc_sluice(self):
        final = self.stages[-1]
        users = [a for _, w, a in final if w == "USER"]
        self.assertTrue(users, "the runtime stage sets no USER")
        uid = users[-1].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0, "USER must be a non-root numeric uid")
        # The uid the Kubernetes manifests run as.
        deployment = (SOURCE_DIR / "packaging" / "kubernetes" / "deployment.yaml").read_text()
        self.assertIn(f"runAsUser: {uid}", deployment)
        entry = json.loads([a for _, w, a in final if w == "ENTRYPOINT"][-1])
        cmd = json.loads([a for _, w, a in final if w == "CMD"][-1])
        self.assertEqual(entry, ["/usr/sbin/sluice"])
        self.assertEqual(cmd, ["-c", "/etc/sluice/sluice.yaml"])
        exposed = {p for _, w, a in final if w == "EXPOSE" for p in a.split()}
        self.assertEqual(exposed, {"6432", "9127"})

    def test_no_secret_in_the_image(self):
        for line, word, args in self.instructions:
            if word in ("ENV", "ARG", "LABEL"):
                self.assertNotRegex(args, r"(?i)(password|secret)", f"line {line}")
            self.assertNotEqual(word, "ADD", "COPY, not ADD: nothing is fetched at build time")


if __name__ == "__main__":
    unittest.main(verbosity=2)
