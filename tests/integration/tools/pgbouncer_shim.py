#!/usr/bin/python3
"""Runs PgBouncer behind sluice's command line, to check the integration tests
themselves against a known pooler:

    SLUICE_BIN=tests/integration/tools/pgbouncer_shim.py \
        /usr/bin/python3 tests/integration/test_pgbench.py

It translates the config harness.sluice_config() writes into pgbouncer.ini and
a userlist, then execs pgbouncer in the foreground (same PID, so signals reach
it). --check and --version are imitated. A test that fails here as well as
against sluice is suspect; one that fails only against sluice points at sluice.
Where PgBouncer's behaviour differs by design (log wording, its own error
texts) the test is expected to fail here. Needs python3-yaml.
"""

import os
import pwd
import subprocess
import sys
import tempfile
import urllib.parse

import yaml

AUTH_TYPES = {"scram-sha-256": "scram-sha-256", "md5": "md5", "plain": "plain"}
POOL_MODES = {"session", "transaction", "statement"}


def fail_at(path, node, key, problem):
    mark = node.start_mark
    print(f"{path}:{mark.line + 1}:{mark.column + 1}: {key}: {problem}", file=sys.stderr)
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        sys.exit(1)
    try:
        node = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        print(f"{path}:{mark.line + 1}:{mark.column + 1}: {exc.problem}", file=sys.stderr)
        sys.exit(1)
    config = yaml.safe_load(text)
    for key_node, value_node in node.value:
        if key_node.value == "pool":
            for k, v in value_node.value:
                if k.value == "mode" and v.value not in POOL_MODES:
                    fail_at(path, v, "pool.mode", f"must be one of {sorted(POOL_MODES)}")
        if key_node.value == "auth" and value_node.value not in AUTH_TYPES:
            fail_at(path, value_node, "auth", f"must be one of {sorted(AUTH_TYPES)}")
    return config


def quote(value):
    return '"' + str(value).replace('"', '""') + '"'


def main(argv):
    if "--version" in argv:
        version = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True)
        print(f"sluice 0.0.0 (pgbouncer shim: {version.stdout.splitlines()[0]})")
        return 0
    if "--help" in argv or "-c" not in argv:
        print("usage: sluice [--check] -c FILE | --version | --help")
        return 0 if "--help" in argv else 2
    path = argv[argv.index("-c") + 1]
    config = load(path)
    if "--check" in argv:
        return 0

    (database, settings), = config["databases"].items()
    up = urllib.parse.urlsplit(settings["url"])
    workdir = tempfile.mkdtemp(prefix="pgbouncer-shim-", dir=os.path.dirname(os.path.abspath(path)))
    os.chmod(workdir, 0o755)
    userlist = os.path.join(workdir, "userlist.txt")
    with open(userlist, "w") as f:
        for user in config["users"]:
            f.write(f"{quote(user['name'])} {quote(user['password'])}\n")
    server = (f"host={up.hostname} port={up.port} "
              f"user={urllib.parse.unquote(up.username)} "
              f"password='{urllib.parse.unquote(up.password or '')}'")
    ini = os.path.join(workdir, "pgbouncer.ini")
    with open(ini, "w") as f:
        f.write(f"""[databases]
* = {server}
[pgbouncer]
listen_addr = {config['listen']['host']}
listen_port = {config['listen']['port']}
unix_socket_dir =
auth_type = {AUTH_TYPES[config.get('auth', 'scram-sha-256')]}
auth_file = {userlist}
pool_mode = {config['pool']['mode']}
default_pool_size = {config['pool'].get('size', 10)}
logfile =
pidfile =
""")
    for name in (userlist, ini):
        os.chmod(name, 0o644)
    args = ["pgbouncer"]
    if config.get("log_level") in ("debug", "trace"):
        args += ["-v", "-v"]
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        args += ["-u", "postgres"]
    os.execvp("pgbouncer", args + [ini])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
