"""The nfcapd reader on a whole file vs the floor of touching its bytes (nfdump: a command)."""

from __future__ import annotations

from pathlib import Path


def warm_up() -> None:
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401

    import pipeline.wire.nfcapd.reader  # noqa: F401


def read_all(path: str) -> int:
    """read_nfcapd: every record decoded to columns; records decoded."""
    from pipeline.wire.nfcapd.reader import read_nfcapd

    return sum(p.result.stats.records_decoded for p in read_nfcapd(Path(path)))


def bytes_by_protocol(path: str) -> int:
    """read_nfcapd, then total octets by protocol (nfdump -s proto/bytes): records read."""
    import pyarrow as pa

    from pipeline.wire.nfcapd.reader import read_nfcapd

    parts = [p.result.flows.select(["protocol", "octets"]) for p in read_nfcapd(Path(path))]
    table = pa.concat_tables(parts)
    totals = table.group_by("protocol").aggregate([("octets", "sum")])
    assert totals.num_rows > 0
    return table.num_rows


def bytes_floor(path: str, records: int) -> int:
    """Read the file and sum it as uint64 words (numpy.frombuffer): every byte touched once."""
    import numpy as np

    data = Path(path).read_bytes()
    words = np.frombuffer(data, dtype=np.uint8, count=len(data) // 8 * 8).view(np.uint64)
    int(words.sum())
    return records
