"""Decompression of nfcapd data blocks: BZ2 (stdlib), LZ4 and ZSTD (system liblz4/libzstd via
ctypes, else pyarrow's codecs); LZO is not available in this stack and is reported unsupported.

nfdump stores LZ4 as a raw block (LZ4_compress_default) whose decompressed size is not recorded,
so the exact size must come from the decompressor itself.
"""

from __future__ import annotations

import bz2
import ctypes
import ctypes.util
import threading
from functools import cache

import pyarrow as pa

MAX_BLOCK_BYTES = 8 * 1024 * 1024  # nfdump 1.7 blocks hold at most 5 MiB (BUFFSIZE)


_scratch = threading.local()


def _out_buffer() -> ctypes.Array:
    """This thread's MAX_BLOCK_BYTES output buffer, allocated (and zero-filled) once."""
    buf = getattr(_scratch, "buf", None)
    if buf is None:
        buf = _scratch.buf = ctypes.create_string_buffer(MAX_BLOCK_BYTES)
    return buf


class UnsupportedCompression(Exception):
    """The block's compression cannot be decoded here (reason names it)."""


class CorruptBlock(Exception):
    """The compressed payload does not decompress."""


@cache
def _lib(name: str) -> ctypes.CDLL | None:
    path = ctypes.util.find_library(name)
    if path is None:
        return None
    try:
        return ctypes.CDLL(path)
    except OSError:
        return None


def _lz4(payload: bytes) -> bytes | memoryview:
    lib = _lib("lz4")
    if lib is None:
        return _arrow_exact(payload, "lz4_raw")
    out = _out_buffer()
    n = lib.LZ4_decompress_safe(
        ctypes.c_char_p(payload), out, ctypes.c_int(len(payload)), ctypes.c_int(MAX_BLOCK_BYTES)
    )
    if n < 0:
        raise CorruptBlock("LZ4 decompression failed")
    return memoryview(out)[:n]


def _zstd(payload: bytes) -> bytes | memoryview:
    lib = _lib("zstd")
    if lib is None:
        return _arrow_exact(payload, "zstd")
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_isError.restype = ctypes.c_uint
    out = _out_buffer()
    n = lib.ZSTD_decompress(
        out,
        ctypes.c_size_t(MAX_BLOCK_BYTES),
        ctypes.c_char_p(payload),
        ctypes.c_size_t(len(payload)),
    )
    if lib.ZSTD_isError(ctypes.c_size_t(n)):
        raise CorruptBlock("ZSTD decompression failed")
    return memoryview(out)[:n]


def _arrow_exact(payload: bytes, codec: str) -> bytes:
    """Smallest output capacity that decompresses (binary search): the exact size."""

    def fits(cap: int) -> bool:
        try:
            pa.decompress(payload, decompressed_size=cap, codec=codec, asbytes=True)
        except (OSError, ValueError, pa.ArrowException):
            return False
        return True

    if not fits(MAX_BLOCK_BYTES):
        raise CorruptBlock(f"{codec} decompression failed")
    lo, hi = 0, MAX_BLOCK_BYTES
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return pa.decompress(payload, decompressed_size=lo, codec=codec, asbytes=True)


def _bz2(payload: bytes) -> bytes:
    """BZ2 with the output bounded like the other codecs (a few bytes can expand to gigabytes)."""
    unpack = bz2.BZ2Decompressor()
    try:
        out = unpack.decompress(payload, max_length=MAX_BLOCK_BYTES + 1)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptBlock(f"BZ2 decompression failed: {exc}") from exc
    if len(out) > MAX_BLOCK_BYTES:
        raise CorruptBlock(f"BZ2 block expands beyond {MAX_BLOCK_BYTES} bytes")
    return out


def decompress_block(payload: bytes, compression: int) -> bytes | memoryview:
    """Payload of one data block (after its 12-byte header) → uncompressed records (LZ4, ZSTD: a
    view of this thread's buffer, valid until its next call: copy it)."""
    if compression == 0:
        return payload
    if compression == 2:
        return _bz2(payload)
    if compression == 3:
        return _lz4(payload)
    if compression == 4:
        return _zstd(payload)
    if compression == 1:
        raise UnsupportedCompression("unsupported compression (LZO)")
    raise UnsupportedCompression(f"unsupported compression (id {compression})")
