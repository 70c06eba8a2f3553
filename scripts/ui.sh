#!/usr/bin/env bash
# The Dagster UI on http://127.0.0.1:3000 over the project's instance (.dagster_home, whose
# dagster.yaml turns telemetry off and captures the stage functions' log lines into each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
.venv/bin/python -m pipeline.buildlog "$DAGSTER_HOME"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 "$@"
