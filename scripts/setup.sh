#!/usr/bin/env bash
# One-time set-up: system packages (WeasyPrint libraries, poppler, nfdump, softflowd, tshark), then a
# locked virtualenv in .venv.
# Idempotent: skips apt when everything is present and reuses an up-to-date .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# WeasyPrint's libraries and fonts, pdftotext/pdftoppm; nfdump (nfcapd/nfdump: reference reader
# and writer of nfcapd files), softflowd (real exporter) and tshark (reference decoder) for the
# flow-tool comparison tests.
APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig
              fonts-dejavu-core fonts-liberation2 poppler-utils nfdump softflowd tshark)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
stamp=.venv/.lock-sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv from requirements.lock"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
  .venv/bin/uv pip install -q --python .venv/bin/python --require-hashes -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi

# Byte-compile the venv once per lock: a build then imports dagster & co. from .pyc even where
# PYTHONDONTWRITEBYTECODE=1 is set (else each build compiles them from source: ~12 s of a
# no-change rebuild on the 2-core machine).
if [ "$(cat .venv/.compiled 2>/dev/null)" != "$want" ]; then
  echo "setup: byte-compiling .venv"
  .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
  echo "$want" > .venv/.compiled
fi

