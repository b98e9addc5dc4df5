#!/usr/bin/env bash
# Idempotent set-up: a virtual environment with the project and its pinned dependencies, plus the Debian packages
# and offline files the data importers read. Fast (a few seconds) when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Debian packages that hold real data (emoji font + names, OpenClipart, Fashion-MNIST, Python docs, fortunes).
DEB_PKGS="fonts-noto-color-emoji unicode-data openclipart-svg dataset-fashion-mnist python3.11-doc fortunes"
missing=""
for p in $DEB_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages:$missing"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    say "WARNING: Debian packages missing:$missing (run as root: apt-get install$missing); tests that need them skip"
  fi
fi

# 2. Virtual environment with the project (editable) and dev tools; reinstalled only when pyproject.toml changes.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
here=$(.venv/bin/python -c "import quartet, pathlib; print(pathlib.Path(quartet.__file__).resolve().parents[2])" 2>/dev/null || true)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ] || [ "$here" != "$ROOT" ]; then
  say "installing Python packages (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$stamp" > .venv/.setup-stamp
fi

# 3. Offline data files (GPT-2 BPE ranks, OpenMoji, Debian description lists) into the cache; no-op when present.
.venv/bin/quartet data install --all >&2 || say "WARNING: some data sources could not be installed (see above)"
