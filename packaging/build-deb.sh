#!/usr/bin/env bash
# Builds the Debian package (debian/) with Debian's compilers and libraries:
# sluice_<version>_<arch>.deb and its -dbgsym, in build-deb/ (or $OUT_DIR).
#
#   packaging/build-deb.sh                 # the missing Build-Depends, then dpkg-buildpackage
#   OUT_DIR=/tmp/debs JOBS=1 packaging/build-deb.sh
#   LINTIAN=1 packaging/build-deb.sh       # then lintian on the result (installs lintian)
#
# OUT_DIR keeps only this build's sluice_* files: older ones there are deleted.
#
# It builds from a copy of the tree (the files git knows, plus new ones it does not ignore) in
# a temporary directory, so build/ and the other build directories are neither used nor
# touched, and dpkg-buildpackage's output (written to the parent of the tree it builds) never
# lands beside the checkout. The package's tests (DEB_BUILD_OPTIONS=nocheck) are not run:
# scripts/test.sh runs them, and tests/packaging/ tests the package itself (test_deb_contents.py
# what it holds, test_deb_install.py installing, running and purging it).
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir="$PWD"
out_dir="${OUT_DIR:-$source_dir/build-deb}"
jobs="${JOBS:-2}"

say() { printf 'build-deb: %s\n' "$*" >&2; }

# Root (or sudo) is needed only when something is missing: scripts/deps.sh installs the
# Build-Depends, and then this script never touches apt (no apt-get update, no network).
apt_install() {
  local sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      say "not root and no sudo: cannot install $*"
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  local apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -q)
  if [[ -z "${apt_updated:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" update >/dev/null ||
      say "warning: apt-get update reported errors; trying the install anyway"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" "$@" >/dev/null
}

if ! command -v dpkg-buildpackage >/dev/null 2>&1; then
  apt_install install -y --no-install-recommends build-essential dpkg-dev
fi
# Build-Depends straight from debian/control.
if ! (cd "$source_dir" && dpkg-checkbuilddeps) 2>/dev/null; then
  say "installing the Build-Depends of debian/control"
  apt_install build-dep -y --no-install-recommends "$source_dir"
fi

work="$(mktemp -d /tmp/sluice-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/sluice"
if git -C "$source_dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Deleted-but-not-committed files are listed yet absent: keep only those that exist.
  git -C "$source_dir" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
    tar -C "$source_dir" --null -T - -cf - | tar -C "$work/sluice" -xf -
else
  tar -C "$source_dir" --exclude='./build' --exclude='./build-*' --exclude='node_modules' \
    -cf - . | tar -C "$work/sluice" -xf -
fi

say "dpkg-buildpackage in $work/sluice (-j$jobs)"
started=$SECONDS
(cd "$work/sluice" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -us -uc -b)
say "built in $((SECONDS - started)) s"

mkdir -p "$out_dir"
shopt -s nullglob
# Only this build's artifacts in out_dir, so that whoever reads it finds exactly one package.
rm -f "$out_dir"/sluice_* "$out_dir"/sluice-dbgsym_*
artifacts=("$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes)
mv -f "${artifacts[@]}" "$out_dir"/
for f in "${artifacts[@]}"; do say "wrote $out_dir/$(basename "$f")"; done

if [[ -n "${LINTIAN:-}" ]]; then
  command -v lintian >/dev/null 2>&1 || apt_install install -y --no-install-recommends lintian
  changes=("$out_dir"/sluice_*.changes)
  lintian --info --display-info "${changes[-1]}"
fi
