#!/usr/bin/env bash
# Runs sluice in the foreground, in front of a throwaway PostgreSQL 15.
#
#   scripts/run-local.sh                       # everything local; prints DATABASE_URL
#   SLUICE_UPSTREAM_URL=postgresql://u:pw@127.0.0.1:5432/postgres scripts/run-local.sh
#
# Installs missing packages and builds first. Unless SLUICE_UPSTREAM_URL is set,
# it initdb's a cluster into a temporary directory (SCRAM authentication, TCP on
# 127.0.0.1 only, on a free port, its unix socket inside that directory), and
# creates a role for sluice to log in to it as. sluice then runs with
# etc/sluice.local.yaml (or $SLUICE_CONFIG), which reads:
#   SLUICE_UPSTREAM_URL   libpq URL of the upstream, password included
#   SLUICE_USER           the user clients log in to sluice as (default: app)
#   SLUICE_PASSWORD       their password (default: random)
#   SLUICE_LISTEN_PORT    the port sluice listens on (default: a free one);
#                         also exported as SLUICE_PORT
# Ctrl-C (or sluice exiting) stops PostgreSQL and removes the directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
CONFIG="${SLUICE_CONFIG:-etc/sluice.local.yaml}"
SLUICE_BIN="${SLUICE_BIN:-build/sluice}"

say() { printf 'run-local: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
random_secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
url_quote() { /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# initdb and postgres refuse to run as root.
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_dir=""
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
  local rc=$?
  # Finish the cleanup whatever happens: a second Ctrl-C, or stderr gone (a
  # `| tee` that Ctrl-C killed too) must not stop it halfway.
  set +e
  trap '' INT TERM PIPE
  trap - EXIT
  if [[ -n "$pg_dir" && -d "$pg_dir" ]]; then
    if [[ -f "$pg_dir/data/postmaster.pid" ]]; then
      say "stopping PostgreSQL"
      (cd / && as_postgres "$PG_BIN/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop) >/dev/null 2>&1 ||
        say "warning: pg_ctl stop failed; see $pg_dir/postgres.log"
    fi
    rm -rf "$pg_dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/deps.sh
scripts/build.sh >&2
[[ -x "$SLUICE_BIN" ]] || die "$SLUICE_BIN was not built"
[[ -f "$CONFIG" ]] || die "no config at $CONFIG"

export SLUICE_USER="${SLUICE_USER:-app}"
export SLUICE_PASSWORD="${SLUICE_PASSWORD:-$(random_secret)}"
export SLUICE_LISTEN_PORT="${SLUICE_LISTEN_PORT:-$(free_port)}"
export SLUICE_PORT="${SLUICE_PORT:-$SLUICE_LISTEN_PORT}"

if [[ -z "${SLUICE_UPSTREAM_URL:-}" ]]; then
  pg_dir="$(mktemp -d /tmp/sluice-local.XXXXXX)"
  chmod 755 "$pg_dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pg_dir"; fi
  pg_port="$(free_port)"
  superuser_password="$(random_secret)"
  upstream_role="$SLUICE_USER"
  upstream_password="$(random_secret)" # not the client's: sluice keeps the two apart

  printf '%s\n' "$superuser_password" >"$pg_dir/pwfile"
  chmod 600 "$pg_dir/pwfile"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pg_dir/pwfile"; fi
  say "initdb into $pg_dir"
  if ! (cd / && as_postgres "$PG_BIN/initdb" -D "$pg_dir/data" -U postgres \
    --auth=scram-sha-256 --pwfile="$pg_dir/pwfile" -E UTF8 --locale=C --no-instructions) \
    >"$pg_dir/initdb.log" 2>&1; then
    cat "$pg_dir/initdb.log" >&2
    die "initdb failed"
  fi
  rm -f "$pg_dir/pwfile"
  cat >>"$pg_dir/data/postgresql.conf" <<EOF

# written by scripts/run-local.sh
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_dir'
password_encryption = 'scram-sha-256'
log_connections = on
log_disconnections = on
EOF
  if ! (cd / && as_postgres "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" \
    -w -t 60 start) >/dev/null; then
    cat "$pg_dir/postgres.log" >&2 || true
    die "PostgreSQL did not start"
  fi
  PGPASSWORD="$superuser_password" psql -X -q -v ON_ERROR_STOP=1 \
    -h "$pg_dir" -p "$pg_port" -U postgres -d postgres \
    -v role="$upstream_role" -v password="$upstream_password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
GRANT ALL ON SCHEMA public TO :"role";
SQL
  SLUICE_UPSTREAM_URL="postgresql://$(url_quote "$upstream_role"):$(url_quote "$upstream_password")@127.0.0.1:$pg_port/postgres"
  export SLUICE_UPSTREAM_URL
  say "PostgreSQL 15 on 127.0.0.1:$pg_port, role $upstream_role (log: $pg_dir/postgres.log)"
  say "  superuser: PGPASSWORD=$superuser_password psql -h 127.0.0.1 -p $pg_port -U postgres"
else
  say "using the upstream in SLUICE_UPSTREAM_URL"
fi

database_url="postgresql://$(url_quote "$SLUICE_USER"):$(url_quote "$SLUICE_PASSWORD")@127.0.0.1:$SLUICE_LISTEN_PORT/postgres"
say "starting sluice on 127.0.0.1:$SLUICE_LISTEN_PORT with $CONFIG; Ctrl-C stops it"
printf 'DATABASE_URL=%s\n' "$database_url"
say "  try: psql \"$database_url\""

# Not exec: the EXIT trap must still stop PostgreSQL after sluice exits. In the
# background so that a signal to this script alone (kill PID, not only Ctrl-C
# to the terminal's process group) is passed on to sluice at once.
"$SLUICE_BIN" -c "$CONFIG" &
sluice_pid=$!
trap 'kill -TERM "$sluice_pid" 2>/dev/null || true' INT TERM
set +e
wait "$sluice_pid"
status=$?
while kill -0 "$sluice_pid" 2>/dev/null; do # wait returned early for a trapped signal
  wait "$sluice_pid"
  status=$?
done
exit "$status"
