#!/usr/bin/env bash
# The side-by-side benchmark: PostgreSQL direct, PgBouncer 1.18 (Debian's),
# PgBouncer 1.25, Odyssey 1.5.3 and sluice, on this machine, with throwaway
# instances of all of them. Not part of CI.
#
#   tests/bench/run.sh [bench]     pgbench matrix: tps, avg and p99 latency, proxy CPU per 1000 tx
#   tests/bench/run.sh idle        RSS per idle logged-in client (10,000 clients per pooler)
#   tests/bench/run.sh connect     logins per second (pgbench -C -S)
#   tests/bench/run.sh callgrind   user-space instructions per transaction, pooler under callgrind
#   tests/bench/run.sh tls         -S and logins per second with TLS from clients to the pooler
#
# BENCH_QUICK=1 is a smoke test (1, 10 and 50 clients, 5 s). tests/bench/README.md
# lists every knob and explains how to read the results.
#
# This script owns the environment and the cleanup; bench.py does the work. First
# it builds the peer poolers with ../shared/anchors/build.sh into BENCH_PEERS_DIR
# (once; later runs reuse them). Every process bench.py starts in the background
# (PostgreSQL and each pooler) is recorded in $work/pids/NAME.pid as
# "PID STARTTIME"; the trap below stops those, and only while that PID still has
# that start time (a recycled PID is left alone), on any exit: normal, error,
# Ctrl-C, SIGTERM. Then it removes the temporary directory (BENCH_KEEP=1 keeps it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

mode="${1:-bench}"
case "$mode" in
  bench | idle | connect | callgrind | tls) ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: run as root: initdb and PostgreSQL run as the postgres user through runuser" >&2
  exit 1
fi
tools=(pgbench pgbouncer psql runuser /usr/bin/python3)
case "$mode" in
  callgrind) tools+=(valgrind callgrind_control) ;;
  tls) tools+=(openssl) ;;
esac
for tool in "${tools[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: $tool is missing (Debian: postgresql-15, pgbouncer, python3, valgrind, openssl)" >&2
    exit 1
  fi
done
export SLUICE_BIN="${SLUICE_BIN:-$here/../../build/sluice}"
if [[ ! -x $SLUICE_BIN ]]; then
  echo "run.sh: no sluice binary at $SLUICE_BIN (build it, or set SLUICE_BIN)" >&2
  exit 1
fi

# 1000 pgbench clients and 10,000 idle clients need more descriptors than the usual
# 1024. The daemons inherit the limit when they start, so it is raised here, once,
# for everything. Without CAP_SYS_RESOURCE the hard limit is the ceiling; bench.py
# checks that what it got is enough for each case.
wanted_fds=65536
if ! ulimit -n "$wanted_fds" 2>/dev/null; then
  hard_fds="$(ulimit -Hn)"
  if [[ $hard_fds != unlimited ]] && ((hard_fds < wanted_fds)); then
    ulimit -n "$hard_fds"
    echo "run.sh: note: open-files limit is $hard_fds (hard limit), not $wanted_fds" >&2
  fi
fi

work="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
chmod 755 "$work" # PostgreSQL and PgBouncer run as postgres and must reach their files
mkdir "$work/pids"

# Field 22 of /proc/PID/stat (the start time), read past the command name, which
# may hold spaces or parentheses.
start_time() {
  local stat
  local -a fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  read -r -a fields <<<"$stat"
  [[ ${fields[0]} != Z ]] || return 1 # exited, waiting to be reaped: gone for our purposes
  echo "${fields[19]}"
}

# True if PID is alive and is still the process that started at STARTTIME.
still_ours() {
  local pid="$1" started="$2"
  [[ "$(start_time "$pid")" == "$started" ]]
}

stop_started_processes() {
  local -a pids=()
  local file pid started sig
  for file in "$work"/pids/*.pid; do
    [[ -r $file ]] || continue
    read -r pid started <"$file" || true
    if [[ ! $pid =~ ^[0-9]+$ || ! $started =~ ^[0-9]+$ ]] || ! still_ours "$pid" "$started"; then
      continue
    fi
    # PostgreSQL: SIGINT is its fast shutdown. The poolers stop on SIGTERM.
    sig=TERM
    [[ $(basename "$file") == postgres.pid ]] && sig=INT
    kill -s "$sig" "$pid" 2>/dev/null && pids+=("$pid:$started")
    kill -s CONT "$pid" 2>/dev/null || true # a stopped process acts on its signal only now
  done
  local deadline=$((SECONDS + 15)) entry alive
  while ((SECONDS < deadline)); do
    alive=0
    for entry in "${pids[@]}"; do
      still_ours "${entry%%:*}" "${entry#*:}" && alive=1
    done
    ((alive)) || return 0
    sleep 0.2
  done
  for entry in "${pids[@]}"; do
    if still_ours "${entry%%:*}" "${entry#*:}"; then
      echo "run.sh: pid ${entry%%:*} ignored its stop signal for 15 s; killing it" >&2
      kill -s KILL "${entry%%:*}" 2>/dev/null || true
    fi
  done
}

# bench.py first, so that it stops its pgbench and its daemons itself (SIGTERM ends it
# through its finally blocks); then whatever it left behind.
stop_bench_py() {
  [[ -n ${bench_pid:-} ]] && kill -0 "$bench_pid" 2>/dev/null || return 0
  kill -s TERM "$bench_pid" 2>/dev/null
  local deadline=$((SECONDS + 30))
  while kill -0 "$bench_pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$bench_pid" 2>/dev/null; then
    kill -s KILL "$bench_pid" 2>/dev/null
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  stop_bench_py
  stop_started_processes
  if [[ -n ${BENCH_KEEP:-} ]]; then
    echo "run.sh: kept $work (the logs of PostgreSQL and of every pooler are in it)" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The peers: PgBouncer 1.25 and Odyssey, built from the source snapshots by the anchors'
# build.sh into a cache outside the repository. It is idempotent: once they are built it
# only checks its packages. In the foreground, so that Ctrl-C stops it as it would stop
# it run by hand. A failure is recorded, not fatal: bench.py leaves those peers out and
# says why in the report.
export BENCH_PEERS_DIR="${BENCH_PEERS_DIR:-/var/tmp/sluice-peers}"
anchors="${BENCH_ANCHORS_DIR:-}"
if [[ -z $anchors ]]; then
  for dir in "$here/../../../shared/anchors" /work/shared/anchors; do
    if [[ -x $dir/build.sh ]]; then
      anchors="$(cd "$dir" && pwd)"
      break
    fi
  done
fi
wants_peers=1 # unless BENCH_TARGETS names neither of them
if [[ -n ${BENCH_TARGETS:-} && ! ${BENCH_TARGETS} =~ pgbouncer-1.25|odyssey ]]; then
  wants_peers=0
fi
if [[ ${BENCH_PEERS_BUILD:-1} != 0 && $wants_peers == 1 ]]; then
  if [[ -n $anchors && -x $anchors/build.sh ]]; then
    echo "run.sh: $anchors/build.sh $BENCH_PEERS_DIR (the first time: a few minutes)" >&2
    peers_rc=0
    "$anchors/build.sh" "$BENCH_PEERS_DIR" >"$work/peers-build.log" 2>&1 || peers_rc=$?
    echo "$peers_rc" >"$work/peers-build.rc"
    if ((peers_rc != 0)); then
      echo "run.sh: note: building the peers failed (exit $peers_rc); they are left out:" >&2
      tail -n 5 "$work/peers-build.log" >&2
    fi
  else
    echo "run.sh: note: no ../shared/anchors/build.sh (set BENCH_ANCHORS_DIR); using what" \
      "is already in $BENCH_PEERS_DIR" >&2
  fi
fi

# In the background and waited for: bash runs a trap only once the foreground command
# has finished, but it interrupts `wait` at once. (A background command starts with
# SIGINT ignored, so Ctrl-C reaches bench.py as the trap's SIGTERM.)
/usr/bin/python3 "$here/bench.py" "$mode" --work "$work" &
bench_pid=$!
wait "$bench_pid"
