# The two commands of the README. Both run scripts/setup.sh first (system packages + locked .venv).
YEAR ?= 2024
SCALE ?= default
FLOW_FORMAT ?= ipfix
FORCE ?=
BENCH ?=

.PHONY: report test test-quick bench ui lint collect

report:            ## simulate the ISP, run what changed of the Dagster graph for 2019..YEAR, write reports/YEAR/ (FORCE=1: everything)
	bash scripts/build-report.sh --year $(YEAR) --scale $(SCALE) --flow-format $(FLOW_FORMAT) $(if $(FORCE),--force)

test:              ## the test suite (what CI runs)
	bash scripts/test.sh

test-quick:        ## all but the slow tests (end-to-end build, fuzz run, real-tool runs, determinism)
	bash scripts/test.sh -m "not slow"

bench:             ## side-by-side speed and memory figures → bench/results/ (BENCH="--only attribution --scale 10m")
	bash scripts/setup.sh && .venv/bin/python -m bench $(BENCH)

collect:           ## live UDP collector of NetFlow/IPFIX exports → data/raw/collector/<date>/*.pcap
	bash scripts/setup.sh && .venv/bin/python -m pipeline.collect --listen 0.0.0.0:2055 \
		--listen [::]:4739 --rotate-seconds 300 --rcvbuf 8388608

ui:                ## the Dagster UI on http://127.0.0.1:3000
	bash scripts/ui.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/python scripts/check_imports.py
