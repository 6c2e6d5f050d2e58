#!/usr/bin/env bash
# Installs the Debian packages sluice needs to build, run and test.
#
# Idempotent: when every package is already present it prints nothing and never
# touches apt (no `apt-get update`, no network). Run as root (CI and sessions are
# root); otherwise it uses sudo when available.
# Then the driver tests' npm packages (tests/drivers/node), likewise only when missing.
set -euo pipefail

PACKAGES=(
  # toolchain; clang and its libFuzzer runtime build the fuzz targets (tests/fuzz)
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  libboost1.81-dev libssl-dev libpq-dev libyaml-cpp-dev libfmt-dev libspdlog-dev catch2
  # PostgreSQL server, client tools (psql, pgbench) and the reference pooler
  postgresql-15 postgresql-client-15 pgbouncer
  # drivers used by the integration tests
  python3-asyncpg python3-sqlalchemy python3-psycopg python3-psycopg2 python3-django
  php-cli php-pgsql ruby ruby-pg ruby-activerecord
  libpostgresql-jdbc-java default-jdk-headless nodejs npm
  # packaging tests (tests/packaging): YAML and the Kubernetes API's models for the manifests;
  # the Debian package's build tools (debian/control's Build-Depends beyond the above), lintian,
  # man (renders its pages), systemd-analyze (verifies its unit) and adduser (its postinst)
  python3-yaml python3-kubernetes
  debhelper dpkg-dev lintian man-db systemd adduser
  # the exporter the console is tested with (tests/integration/test_pgbouncer_exporters.py),
  # and what PgBouncer 1.25 builds with, for test_console_columns.py (pgbouncer_peer.py)
  prometheus-pgbouncer-exporter meson libevent-dev libc-ares-dev
  # benchmarking and process tools; the openssl CLI makes the TLS tests' certificates
  hyperfine procps openssl
)

# A package counts as present when dpkg has it installed, or when an installed
# package Provides it. The second case matters on machines whose nodejs comes
# from NodeSource: that nodejs bundles npm, Provides/Conflicts "npm", and
# `apt-get install npm` would fail on the conflict.
installed_or_provided() {
  dpkg-query -W -f='${Status}|${Package},${Provides}\n' 2>/dev/null |
    awk -F'|' '$1 == "install ok installed" {
      n = split($2, names, /, */)
      for (i = 1; i <= n; i++) {
        sub(/[ :].*/, "", names[i])  # drop ":amd64" and a version "(= 1.2)"
        if (names[i] != "") print names[i]
      }
    }' | sort -u
}

# Prints the packages of "$@" that are neither installed nor provided.
# (No `| grep -q` here: its early exit would SIGPIPE the writer under pipefail.)
absent_of() {
  local -A have=()
  local name pkg
  while IFS= read -r name; do have[$name]=1; done < <(installed_or_provided)
  for pkg in "$@"; do
    [[ -n "${have[$pkg]:-}" ]] || printf '%s\n' "$pkg"
  done
}

# The Debian packages: a function, so that having them all goes on to the npm part below.
install_debian_packages() {
  mapfile -t missing < <(absent_of "${PACKAGES[@]}")

  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi

  echo "deps.sh: installing missing packages: ${missing[*]}" >&2

  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo_cmd=(sudo)
    else
      echo "deps.sh: not root and no sudo; install these by hand: ${missing[*]}" >&2
      exit 1
    fi
  fi

  export DEBIAN_FRONTEND=noninteractive
  # Other sessions on the machine may hold the dpkg lock for a while: wait for it
  # (bounded) instead of failing at once.
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -q)
  # An unreachable extra source makes `apt-get update` fail although Debian's own
  # indexes are fine: warn and let the install decide.
  "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" update >/dev/null ||
    echo "deps.sh: warning: apt-get update reported errors; trying the install anyway" >&2
  "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null

  mapfile -t still_missing < <(absent_of "${missing[@]}")
  if [[ ${#still_missing[@]} -ne 0 ]]; then
    echo "deps.sh: still missing after apt-get install: ${still_missing[*]}" >&2
    exit 1
  fi
  echo "deps.sh: done" >&2
}

install_debian_packages

# Java: the driver tests (tests/drivers/java) need only the Debian packages above:
# pgjdbc at /usr/share/java/postgresql.jar, and a JDK whose `java` runs a single
# .java file directly (the source launcher), so nothing is built or downloaded.
if [[ ! -r /usr/share/java/postgresql.jar ]]; then
  echo "deps.sh: /usr/share/java/postgresql.jar is missing although libpostgresql-jdbc-java is installed" >&2
  exit 1
fi

# Node: the driver tests' npm packages (tests/drivers/node), exactly as package-lock.json
# pins them, into tests/drivers/node/node_modules (gitignored). `npm ci` runs only when
# node_modules is absent or was installed from another lockfile: a copy of the lockfile
# it was installed from is kept beside it as the stamp.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/drivers/node"
if [[ -f "$node_dir/package-lock.json" ]] &&
   ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.sluice-installed-lock.json"; then
  echo "deps.sh: installing the node driver-test packages (npm ci in tests/drivers/node)" >&2
  (cd "$node_dir" &&
   timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null &&
   cp package-lock.json node_modules/.sluice-installed-lock.json)
  echo "deps.sh: node packages done" >&2
fi
