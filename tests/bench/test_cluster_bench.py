"""The Dask bench's bookkeeping on fixed inputs: loopback bytes, medians, rows (nothing timed)."""

from __future__ import annotations

import pytest

from bench.cluster import Run, as_rows, loopback_bytes, markdown, process_cpu_s, summarise, tsv

PROC_NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop
  eth0: 999 1 0 0 0 0 0 0 5 1 0 0
    lo: 182362040   78877    0    0    0     0          0         0 182362040   78877    0    0
"""


def test_loopback_bytes_reads_the_lo_line() -> None:
    assert loopback_bytes(PROC_NET_DEV) == 182_362_040
    with pytest.raises(ValueError, match="no loopback"):
        loopback_bytes(PROC_NET_DEV.replace("lo:", "xx:"))
    assert loopback_bytes() >= 0  # this machine's own


def test_process_cpu_of_a_missing_process_is_zero() -> None:
    assert process_cpu_s(2**22 + 12345) == 0.0


def test_medians_per_setup_and_stage_with_the_local_pool_as_baseline() -> None:
    runs = [
        Run("local pool, 2 processes", "ingest", 4.0, 5.0, 1000, 100, None),
        Run("dask, 1 worker", "ingest", 3.0, 2.0, 1000, 3000, 600),
        Run("dask, 1 worker", "ingest", 5.0, 4.0, 1000, 5000, 800),
        Run("dask, 1 worker", "ingest", 4.0, 3.0, 1000, 4000, 700),
    ]
    local, dask = summarise(runs)
    assert (dask.repeats, dask.wall_s, dask.cpu_s, dask.flows_per_s) == (3, 4.0, 3.0, 250.0)
    assert (dask.lo_bytes_per_flow, dask.lo_min_bytes_per_flow, dask.dask_sent_bytes) == (
        4.0,
        3.0,
        700,
    )
    assert local.dask_sent_bytes is None and local.lo_bytes_per_flow == 0.1
    rows = as_rows([local, dask], "0.1 0.1 0.1")
    assert [r.role for r in rows] == ["baseline", "contender"]
    assert rows[1].wall_ratio == 1.0 and rows[1].cpu_ratio == 0.6
    assert "| ingest | dask, 1 worker | 1000 | 4.00 | 3.00 | 250 | 4.0, 3.0 | 700 |" in markdown(
        [local, dask], "local"
    )
    assert tsv([local, dask]).splitlines()[2].split("\t")[-1] == "700"
