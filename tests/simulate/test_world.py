"""Simulated ISP raw files: determinism, RADIUS sessions, sampling accuracy, truth consistency."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.config import analysis_week, week_bounds_ms
from pipeline.simulate import cache, world
from pipeline.simulate.flows import Cells, PortMix, fill_server_ports
from pipeline.simulate.run import parse_years, simulate, simulate_year
from pipeline.wire.ipfix.writer import RECORD_DTYPE_V4, RECORD_DTYPE_V6

YEAR = 2023
INTERIM_S = 6 * 3600


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    # no injected exporter faults: read_ipfix below is a minimal reader of well-formed files
    simulate(
        root / "raw", root / "truth", [YEAR], world.SimScale.preset("small"), seed=7, faults=False
    )
    return root


def _tree_sha(raw: Path) -> dict[str, str]:
    """sha256 of every raw file; the simulator's cache manifests (`simulate` writes them,
    `simulate_year` does not) are its bookkeeping, not raw inputs."""
    return {
        p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(raw.rglob("*"))
        if p.is_file() and p.relative_to(raw).parts[0] != cache.MANIFEST_DIR
    }


def read_ipfix(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Minimal independent reader for the simulator's templates: (v4 records, v6 records, N)."""
    data = path.read_bytes()
    v4, v6, interval, pos = [], [], 0, 0
    while pos < len(data):
        version, length, _, _, _ = struct.unpack_from(">HHIII", data, pos)
        assert version == 10
        set_pos = pos + 16
        while set_pos < pos + length:
            set_id, set_len = struct.unpack_from(">HH", data, set_pos)
            body = data[set_pos + 4 : set_pos + set_len]
            if set_id == 256:
                v4.append(np.frombuffer(body, RECORD_DTYPE_V4))
            elif set_id == 257:
                v6.append(np.frombuffer(body, RECORD_DTYPE_V6))
            elif set_id >= 258:  # sampling options data: selectorId, interval=1, space=N-1
                _, _, space = struct.unpack_from(">III", body)
                interval = space + 1
            set_pos += set_len
        pos += length
    cat4 = np.concatenate(v4) if v4 else np.zeros(0, RECORD_DTYPE_V4)
    cat6 = np.concatenate(v6) if v6 else np.zeros(0, RECORD_DTYPE_V6)
    return cat4, cat6, interval


@lru_cache(maxsize=8)
def exporter_records(raw: Path, service: str) -> pl.DataFrame:
    """Every record of a service's exporters: time, user-side v4, ports, protocol, bytes × N."""
    frames = []
    for e in world.exporters_of(service):
        for f in sorted((raw / "ipfix" / e.name).rglob("*.ipfix")):
            r4, r6, n = read_ipfix(f)
            assert n == e.sampling_interval
            for r, version in ((r4, 4), (r6, 6)):
                up = r["flow_direction"] == 0
                user_v4 = np.where(up, r["src_v4"], r["dst_v4"]) if version == 4 else 0
                frames.append(
                    pl.DataFrame(
                        {
                            "t": r["flow_start_ms"].astype(np.int64),
                            "version": np.full(len(r), version),
                            "user_v4": np.broadcast_to(user_v4, len(r)).astype(np.int64),
                            "proto": r["protocol"].astype(np.int64),
                            "port_min": np.minimum(r["src_port"], r["dst_port"]).astype(np.int64),
                            "upload": up,
                            "bytes_est": r["octets"].astype(np.float64) * n,
                        }
                    )
                )
    return pl.concat(frames)


RADIUS_BLOCK = re.compile(
    r"Acct-Status-Type = (\S+)\n\tAcct-Session-Id = \"(\w+)\"\n\tUser-Name = \"(s\d{7})@[\w.]+\"\n"
    r"\tClass = \"(\w+)\"\n\tFramed-IP-Address = ([\d.]+)\n\tDelegated-IPv6-Prefix = (\S+)\n"
    r"\tEvent-Timestamp = (\d+)\n(?:\tAcct-Session-Time = (\d+)\n)?"
)


def radius_sessions(raw: Path, data_end_s: int) -> pl.DataFrame:
    """Sessions rebuilt per ARCHITECTURE §1.1 from every detail file."""
    rows = []
    for f in sorted((raw / "radius").glob("detail-*")):
        text = f.read_text()
        blocks = [b for b in text.split("\n\n") if b.strip()]
        matches = [RADIUS_BLOCK.search(b) for b in blocks]
        assert all(matches), f"unparsable block in {f.name}"
        rows += [m.groups() for m in matches]
    ev = pl.DataFrame(
        rows, schema=["status", "sid", "sub", "cls", "ip", "prefix", "ts", "st"], orient="row"
    ).with_columns(pl.col("ts").cast(pl.Int64), pl.col("st").cast(pl.Int64))
    octet = [pl.col("ip").str.split(".").list.get(i).cast(pl.Int64) for i in range(4)]
    return (
        ev.group_by("sid")
        .agg(
            pl.col("sub").first(),
            pl.col("ip").first(),
            has_start=(pl.col("status") == "Start").any(),
            has_stop=(pl.col("status") == "Stop").any(),
            start=pl.when(pl.col("status") == "Start")
            .then(pl.col("ts"))
            .otherwise(pl.col("ts") - pl.col("st"))
            .min(),
            stop=pl.when(pl.col("status") == "Stop").then(pl.col("ts")).max(),
            last_interim=pl.when(pl.col("status") == "Interim-Update").then(pl.col("ts")).max(),
        )
        .with_columns(
            stop=pl.coalesce(
                "stop", pl.min_horizontal(pl.col("last_interim") + INTERIM_S, data_end_s)
            ),
            ip_int=octet[0] * 2**24 + octet[1] * 2**16 + octet[2] * 256 + octet[3],
        )
        .sort("ip_int", "start")
    )


@pytest.mark.slow  # simulates a world twice
def test_same_seed_same_bytes(sim: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    simulate_year(
        YEAR, again / "raw", again / "truth", world.SimScale.preset("small"), seed=7, faults=False
    )
    assert _tree_sha(sim / "raw") == _tree_sha(again / "raw")
    for name in ("user_week.parquet", "port_share.parquet", "unattributable_bytes.json"):
        assert (sim / "truth" / str(YEAR) / name).read_bytes() == (
            again / "truth" / str(YEAR) / name
        ).read_bytes()
    manifest = json.loads((sim / "truth" / "manifest.json").read_text())
    assert manifest["sha256"] == _tree_sha(sim / "raw")
    assert manifest["file_counts"]["ipfix"] == 8 * 168
    assert manifest["file_counts"]["radius"] == 8  # the day before the week + 7 days


def test_radius_sessions_half_open_and_addresses_reused(sim: Path) -> None:
    _, week_end_ms = week_bounds_ms(analysis_week(YEAR))
    s = radius_sessions(sim / "raw", week_end_ms // 1000)
    assert len(s) > 1000
    assert (s["start"] < s["stop"]).all()
    assert s["has_start"].sum() < len(s)  # some began before the data
    assert s["has_stop"].sum() < len(s)  # some still open at the end
    # one holder per address at a time, and reuse by another subscription within minutes
    nxt = s.with_columns(
        next_start=pl.col("start").shift(-1).over("ip_int"),
        next_sub=pl.col("sub").shift(-1).over("ip_int"),
    ).filter(pl.col("next_start").is_not_null())
    assert (nxt["next_start"] >= nxt["stop"]).all()
    reuse = nxt.filter(
        (pl.col("next_sub") != pl.col("sub")) & (pl.col("next_start") - pl.col("stop") <= 600)
    )
    assert len(reuse) > 50
    # a subscription never holds two sessions at once
    by_sub = s.sort("sub", "start").with_columns(prev_stop=pl.col("stop").shift(1).over("sub"))
    assert (
        (by_sub.drop_nulls("prev_stop").select(pl.col("start") >= pl.col("prev_stop")))
        .to_series()
        .all()
    )


def test_some_pppoe_v4_traffic_has_no_session(sim: Path) -> None:
    _, week_end_ms = week_bounds_ms(analysis_week(YEAR))
    s = radius_sessions(sim / "raw", week_end_ms // 1000)
    rec = exporter_records(sim / "raw", "pppoe").filter(pl.col("version") == 4)
    key_s = s["ip_int"].to_numpy() * 2**41 + s["start"].to_numpy() * 1000
    key_r = rec["user_v4"].to_numpy() * 2**41 + rec["t"].to_numpy()
    idx = np.searchsorted(key_s, key_r, side="right") - 1
    same_ip = s["ip_int"].to_numpy()[idx] == rec["user_v4"].to_numpy()
    inside = same_ip & (rec["t"].to_numpy() < s["stop"].to_numpy()[idx] * 1000)
    b = rec["bytes_est"].to_numpy()
    outside_pct = 100 * b[~inside].sum() / b.sum()
    assert 0.1 < outside_pct < 3.0, outside_pct
    assert (~inside).sum() > 10


def test_sampled_bytes_match_truth(sim: Path) -> None:
    truth = pl.read_parquet(sim / "truth" / str(YEAR) / "user_week.parquet")
    stray = json.loads((sim / "truth" / str(YEAR) / "unattributable_bytes.json").read_text())
    for service, protocol in (("pppoe", "pppoe"), ("ipoe", "ipoe")):
        rec = exporter_records(sim / "raw", service)
        users = truth.filter(pl.col("access_protocol") == protocol)
        for upload, col, key in ((True, "true_in_bytes", "true_in_bytes"),
                                 (False, "true_out_bytes", "true_out_bytes")):  # fmt: skip
            true_total = users[col].sum() + stray["services"][service][key]
            est = rec.filter(pl.col("upload") == upload)["bytes_est"].sum()
            assert est == pytest.approx(true_total, rel=0.03), (service, col)


def test_port_truth_sums_to_one_and_matches_flows(sim: Path) -> None:
    ports = pl.read_parquet(sim / "truth" / str(YEAR) / "port_share.parquet")
    assert set(ports["service"]) == {"broadband", "broadband_ipoe", "mobile"}
    sums = ports.group_by("service").agg(pl.col("share").sum())
    assert np.allclose(sums["share"].to_numpy(), 1.0)
    # the port truth (per cell) and the user truth (per user) agree on the broadband total
    truth = pl.read_parquet(sim / "truth" / str(YEAR) / "user_week.parquet")
    stray = json.loads((sim / "truth" / str(YEAR) / "unattributable_bytes.json").read_text())
    pppoe_total = (
        truth.filter(pl.col("access_protocol") == "pppoe")
        .select(pl.col("true_in_bytes") + pl.col("true_out_bytes"))
        .sum()
        .item()
        + stray["services"]["pppoe"]["true_in_bytes"]
        + stray["services"]["pppoe"]["true_out_bytes"]
    )
    bb = ports.filter(pl.col("service") == "broadband")
    assert bb["true_bytes"].sum() == pytest.approx(pppoe_total, rel=1e-9)
    # min-port shares measured on the written records are close to the truth for big rows
    rec = exporter_records(sim / "raw", "pppoe")
    est = rec.group_by("proto", "port_min").agg(pl.col("bytes_est").sum())
    est = est.with_columns(est_share=pl.col("bytes_est") / pl.col("bytes_est").sum())
    big = bb.filter(pl.col("share") > 0.05).join(
        est, left_on=["protocol", "port_min"], right_on=["proto", "port_min"], how="left"
    )
    assert len(big) >= 2
    assert (big["est_share"] - big["share"]).abs().max() < 0.02


def test_mobile_flows_written(sim: Path) -> None:
    rec = exporter_records(sim / "raw", "mobile")
    assert len(rec) > 10_000
    assert set(rec["version"].unique()) == {4, 6}


def test_ephemeral_ports_above_server_ports() -> None:
    mix = PortMix.from_frame(
        pl.DataFrame(
            {
                "protocol": [6, 6, 17, 6, 50],
                "server_port": [443, 31000, 51820, -1, -1],
                "kind": ["server", "server", "server", "p2p", "noport"],
                "share": [0.2] * 5,
                "bytes_per_packet_in": [100.0] * 5,
                "bytes_per_packet_out": [1000.0] * 5,
            }
        )
    )
    n = 50_000
    cat = np.arange(n) % 5
    cells = Cells(
        user=np.zeros(n, np.int64), hour=np.zeros(n, np.int64), category=cat,
        upload=np.ones(n, bool), packets=np.ones(n, np.uint64), octets=np.ones(n, np.uint64),
        user_port=np.full(n, 5000), remote_port=np.full(n, 6000),
    )  # fmt: skip
    fill_server_ports(cells, mix, np.random.default_rng(0))
    server_port = np.array([443, 31000, 51820, 6000, 0])[cat]
    assert (cells.remote_port == server_port).all()
    assert (cells.user_port[cat == 0] >= 49152).all()
    assert cells.user_port[cat == 1].min() >= 49152  # > 31000
    assert cells.user_port[cat == 2].min() > 51820
    assert cells.user_port[cat == 2].max() <= 65535
    assert (cells.user_port[cat == 3] == 5000).all()  # p2p ports drawn with the cell, kept
    assert (cells.user_port[cat == 4] == 0).all()


def test_parse_years() -> None:
    assert parse_years("2019-2021") == [2019, 2020, 2021]
    assert parse_years("2024,2019") == [2019, 2024]


def test_active_hours_follow_the_profile_and_conserve_bytes() -> None:
    """5,000 equal users with 6 active hours: the bytes of each hour-of-week follow the profile
    to ~6 % RMS; independent per-user draws (the former scheme) leave 10-12 %."""
    from pipeline.simulate.flows import choose_active_hours

    hour = np.arange(168) % 24
    w = 1.0 + 0.8 * np.sin(2 * np.pi * hour / 24)  # independent test profile, min 0.2, max 1.8
    hour_w = {"IN": w / w.sum(), "OUT": w / w.sum()}
    n_users = 5000
    user, h, weight = choose_active_hours(
        np.full(n_users, 6.0), hour_w, np.full(n_users, 1e9), np.random.default_rng(4)
    )
    for d in range(2):  # every user's bytes add up to exactly its weekly bytes
        assert np.allclose(np.bincount(user, weights=weight[:, d], minlength=n_users), 1.0)
    per_hour = np.bincount(h, weights=weight[:, 1], minlength=168) / n_users
    rel = per_hour / hour_w["OUT"] - 1
    assert np.sqrt((rel**2).mean()) < 0.075, np.sqrt((rel**2).mean())
    assert 5.5 < np.bincount(user).mean() < 6.5
    # a heavy user's hours get far less jitter than a median user's
    bytes_ = np.full(n_users, 1e9)
    bytes_[0] = 1e13
    user, h, weight = choose_active_hours(
        np.full(n_users, 168.0), hour_w, bytes_, np.random.default_rng(5)
    )
    heavy = weight[user == 0, 1] / hour_w["OUT"][h[user == 0]]
    median_user = weight[user == 1, 1] / hour_w["OUT"][h[user == 1]]
    assert np.std(np.log(heavy)) < 0.01 < 0.15 < np.std(np.log(median_user))


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def test_same_key_reuses_the_files_and_writes_nothing(sim: Path) -> None:
    before = _mtimes(sim)
    out = simulate_year(
        YEAR, sim / "raw", sim / "truth", world.SimScale.preset("small"), seed=7, faults=False
    )
    assert out["reused"] is True
    assert _mtimes(sim) == before, "a year with a matching cache key was written again"
    manifest = json.loads(cache.manifest_path(sim / "raw", YEAR).read_text())
    assert out["sha256"] == manifest["summary"]["sha256"]


def test_another_key_or_a_damaged_file_is_not_reused(sim: Path) -> None:
    small = world.SimScale.preset("small").as_dict()
    key = cache.simulator_key(YEAR, small, 7, "ipfix", False)
    assert cache.reusable(sim / "raw", sim / "truth", key) is not None
    other_seed = cache.simulator_key(YEAR, small, 8, "ipfix", False)
    assert cache.reusable(sim / "raw", sim / "truth", other_seed) is None
    victim = sorted((sim / "raw" / "radius").glob("detail-*"))[0]
    moved = victim.with_name(victim.name + ".away")
    victim.rename(moved)
    try:
        assert cache.reusable(sim / "raw", sim / "truth", key) is None
    finally:
        moved.rename(victim)
    assert cache.reusable(sim / "raw", sim / "truth", key) is not None
