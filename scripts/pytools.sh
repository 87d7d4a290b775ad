#!/usr/bin/env bash
# Installs the Python tools that tests use (scripts/pytools.txt: pinned NAME==VERSION lines)
# from PyPI into one venv, once: a marker file per requirement says it is there, and a lock
# file keeps parallel callers (test binaries, .ci/run) from installing at the same time.
#   scripts/pytools.sh [NAME...]    # no NAME: every requirement of scripts/pytools.txt
# The venv is $GSCRAPE_PYTOOLS_VENV, else ${CARGO_TARGET_DIR:-target}/pytools-venv. Prints its
# path on the last line of stdout; exits non-zero (saying why on stderr) when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${GSCRAPE_PYTOOLS_VENV:-${CARGO_TARGET_DIR:-target}/pytools-venv}"
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"

wanted=()
while read -r line; do
  line="${line%%#*}"
  line="${line//[[:space:]]/}"
  [ -n "$line" ] || continue
  if [ "$#" -eq 0 ]; then
    wanted+=("$line")
  else
    for name in "$@"; do
      if [ "${line%%==*}" = "$name" ]; then wanted+=("$line"); fi
    done
  fi
done < scripts/pytools.txt
if [ "$#" -gt 0 ] && [ "${#wanted[@]}" -ne "$#" ]; then
  echo "pytools: not every one of $* is pinned in scripts/pytools.txt" >&2
  exit 2
fi

exec 9>"$venv.lock"
flock 9

missing=()
for requirement in "${wanted[@]}"; do
  [ -f "$venv/.installed/$requirement" ] || missing+=("$requirement")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v python3 >/dev/null || { echo "pytools: no python3 on PATH" >&2; exit 1; }
  if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || {
      echo "pytools: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
      rm -rf "$venv"
      exit 1
    }
  fi
  echo "pytools: installing ${missing[*]} into $venv" >&2
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet \
    --retries 2 --timeout 30 --only-binary :all: "${missing[@]}" >&2 || {
    echo "pytools: pip install ${missing[*]} failed (it needs PyPI)" >&2
    exit 1
  }
  mkdir -p "$venv/.installed"
  for requirement in "${missing[@]}"; do touch "$venv/.installed/$requirement"; done
fi
echo "$venv"
