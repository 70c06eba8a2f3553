"""History store: atomic per-year Parquet, read back, and the published IIJ values."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from pipeline.aggregate import history
from pipeline.config import PUBLISHED_DIR


def _summary(year: int, mean_mb: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "year": [year, year],
            "service": ["broadband", "broadband"],
            "direction": ["IN", "OUT"],
            "users": [10, 10],
            "mean_mb": [mean_mb, mean_mb * 7],
            "median_mb": [1.0, 2.0],
            "mode_mb": [1.2589254, 3.1622777],
            "mode_log10": [6.1, 6.5],
        }
    )


def test_round_trip(tmp_path: Path) -> None:
    path = history.write_history(tmp_path, "daily_usage_summary", 2024, _summary(2024, 800.0))
    assert path == tmp_path / "daily_usage_summary" / "year=2024.parquet"
    history.write_history(tmp_path, "daily_usage_summary", 2023, _summary(2023, 700.0))
    back = history.read_history(tmp_path, "daily_usage_summary")
    assert back["year"].to_list() == [2023, 2023, 2024, 2024]  # oldest first
    assert back["mean_mb"].to_list() == [700.0, 4900.0, 800.0, 5600.0]
    assert set(back["source"]) == {"measured"}
    only = history.read_history(tmp_path, "daily_usage_summary", years=[2024])
    assert only.drop("source").equals(_summary(2024, 800.0))


def test_overwrite_is_atomic_and_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    history.write_history(
        tmp_path,
        "top_user_share",
        2024,
        pl.DataFrame(
            {"service": ["mobile"], "direction": ["IN"], "top_pct": [10.0], "share_pct": [45.0]}
        ),
    )
    folder = tmp_path / "top_user_share"

    # a write that fails half-way keeps the old file and removes its temp file
    def boom(self: pl.DataFrame, file: str, **_: object) -> None:
        Path(file).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError):
        history.write_history(
            tmp_path,
            "top_user_share",
            2024,
            pl.DataFrame(
                {"service": ["mobile"], "direction": ["IN"], "top_pct": [10.0], "share_pct": [1.0]}
            ),
        )
    monkeypatch.undo()
    assert sorted(os.listdir(folder)) == ["year=2024.parquet"]
    assert history.read_history(tmp_path, "top_user_share")["share_pct"].to_list() == [45.0]
    history.write_history(
        tmp_path,
        "top_user_share",
        2024,
        pl.DataFrame(
            {"service": ["mobile"], "direction": ["IN"], "top_pct": [10.0], "share_pct": [48.0]}
        ),
    )
    back = history.read_history(tmp_path, "top_user_share")
    assert back["share_pct"].to_list() == [48.0] and back["year"].to_list() == [2024]
    assert sorted(os.listdir(folder)) == ["year=2024.parquet"]


def test_rejects_rows_of_another_year(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2023"):
        history.write_history(tmp_path, "daily_usage_summary", 2024, _summary(2023, 1.0))


def test_missing_table_reads_empty_with_schema(tmp_path: Path) -> None:
    empty = history.read_history(tmp_path, "usage_by_port")
    assert empty.height == 0
    assert empty.columns == [
        "year",
        "service",
        "row_id",
        "protocol",
        "port_label",
        "row_kind",
        "parent",
        "share_pct",
        "sort_key",
        "share_pct_lo",
        "share_pct_hi",
        "source",
    ]


def _require_published() -> None:
    if not PUBLISHED_DIR.is_dir():
        pytest.skip(f"published tables not available: {PUBLISHED_DIR} is absent")


def test_published_table1_and_table2_rows() -> None:
    _require_published()
    pub = history.published_history("daily_usage_summary")
    assert set(pub["source"]) == {"published"}
    bb = pub.filter(pl.col("service") == "broadband")
    assert bb["year"].min() == 2007 and bb["year"].max() == 2024 and bb.height == 36
    row = bb.filter(pl.col("year") == 2018, pl.col("direction") == "OUT").row(0, named=True)
    assert (row["mean_mb"], row["median_mb"], row["mode_mb"]) == (2664.0, 1083.0, 1585.0)
    assert row["mode_log10"] == pytest.approx(9.2, abs=0.001)  # 1585 MB = 10^3.2 MB
    mob = pub.filter(pl.col("service") == "mobile")
    assert sorted(set(mob["year"])) == list(range(2015, 2025))
    out_2024 = mob.filter(pl.col("year") == 2024, pl.col("direction") == "OUT")
    assert out_2024["mode_mb"].to_list() == [112.0]
    assert mob.filter(pl.col("year") == 2015, pl.col("direction") == "IN")["mode_mb"].to_list() == [
        4.5
    ]
    assert pub.columns == list(history.table_schema("daily_usage_summary"))


def test_published_growth_values() -> None:
    _require_published()
    g = history.published_history("growth_statistics")
    assert set(g["source"]) == {"published"}
    v = {
        (y, m, s, d): x
        for y, m, s, d, x in g.select("year", "metric", "service", "direction", "value").rows()
    }
    assert v[(2024, "yoy_pct", "broadband", "IN")] == 14.0
    assert v[(2023, "yoy_pct", "mobile", "OUT")] == 31.0
    assert v[(2024, "ipoe_share_pct", "broadband", "OUT")] == 48.0
    assert v[(2020, "ipoe_share_pct", "broadband", "IN")] == 24.0
    assert not any(m == "ipoe_share_pct" and y == 2025 for y, m, _, _ in v)  # no value stated


def test_published_ports_and_unknown_table() -> None:
    _require_published()
    ports = history.published_history("usage_by_port")
    tcp = ports.filter(
        pl.col("service") == "broadband",
        pl.col("year") == 2024,
        pl.col("row_id").is_in(["tcp_total", "tcp_lt1024", "tcp_ge1024"]),
    )
    assert dict(tcp.select("row_id", "share_pct").rows()) == {
        "tcp_total": 67.5,
        "tcp_lt1024": 61.1,
        "tcp_ge1024": 6.4,
    }
    assert history.published_history("scatter_sample").height == 0
    assert "source" in history.published_history("scatter_sample").columns


def test_published_dir_absent_gives_empty_frame(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(history, "PUBLISHED_DIR", tmp_path / "nowhere")
    empty = history.published_history("daily_usage_summary")
    assert empty.height == 0 and empty.columns == list(history.table_schema("daily_usage_summary"))
