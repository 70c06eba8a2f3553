"""Vectorised parsing of IPv4 addresses and IPv6 prefixes written as text (RADIUS, lease CSVs)."""

from __future__ import annotations

import numpy as np
import polars as pl

_IPV4 = r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"
_IPV6_PREFIX = r"^([0-9A-Fa-f:]+)/(\d{1,3})$"
_HEX_GROUPS = r"^([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*)?$"
MAX_PREFIX_LEN = (
    64  # attribution matches on the upper 64 bits (params: attribution.ipv6_match_bits)
)


def ipv4_text_to_uint32(text: pl.Series) -> pl.Series:
    """Dotted-quad text → uint32; null where the text is null or not a valid IPv4 address."""
    octets = pl.DataFrame({"t": text.cast(pl.String).str.strip_chars()}).select(
        ok=pl.col("t").str.contains(_IPV4),  # a match test and a split: ~3x faster than groups
        parts=pl.col("t").str.split_exact(".", 3),
    )
    parts = octets.get_column("parts").struct.unnest()
    parts = [parts.get_column(c).cast(pl.UInt32, strict=False) for c in parts.columns]
    valid = octets.get_column("ok").fill_null(False)
    for part in parts:
        valid = valid & part.is_not_null() & (part <= 255)
    value = parts[0] * 16_777_216 + parts[1] * 65_536 + parts[2] * 256 + parts[3]
    return value.cast(pl.UInt32).zip_with(
        valid.fill_null(False), pl.Series([None], dtype=pl.UInt32)
    )


def ipv6_prefix_text_to_hi_len(text: pl.Series) -> pl.DataFrame:
    """`2001:db8:1200:3400::/56` text → (v6_prefix_hi uint64 network upper 64 bits, v6_prefix_len
    uint8); both null where the text is null, malformed, or the length is not 1..64."""
    df = pl.DataFrame({"t": text.cast(pl.String)}).select(
        pl.col("t").str.strip_chars().str.extract_groups(_IPV6_PREFIX).struct.unnest()
    )
    df.columns = ["addr", "plen"]
    halves = pl.col("addr").str.split("::")
    parsed = df.with_columns(
        left=halves.list.get(0, null_on_oob=True),
        right=halves.list.get(1, null_on_oob=True).fill_null(""),
        compressed=halves.list.len() == 2,
        n_halves=halves.list.len(),
    ).with_columns(
        left_groups=pl.col("left").str.split(":").list.filter(pl.element() != ""),
        right_groups=pl.col("right").str.split(":").list.filter(pl.element() != ""),
        syntax_ok=(pl.col("n_halves") <= 2)
        & pl.col("left").str.contains(_HEX_GROUPS)
        & pl.col("right").str.contains(_HEX_GROUPS),
    )
    parsed = parsed.with_columns(
        missing=8 - pl.col("left_groups").list.len() - pl.col("right_groups").list.len()
    ).with_columns(
        count_ok=pl.when(pl.col("compressed"))
        .then(pl.col("missing") >= 1)
        .otherwise(pl.col("missing") == 0),
        groups=pl.concat_list(
            "left_groups",
            pl.lit("0").repeat_by(pl.col("missing").clip(0, 8)),
            "right_groups",
        ),
    )
    group_cols = [
        pl.col("groups").list.get(i, null_on_oob=True).str.to_integer(base=16, strict=False)
        for i in range(4)
    ]
    halves_df = parsed.select(
        *[g.cast(pl.UInt64).alias(f"g{i}") for i, g in enumerate(group_cols)],
        plen=pl.col("plen").cast(pl.Int64, strict=False),
        ok=(pl.col("syntax_ok") & pl.col("count_ok")).fill_null(False),
    )
    g = [halves_df.get_column(f"g{i}").fill_null(0).to_numpy().astype(np.uint64) for i in range(4)]
    plen = halves_df.get_column("plen").fill_null(0).to_numpy().astype(np.int64)
    ok = halves_df.get_column("ok").to_numpy() & (plen >= 1) & (plen <= MAX_PREFIX_LEN)
    hi = (g[0] << np.uint64(48)) | (g[1] << np.uint64(32)) | (g[2] << np.uint64(16)) | g[3]
    host_bits = (MAX_PREFIX_LEN - np.clip(plen, 1, MAX_PREFIX_LEN)).astype(np.uint64)
    network_hi = (hi >> host_bits) << host_bits  # host bits set in the text are cleared
    return pl.DataFrame(
        {
            "v6_prefix_hi": pl.Series(network_hi, dtype=pl.UInt64),
            "v6_prefix_len": pl.Series(plen.clip(0, 255).astype(np.uint8), dtype=pl.UInt8),
            "ok": ok,
        }
    ).select(
        pl.when("ok").then("v6_prefix_hi").alias("v6_prefix_hi"),
        pl.when("ok").then("v6_prefix_len").alias("v6_prefix_len"),
    )
