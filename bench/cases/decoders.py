"""IPFIX / NetFlow decoders on whole streams vs a numpy.frombuffer floor over the bare records."""

from __future__ import annotations

from pathlib import Path


def warm_up() -> None:
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401

    import pipeline.wire.ipfix.decoder  # noqa: F401


def ipfix_file(path: str) -> int:
    """FlowDecoder.decode of an IPFIX file: records decoded."""
    from pipeline.wire.ipfix.decoder import FlowDecoder

    result = FlowDecoder("bench", 1).decode(Path(path).read_bytes(), "bench")
    assert not result.quarantine, result.stats
    return result.stats.records_decoded


def datagrams(path: str) -> int:
    """FlowDecoder.decode_datagrams of length-prefixed datagrams (u32 each, as from a pcap)."""
    import numpy as np

    from pipeline.wire.ipfix.decoder import FlowDecoder

    raw = Path(path).read_bytes()
    index = np.load(path + ".index.npy")  # starts, lengths of the datagrams in raw
    starts, lengths = index[0], index[1]
    offsets = starts + 24
    result = FlowDecoder("bench", None).decode_datagrams(raw, starts, lengths, offsets, "bench")
    assert not result.quarantine, result.stats
    return result.stats.records_decoded


def frombuffer_floor(path: str, dtype: list, count: int) -> int:
    """np.frombuffer of `count` contiguous records with the wire dtype, each field to a native
    column."""
    import numpy as np

    dt = np.dtype([(name, code) for name, code in dtype])
    with open(path, "rb") as fh:
        raw = fh.read(count * dt.itemsize)
    records = np.frombuffer(raw, dtype=dt)
    columns = {name: records[name].astype(dt[name].newbyteorder("=")) for name in dt.names}
    return len(columns[dt.names[0]])
