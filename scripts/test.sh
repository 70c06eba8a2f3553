#!/usr/bin/env bash
# Run the test suite (unit tests, then the small-scale end-to-end build) after set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check pipeline tests bench scripts
.venv/bin/python scripts/check_imports.py
exec .venv/bin/python -m pytest -q "$@"
