#!/usr/bin/env bash
# Build the annual report headlessly: set-up, then materialise every asset for each report year up to --year.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
exec .venv/bin/python -m pipeline.build "$@"
