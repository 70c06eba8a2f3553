"""NetFlow v5/v9 sysUptime arithmetic: 32-bit, wrapping milliseconds since the exporter booted."""

from __future__ import annotations

import numpy as np


def uptime_to_epoch_ms(
    export_ms: np.ndarray, uptime_ms: np.ndarray, at_ms: np.ndarray
) -> np.ndarray:
    """sysUptime-relative instants (ms, 32-bit) → epoch ms, given the export time and uptime then.

    The signed 32-bit difference handles uptime wrapping between the flow and the export.
    """
    diff = (uptime_ms.astype(np.int64) - at_ms.astype(np.int64) + 2**31) % 2**32 - 2**31
    return export_ms - diff


def epoch_to_uptime_ms(t_ms: np.ndarray, export_time_s: int, sys_uptime_ms: int) -> np.ndarray:
    """Epoch ms → sysUptime ms at that instant (32-bit, wrapping); the writers' inverse of above."""
    since = export_time_s * 1000 - np.asarray(t_ms, dtype=np.int64)
    return ((sys_uptime_ms - since) % 2**32).astype(np.uint32)
