"""Attribution tasks over a warehouse store: each names the keys it fetches (its flow partition,
the weekly reference files of its service that can hold holders of its day) and its output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.attribute.year import _staged_tasks
from pipeline.config import Paths
from pipeline.storage.store import Store

DAY = dt.date(2019, 6, 3)


def test_a_task_names_its_partition_and_the_reference_files_that_can_matter(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    paths = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "host"), "BBTR_STORE_URL": url})
    warehouse = Store.from_url(f"{url}/warehouse")
    for week in ("2018-06-04", "2019-06-03", "2019-06-04", "2019-06-05", "2020-06-01"):
        warehouse.put_bytes(f"reference/pppoe_sessions/week={week}.parquet", b"")
    warehouse.put_bytes("reference/ipoe_leases/week=2019-06-03.parquet", b"")
    exporters = [{"name": "bras01", "service": "pppoe"}, {"name": "gw01", "service": "mobile"}]
    pppoe, mobile = _staged_tasks(paths, [DAY], exporters, "salt")
    assert pppoe[0].reads == {
        "warehouse": (
            "flows/date=2019-06-03/exporter=bras01/flows.parquet",
            "reference/pppoe_sessions/week=2018-06-04.parquet",
            "reference/pppoe_sessions/week=2019-06-03.parquet",
            "reference/pppoe_sessions/week=2019-06-04.parquet",  # starts in the day's margin
        )  # not 2019-06-05 (starts where the margin ends) nor 2020
    }
    assert pppoe[0].writes == {
        "warehouse": ("attributed/date=2019-06-03/exporter=bras01/flows.parquet",)
    }
    assert mobile[0].reads == {"warehouse": ("flows/date=2019-06-03/exporter=gw01/flows.parquet",)}
    assert pppoe[0].urls["warehouse"] == f"{url}/warehouse" and pppoe[1:] == (
        DAY,
        exporters[0],
        "salt",
    )
