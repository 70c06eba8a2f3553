"""Records inside decompressed nfcapd data blocks: the record chain and little-endian gathers.

Records are variable-size. A block of V3 records only (what nfcapd writes) is chained in O(n):
the 4-aligned words whose type is V3 are the candidates; those no other candidate ends at (field
values that look like a header) are dropped, and the rest are the block's records exactly when
each one ends where the next begins, the first at 0 and the last at the block end (`v3_chain`).
Any other block is chained by pointer jumping (`record_chain`): every 4-aligned offset whose
{type, size} looks like a record is a candidate, its successor is offset + size, and repeated
squaring of that successor map lists the chain from offset 0 in O(n log n) numpy work.
`Words` then gathers fields at many record offsets at once.
"""

from __future__ import annotations

import numpy as np

from pipeline.wire.nfcapd import format as F


def record_chain(u8: np.ndarray) -> tuple[np.ndarray, int]:
    """Start offsets of the records chained from offset 0 of a block (next = offset + size), and
    the offset where the chain stops (len(u8) when it ends exactly at the block end)."""
    n_bytes = len(u8)
    n = n_bytes // 4
    if n == 0:
        return np.zeros(0, np.int64), 0
    words = u8[: n * 4].view("<u4")  # type | size << 16
    low = F.MIN_BLOCK_RECORD_TYPE
    cand = np.flatnonzero(((words & 0xFFFF) - low) <= F.MAX_BLOCK_RECORD_TYPE - low)
    size_c = (words[cand] >> 16).astype(np.int64)
    keep = (size_c >= 4) & ((size_c & 3) == 0) & (cand * 4 + size_c <= n_bytes)
    cand, size_c = cand[keep], size_c[keep]
    m = len(cand)
    end, broken = m, m + 1
    lut = np.full(n + 1, broken, np.int64)
    lut[cand] = np.arange(m)
    if n_bytes % 4 == 0:
        lut[n] = end
    jump = np.empty(m + 2, np.int64)
    jump[:m] = lut[cand + size_c // 4]
    jump[m], jump[m + 1] = end, broken
    steps = lut[:1].copy()  # candidate index at steps 0..len-1 from offset 0
    while steps[-1] < m:  # doubling: steps 0..2k-1 = steps 0..k-1 then k further along
        steps = np.concatenate([steps, jump[steps]])
        jump = jump[jump]
    stop_at = int(np.argmax(steps >= m))
    nodes = cand[steps[:stop_at]]
    offsets = nodes * 4
    if steps[stop_at] == end:
        stop = n_bytes
    elif len(nodes):
        stop = int(offsets[-1] + size_c[steps[stop_at - 1]])
    else:
        stop = 0
    return offsets, stop


def v3_chain(w32: np.ndarray, base: int, length: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets, sizes) of the records of the block at byte `base` (4-aligned) of the buffer whose
    little-endian uint32 view is `w32`, when they are all V3 records chained from its start to its
    end; None otherwise (then `record_chain` decides)."""
    if length <= 0 or length % 4 or base % 4:
        return None
    words = w32[base // 4 : (base + length) // 4]  # type | size << 16
    cand = np.flatnonzero((words & 0xFFFF) == F.TYPE_V3_FLOW)  # word index of V3-typed words
    size = (words[cand] >> 16).astype(np.int64)
    # Field values that look like a V3 header are dropped unless another candidate ends there.
    links = (size >= 4) & (size & 3 == 0)
    pointed = np.zeros(length // 4 + 1, bool)
    pointed[np.minimum(cand[links] + size[links] // 4, length // 4)] = True
    pointed[0] = True
    keep = pointed[cand]
    if not keep.all():
        cand, size = cand[keep], size[keep]
    if not len(cand) or cand[0] != 0:
        return None
    start = cand * 4
    ends = start + size
    if ends[-1] != length or not np.array_equal(ends[:-1], start[1:]):
        return None
    return start + base, size


# ------------------------------------------------------------------------------ gathers
class Words:
    """Little-endian gathers at byte offsets from one buffer (any length; a gather must fit)."""

    def __init__(self, data: bytes) -> None:
        self.u8 = np.frombuffer(data, np.uint8)
        n = len(self.u8)
        self.w16 = np.ndarray((n // 2,), "<u2", data)
        self.w32 = np.ndarray((n // 4,), "<u4", data)
        self.w64 = np.ndarray((n // 8,), "<u8", data)
        self.w64_4 = np.ndarray((max(n - 4, 0) // 8,), "<u8", data, min(n, 4))  # words at 8k + 4

    def _bytes(self, o: np.ndarray, width: int) -> np.ndarray:
        rows = np.ascontiguousarray(self.u8[o[:, None] + np.arange(width)])
        return rows.view(f"<u{width}").ravel()

    def u16(self, o: np.ndarray) -> np.ndarray:
        return self.w16[o >> 1] if not (o & 1).any() else self._bytes(o, 2)

    def u32(self, o: np.ndarray) -> np.ndarray:
        return self.w32[o >> 2] if not (o & 3).any() else self._bytes(o, 4)

    def u64(self, o: np.ndarray) -> np.ndarray:
        aligned = (o & 7) == 0
        if aligned.all():
            return self.w64[o >> 3]
        if (o & 3).any():
            return self._bytes(o, 8)
        if not aligned.any():  # all at 8k + 4
            return self.w64_4[o >> 3]
        q = o >> 2  # all 4-aligned: two 32-bit gathers
        return self.w32[q].astype(np.uint64) | (self.w32[q + 1].astype(np.uint64) << np.uint64(32))

    def u64_at(self, o: np.ndarray, steps: tuple[int, ...]) -> list[np.ndarray]:
        """uint64 at o + 8 * step for each step (one alignment check for them all)."""
        if (o & 3).any():
            return [self.u64(o + 8 * k) for k in steps]
        q = o >> 3
        odd = np.flatnonzero(o & 4)  # at 8k + 4
        if not len(odd):
            return [self.w64[q + k] for k in steps]
        if len(odd) == len(o):
            return [self.w64_4[q + k] for k in steps]
        out = []
        for k in steps:  # words of both parities (records of two blocks)
            word = self.w64[q + k]
            word[odd] = self.w64_4[q[odd] + k]
            out.append(word)
        return out
