#!/usr/bin/env bash
# Build the annual report headlessly: set-up, then materialise what changed for each report year up
# to --year (--force: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
.venv/bin/python -m compileall -q pipeline >/dev/null 2>&1 || true  # cheap when unchanged
exec .venv/bin/python -m pipeline.build "$@"
