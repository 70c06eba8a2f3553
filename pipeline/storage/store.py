"""A `Store`: the keys under one root URL — a local folder, `file:///abs/path` (a local folder
read and written as if remote: tasks stage through it) or `s3://bucket/prefix` on an S3 store.

S3 endpoint and credentials come from the environment, never from files under git:
`BBTR_S3_ENDPOINT` (e.g. `http://127.0.0.1:8333`; unset: AWS), `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (default `us-east-1`).
Writes are atomic on every backend: a local file is renamed over its target; an object is uploaded
under a temporary key beside it and copied to its key in one server-side step (a reader sees the old
object or the whole new one), then the temporary key is deleted.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from pipeline.atomic import write_atomic

TMP_PREFIX = ".bbtr-tmp"  # temporary upload keys: <prefix>/<key>.<random>; never read as data
_CHUNK = 8 << 20


@dataclass
class StoreCounters:
    """Bytes and objects this process moved through a store (the bench's per-flow figures)."""

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

    @classmethod
    def from_url(cls, url: str | os.PathLike) -> Store:
        """A store from a local path, `file:///abs/path` or `s3://bucket/prefix`."""
        text = os.fspath(url)
        parsed = urlparse(text)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ValueError(f"{text}: an S3 URL needs a bucket (s3://bucket/prefix)")
            root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            return cls(text.rstrip("/"), s3_filesystem(), root)
        if parsed.scheme == "file":
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
        prefix = prefix.strip("/")
        return Store(f"{self.url}/{prefix}", self.fs, f"{self.root}/{prefix}", self.counters)

    def _path(self, key: str) -> str:
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise ValueError(f"{self.url}: bad key {key!r}")
        return f"{self.root}/{key}"

    def exists(self, key: str) -> bool:
        return self.fs.get_file_info(self._path(key)).type == pafs.FileType.File

    def size(self, key: str) -> int:
        info = self.fs.get_file_info(self._path(key))
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"{self.url}/{key}: no such object")
        return int(info.size)

    def read_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open_input_stream(self._path(key)) as f:
                data = f.read()
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{self.url}/{key}: no such object") from e
        self.counters.bytes_read += len(data)
        self.counters.objects_read += 1
        return data

    def get_file(self, key: str, local: Path) -> Path:
        """Copy the object to the local file `local` (atomically; folders made)."""

        def download(tmp: str) -> None:
            with self.fs.open_input_stream(self._path(key)) as src, open(tmp, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    self.counters.bytes_read += len(chunk)

        try:
            write_atomic(Path(local), download)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{self.url}/{key}: no such object") from e
        self.counters.objects_read += 1
        return Path(local)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write `data` as the object `key`, atomically."""
        self._put(key, lambda out: out.write(data))
        self.counters.bytes_written += len(data)

    def put_file(self, local: Path, key: str) -> None:
        """Upload the local file as the object `key`, atomically."""

        def upload(out) -> None:
            with open(local, "rb") as src:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    self.counters.bytes_written += len(chunk)

        self._put(key, upload)

    def _put(self, key: str, write) -> None:
        target = self._path(key)
        if self.is_local or isinstance(self.fs, pafs.LocalFileSystem):

            def local_write(tmp: str) -> None:
                with open(tmp, "wb") as out:
                    write(out)

            write_atomic(Path(target), local_write)
        else:
            tmp = f"{self.root}/{TMP_PREFIX}/{key.strip('/')}.{secrets.token_hex(8)}"
            try:
                with self.fs.open_output_stream(tmp) as out:
                    write(out)
                self.fs.copy_file(tmp, target)
            finally:
                self.fs.delete_file(tmp) if _exists(self.fs, tmp) else None
        self.counters.objects_written += 1

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.delete_file(self._path(key))

    def list(self, prefix: str = "") -> list[str]:
        """Every key under `prefix`, sorted (a listing: for cold paths only, never per record)."""
        base = f"{self.root}/{prefix.strip('/')}".rstrip("/")
        info = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        start = len(self.root) + 1
        keys = [
            i.path[start:]
            for i in info
            if i.type == pafs.FileType.File and not i.path[start:].startswith(TMP_PREFIX)
        ]
        return sorted(keys)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type == pafs.FileType.File


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem from BBTR_S3_ENDPOINT and the AWS_* credentials in the environment."""
    endpoint = os.environ.get("BBTR_S3_ENDPOINT", "")
    parsed = urlparse(endpoint) if endpoint else None
    return pafs.S3FileSystem(
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=parsed.netloc if parsed else None,
        scheme=parsed.scheme if parsed else "https",
        allow_bucket_creation=False,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=5),
    )
