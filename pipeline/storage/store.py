"""A `Store`: the keys under one root URL — a local folder, `file:///abs/path` (a local folder
read and written as if remote: tasks stage through it) or `s3://bucket/prefix` on an S3 store.

S3 endpoint and credentials come from the environment, never from files under git:
`BBTR_S3_ENDPOINT` (e.g. `http://127.0.0.1:8333`; unset: AWS), `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`), `AWS_REGION` (default `us-east-1`).
Writes are atomic on every backend: a local file is renamed over its target; an object is uploaded
under a temporary key `<root>/.bbtr-tmp/…` (never listed) and copied to its key in one server-side
step, then the temporary key is deleted. A reader sees the old object or the whole new one: pyarrow
reads an object in ranged GETs, so `_read` compares its ETag and size before and after.
Limit: pyarrow's `copy_file` is one CopyObject request, which AWS S3 refuses above 5 GiB (no
multipart copy); SeaweedFS and MinIO copy larger objects. Our objects are far smaller.
Failures raise `FileNotFoundError` (no such object) or `StoreError`, one line naming URL and key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlparse

import pyarrow.fs as pafs

from pipeline.atomic import TMP_SUFFIX, write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")

TMP_PREFIX = ".bbtr-tmp"  # temporary upload keys: <root>/.bbtr-tmp/<key, '/' as %2F>.<random>
_CHUNK = 8 << 20  # bytes per read and write when streaming a file (memory stays bounded)
_READS = 5  # reads of an object replaced while being read, before giving up
_RETRIES = 5  # attempts per request (the AWS standard strategy: backoff, transient errors only)
_TIMEOUT = 60.0  # s a request may go without moving a byte (the AWS SDK's default is 3 s)
_COPY_TIMEOUT = 900.0  # a server-side copy sends nothing until it is done (SeaweedFS: ~50 MB/s)
_AWS_ERROR = re.compile(r"AWS Error (\w+)(?: \(HTTP status \d+\))? during (\w+) operation: ?(.*)")
_HINTS = {
    "ACCESS_DENIED": "access denied: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "SIGNATURE_DOES_NOT_MATCH": "access denied: check AWS_SECRET_ACCESS_KEY",
    "INVALID_ACCESS_KEY_ID": "access denied: check AWS_ACCESS_KEY_ID",
    "NETWORK_CONNECTION": "cannot reach the S3 endpoint: check BBTR_S3_ENDPOINT",
    "NO_SUCH_BUCKET": "no such bucket",
}


class StoreError(OSError):
    """A store operation failed; the message is one line naming the URL, the key and the cause."""


@dataclass
class StoreCounters:
    """Bytes and objects this process moved through a store (the bench's per-flow figures);
    an operation counts once it has succeeded."""

    bytes_read: int = 0
    bytes_written: int = 0
    objects_read: int = 0
    objects_written: int = 0


@dataclass
class Store:
    """Keys (`a/b/c.parquet`, '/'-separated, relative) under a root URL."""

    url: str
    fs: pafs.FileSystem = field(repr=False)
    root: str  # the filesystem path of the root (no trailing '/')
    counters: StoreCounters = field(default_factory=StoreCounters, repr=False)
    copy_fs: pafs.FileSystem | None = field(default=None, repr=False)  # S3: long copy timeout

    @classmethod
    def from_url(cls, url: str | os.PathLike) -> Store:
        """A store from a local path, `file:///abs/path` or `s3://bucket/prefix`."""
        text = os.fspath(url)
        parsed = urlparse(text)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ValueError(f"{text}: an S3 URL needs a bucket (s3://bucket/prefix)")
            root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            fs, copy_fs = s3_filesystem(), s3_filesystem(_COPY_TIMEOUT)
            return cls(text.rstrip("/"), fs, root, copy_fs=copy_fs)
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise ValueError(f"{text}: a file URL needs an absolute path (file:///abs/path)")
            return cls(text.rstrip("/"), pafs.LocalFileSystem(), parsed.path.rstrip("/") or "/")
        if parsed.scheme and len(parsed.scheme) > 1:
            raise ValueError(f"{text}: unsupported store URL (a path, file:// or s3://)")
        root = str(Path(text).resolve())
        return cls(root, pafs.LocalFileSystem(), root)

    @property
    def is_local(self) -> bool:
        """A plain local folder: stages read and write it directly (no staging)."""
        return isinstance(self.fs, pafs.LocalFileSystem) and not self.url.startswith("file:")

    @property
    def local_root(self) -> Path | None:
        """The folder of a plain local store, else None."""
        return Path(self.root) if self.is_local else None

    def child(self, prefix: str) -> Store:
        """The store of the keys under `prefix` (shares the filesystem and counters)."""
        prefix = self._key(prefix)
        return Store(
            f"{self.url}/{prefix}", self.fs, f"{self.root}/{prefix}", self.counters, self.copy_fs
        )

    def _key(self, key: str) -> str:
        key = key.strip("/")
        parts = key.split("/")
        if not key or any(p in ("", ".", "..", TMP_PREFIX) for p in parts) or "\\" in key:
            raise ValueError(f"{self.url}: bad key {key!r}")
        return key

    def _path(self, key: str) -> str:
        return f"{self.root}/{self._key(key)}"

    def exists(self, key: str) -> bool:
        with self._errors("stat", key):
            return self.fs.get_file_info(self._path(key)).type == pafs.FileType.File

    def size(self, key: str) -> int:
        with self._errors("stat", key):
            info = self.fs.get_file_info(self._path(key))
        if info.type != pafs.FileType.File:
            raise self._missing(key)
        return int(info.size)

    def read_bytes(self, key: str) -> bytes:
        data = self._read(key, lambda src: src.read())
        self.counters.bytes_read += len(data)
        self.counters.objects_read += 1
        return data

    def get_file(self, key: str, local: Path) -> Path:
        """Copy the object to the local file `local` (atomically; folders made), in chunks."""
        moved = 0

        def download(tmp: str) -> None:
            def copy(src) -> int:
                with open(tmp, "wb") as dst:  # from the start again on a re-read
                    n = 0
                    while chunk := src.read(_CHUNK):
                        n += dst.write(chunk)
                    return n

            nonlocal moved
            moved = self._read(key, copy)

        with self._errors("download", key):
            write_atomic(Path(local), download)
        self.counters.bytes_read += moved
        self.counters.objects_read += 1
        return Path(local)

    def _read(self, key: str, consume: Callable[[pafs.NativeFile], T]) -> T:
        """consume(stream of the object). pyarrow reads an S3 object in ranged GETs after a HEAD,
        so a replacement meanwhile could mix two versions: ETag and size are compared before and
        after, and the object read again if it changed."""
        path = self._path(key)
        with self._errors("read", key):
            for _ in range(_READS):
                with self.fs.open_input_stream(path) as src:
                    before = _version(src)
                    try:
                        result = consume(src)
                    except OSError:
                        if before is None or self._version(path) == before:
                            raise
                        continue  # replaced in the middle of the read
                if before is None or self._version(path) == before:
                    return result
            raise StoreError(f"{self.url}/{key}: read failed: replaced during {_READS} reads")

    def _version(self, path: str) -> tuple | None:
        with self.fs.open_input_stream(path) as f:
            return _version(f)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write `data` as the object `key`, atomically."""
        self._put(key, lambda out: out.write(data), "write")
        self.counters.bytes_written += len(data)

    def put_file(self, local: Path, key: str) -> None:
        """Upload the local file as the object `key`, atomically, in chunks (bounded memory)."""
        moved = 0

        def upload(out) -> None:
            nonlocal moved
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                out.flush()  # waits for the background part uploads: at most a chunk in memory
                moved += len(chunk)

        with open(local, "rb") as src:  # a missing local file is the caller's, not the store's
            self._put(key, upload, "upload")
        self.counters.bytes_written += moved

    def _put(self, key: str, write: Callable[[BinaryIO], object], what: str) -> None:
        target = self._path(key)
        if isinstance(self.fs, pafs.LocalFileSystem):

            def local_write(tmp: str) -> None:
                with open(tmp, "wb") as out:
                    write(out)

            with self._errors(what, key):
                write_atomic(Path(target), local_write)
        else:
            # A failed write still closes (so completes) the upload: only ever under the temp key.
            name = f"{self._key(key).replace('/', '%2F')}.{secrets.token_hex(8)}"
            tmp = f"{self.root}/{TMP_PREFIX}/{name}"
            with self._errors(what, key):
                out = self.fs.open_output_stream(tmp)
                try:
                    with out:
                        write(out)
                    (self.copy_fs or self.fs).copy_file(tmp, target)
                finally:
                    self._discard(tmp)
        self.counters.objects_written += 1

    def _discard(self, path: str) -> None:
        """Delete a temporary object; a failure is logged, never raised over the real error."""
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            log.warning("%s: could not delete the temporary object %s: %s", self.url, path, err)

    def delete(self, key: str) -> None:
        """Delete the object `key`; nothing to do if it is absent."""
        with self._errors("delete", key), contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._path(key))

    def list(self, prefix: str = "") -> list[str]:
        """Every key under the folder `prefix` ("day=1" holds "day=1/x", not "day=10/x"), sorted.
        A listing: for cold paths only, never per record or per task."""
        return sorted(self.infos(prefix))

    def infos(self, prefix: str = "") -> dict[str, tuple[int, int | None]]:
        """{key: (size, mtime_ns)} of every key under the folder `prefix`, in one listing (temporary
        objects and files left out). For cold paths only, like `list`."""
        prefix = self._key(prefix) if prefix.strip("/") else ""
        base = f"{self.root}/{prefix}".rstrip("/")
        with self._errors("list", prefix):
            if self.fs.get_file_info(base).type == pafs.FileType.File:
                return {}  # an object, not a folder
            selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
            infos = self.fs.get_file_info(selector)
        start = len(self.root) + 1
        found = {
            i.path[start:]: (int(i.size), i.mtime_ns)
            for i in infos
            if i.type == pafs.FileType.File and _listed(i.path[start:])
        }
        if not found and self._bucket_missing():
            raise StoreError(f"{self.url}: no such bucket {self._bucket()!r}")
        return found

    def remove_debris(self, min_age: float = 3600.0) -> list[str]:
        """Delete what killed uploads left (temporary objects or files) older than `min_age` s;
        younger ones may be another process's upload in flight. Returns their paths."""
        if isinstance(self.fs, pafs.LocalFileSystem):  # write_atomic's temp files, anywhere
            selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        else:
            selector = pafs.FileSelector(f"{self.root}/{TMP_PREFIX}", allow_not_found=True)
        with self._errors("list", TMP_PREFIX):
            infos = self.fs.get_file_info(selector)
        cutoff = time.time() - min_age
        old = [
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and not _listed(i.path[len(self.root) + 1 :])
            and i.mtime_ns / 1e9 < cutoff
        ]
        for path in old:
            self._discard(path)
        return old

    def _bucket(self) -> str:
        return self.root.split("/", 1)[0]

    def _bucket_missing(self) -> bool:
        """An S3 store whose bucket does not exist (asked only on an error or an empty listing)."""
        if not isinstance(self.fs, pafs.S3FileSystem):
            return False
        try:
            return self.fs.get_file_info(self._bucket()).type == pafs.FileType.NotFound
        except OSError:
            return False

    def _missing(self, key: str) -> FileNotFoundError:
        if self._bucket_missing():
            return FileNotFoundError(f"{self.url}/{key}: no such bucket {self._bucket()!r}")
        return FileNotFoundError(f"{self.url}/{key}: no such object")

    @contextlib.contextmanager
    def _errors(self, what: str, key: str) -> Iterator[None]:
        """Turn a filesystem error into one line naming the URL, the key and the cause."""
        try:
            yield
        except FileNotFoundError:
            raise self._missing(key) from None
        except StoreError:
            raise
        except OSError as err:
            where = f"{self.url}/{key}" if key else self.url
            raise StoreError(f"{where}: {what} failed: {_reason(err)}") from None


def _version(stream: pafs.NativeFile) -> tuple | None:
    """The ETag and size an S3 stream was opened on (from its HEAD); None on a local file."""
    meta = stream.metadata()
    return (meta.get("ETag"), meta.get("Content-Length")) if meta else None


def _listed(key: str) -> bool:
    """Not a temporary upload object nor a local temporary file of `write_atomic`."""
    parts = key.split("/")
    name = parts[-1]
    return TMP_PREFIX not in parts and not (name.startswith(".") and name.endswith(TMP_SUFFIX))


def _reason(err: OSError) -> str:
    """The cause of a pyarrow/AWS error in a few words, with the AWS code and operation."""
    text = " ".join(str(err).split())
    found = _AWS_ERROR.search(text)
    if not found:
        return text
    code, operation, detail = found.groups()
    detail = detail.split(" (Request ID")[0].split("; Details: ")[-1].strip()
    detail = "" if detail == "No response body." else detail
    hint = _HINTS.get(code, code.lower().replace("_", " "))
    return f"{hint} ({code} in {operation}{': ' + detail if detail else ''})"


def s3_filesystem(request_timeout: float = _TIMEOUT) -> pafs.S3FileSystem:
    """An S3 filesystem from BBTR_S3_ENDPOINT and the AWS_* credentials in the environment."""
    endpoint = os.environ.get("BBTR_S3_ENDPOINT", "")
    parsed = urlparse(endpoint) if endpoint else None
    if parsed and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        raise ValueError(f"BBTR_S3_ENDPOINT={endpoint!r}: expected http(s)://host:port")
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if bool(key) != bool(secret) or (parsed and not key):
        raise ValueError(
            "S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            + (f" for BBTR_S3_ENDPOINT={endpoint}" if parsed else "")
        )
    return pafs.S3FileSystem(
        access_key=key or None,
        secret_key=secret or None,
        session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=parsed.netloc if parsed else None,
        scheme=parsed.scheme if parsed else "https",
        request_timeout=request_timeout,
        allow_bucket_creation=False,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=_RETRIES),
    )
