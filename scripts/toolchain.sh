#!/usr/bin/env bash
# Creates the project-local Python toolchain (.venv at the repo root) with the pinned
# tools from scripts/requirements-dev.txt. Idempotent and quiet on success: a stamp file
# in .venv records the requirement set, so a re-run with nothing changed returns at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$root/.venv"
requirements="$here/requirements-dev.txt"
stamp="$venv/.herald-toolchain.stamp"
python="${PYTHON:-python3}"

die() { echo "toolchain: $*" >&2; exit 1; }

[[ -f "$requirements" ]] || die "missing $requirements"
# The stamp covers the requirements and the venv's interpreter (pyvenv.cfg), so a change
# of either reinstalls. Computed without starting Python, to keep the no-op run fast.
fingerprint() { cat "$requirements" "$venv/pyvenv.cfg" 2>/dev/null | sha256sum | cut -d' ' -f1; }
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$(fingerprint)" ]]; then
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON=/path/to/python3.10+)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$python is $("$python" -V 2>&1); aws-sam-cli needs Python >= 3.10"

log="$(mktemp "${TMPDIR:-/tmp}/herald-toolchain.XXXXXX")"
trap 'rm -f "$log"' EXIT
fail() { cat "$log" >&2; die "$*"; }

# A venv whose interpreter is gone (Python upgraded or removed) is rebuilt from scratch.
if [[ -d "$venv" ]] && ! "$venv/bin/python" -c 'pass' >/dev/null 2>&1; then
  rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv" >"$log" 2>&1 \
    || fail "could not create $venv (on Debian/Ubuntu: apt-get install python3-venv)"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --no-input -r "$requirements" </dev/null >"$log" 2>&1 \
  || fail "pip install -r scripts/requirements-dev.txt failed (log above)"
"$venv/bin/python" -m pip check >"$log" 2>&1 || fail "pip check found broken requirements (log above)"

fingerprint >"$stamp"
