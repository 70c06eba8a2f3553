#!/usr/bin/env bash
# CI's one step (.github/workflows/annual-report.yml): the README's command for YEAR (default: the
# latest report year), at SCALE (default: default), then check the artifact folder and hand its
# year to the workflow ($GITHUB_OUTPUT). Usage: bash scripts/ci-annual-report.sh [YEAR]
set -euo pipefail
cd "$(dirname "$0")/.."
YEAR="${1:-}"
if [ -z "$YEAR" ]; then
  bash scripts/setup.sh
  YEAR=$(.venv/bin/python -c 'from pipeline.config import report_years; print(report_years()[-1])')
fi
make --no-print-directory report YEAR="$YEAR" SCALE="${SCALE:-default}"
out="${BBTR_REPORTS_DIR:-reports}/$YEAR"
if [ ! -s "$out/report.pdf" ]; then
  echo "ci: $out/report.pdf was not written" >&2
  exit 1
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "year=$YEAR" >> "$GITHUB_OUTPUT"
fi
echo "ci: artifact folder $out ($(ls "$out" | wc -l) entries)"
