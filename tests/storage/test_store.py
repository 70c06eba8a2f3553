"""The `Store` on three backends — a local folder, a `file://` URL and a real SeaweedFS S3 server
on loopback (started once for the module) — with the same tests: keys, listing, atomic puts,
streaming, counters and one-line errors; then what only S3 has (buckets, credentials, debris)."""

from __future__ import annotations

import os
import threading
import uuid

import pyarrow.fs as pafs
import pytest

from pipeline.storage import store as store_module
from pipeline.storage.store import TMP_PREFIX, Store, StoreError
from tests.servers.s3 import S3Server, start_s3

BUCKET = "bbtr-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    with start_s3(tmp_path_factory.mktemp("s3")) as server:
        server.make_bucket(BUCKET)
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch) -> S3Server:
    for name, value in s3.env(BUCKET).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BBTR_STORE_URL")
    return s3


@pytest.fixture(params=["local", "file", "s3"])
def store(request, tmp_path) -> Store:
    """An empty store of each kind (S3: a fresh prefix in the module's bucket)."""
    if request.param == "local":
        return Store.from_url(tmp_path / "store")
    if request.param == "file":
        return Store.from_url(f"file://{tmp_path}/store")
    request.getfixturevalue("s3_env")
    return Store.from_url(f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}")


def _all_paths(store: Store) -> list[str]:
    """Every file under the store's root as the filesystem sees it (temporary ones included)."""
    selector = pafs.FileSelector(store.root, recursive=True, allow_not_found=True)
    return sorted(
        i.path[len(store.root) + 1 :]
        for i in store.fs.get_file_info(selector)
        if i.type == pafs.FileType.File
    )


def _fail_after(nbytes: int):
    """A writer that writes `nbytes`, then fails (a crash in the middle of an upload)."""

    def write(out) -> None:
        out.write(b"x" * nbytes)
        raise RuntimeError("upload interrupted")

    return write


# --- the same suite on every backend -------------------------------------------------------


def test_bytes_round_trip_overwrite_and_delete(store):
    assert not store.exists("a/b.bin")
    store.put_bytes("a/b.bin", b"first")
    assert store.exists("a/b.bin") and store.size("a/b.bin") == 5
    assert store.read_bytes("a/b.bin") == b"first"
    store.put_bytes("a/b.bin", b"second, longer")
    assert store.read_bytes("a/b.bin") == b"second, longer"
    store.put_bytes("empty", b"")
    assert store.read_bytes("empty") == b"" and store.size("empty") == 0
    store.delete("a/b.bin")
    store.delete("a/b.bin")  # absent: nothing to do
    assert not store.exists("a/b.bin")
    assert store.list() == ["empty"]


def test_keys_with_spaces_signs_and_unicode(store):
    keys = ["exporter=a b/day=2019-01-01+x.parquet", "odd/100%/ü ñ.bin", "odd/a%2Fb"]
    for key in keys:
        store.put_bytes(key, key.encode())
    assert store.list() == sorted(keys)
    assert [store.read_bytes(k) for k in keys] == [k.encode() for k in keys]


def test_files_larger_than_a_chunk_stream_through(store, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_CHUNK", 1 << 20)  # 6 chunks; 2 multipart parts on S3
    data = os.urandom((5 << 20) + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    store.put_file(src, "big/part-0.parquet")
    assert store.size("big/part-0.parquet") == len(data)
    back = store.get_file("big/part-0.parquet", tmp_path / "down" / "deep" / "copy.bin")
    assert back.read_bytes() == data
    assert sorted(p.name for p in back.parent.iterdir()) == ["copy.bin"]  # no temp file left


def test_list_is_sorted_recursive_and_folder_exact(store):
    for key in ["day=10/b.parquet", "day=1/x/y.parquet", "day=1/a.parquet", "day=2/c", "top"]:
        store.put_bytes(key, key.encode())
    assert store.list() == [
        "day=1/a.parquet",
        "day=1/x/y.parquet",
        "day=10/b.parquet",
        "day=2/c",
        "top",
    ]
    assert store.list("day=1") == ["day=1/a.parquet", "day=1/x/y.parquet"]
    assert store.list("day=1/") == store.list("/day=1")
    assert store.list("day=10") == ["day=10/b.parquet"]
    assert store.list("day=1/x") == ["day=1/x/y.parquet"]
    assert store.list("day=3") == []
    assert store.list("top") == []  # an object, not a folder


def test_list_never_shows_temporary_objects(store):
    store.put_bytes("day=1/a", b"a")
    # what an upload in flight (or a killed one) leaves: a local temp file of write_atomic, or
    # an object under the temporary prefix
    junk = [f"day=1/.b.abcd1234{'.bbtr.tmp'}", f"{TMP_PREFIX}/day=1%2Fb.0123456789abcdef"]
    for path in junk:
        store.fs.create_dir(f"{store.root}/{path}".rsplit("/", 1)[0])
        with store.fs.open_output_stream(f"{store.root}/{path}") as out:
            out.write(b"partial")
    assert set(junk) < set(_all_paths(store))
    assert store.list() == ["day=1/a"] and store.list("day=1") == ["day=1/a"]


def test_debris_of_killed_uploads_is_removed_when_old(store):
    store.put_bytes("day=1/kept", b"k")
    junk = f"day=1/.kept.abcd1234{'.bbtr.tmp'}" if store.fs.type_name == "local" else None
    junk = junk or f"{TMP_PREFIX}/day=1%2Fkept.0123456789abcdef"
    store.fs.create_dir(f"{store.root}/{junk}".rsplit("/", 1)[0])
    with store.fs.open_output_stream(f"{store.root}/{junk}") as out:
        out.write(b"partial")
    assert store.remove_debris(min_age=3600) == []  # may be an upload in flight
    assert store.remove_debris(min_age=0) == [f"{store.root}/{junk}"]
    assert _all_paths(store) == ["day=1/kept"]


def test_a_failed_put_leaves_no_object_and_no_temporary(store):
    store.put_bytes("kept", b"old content")
    for key in ("kept", "new/object"):
        with pytest.raises(RuntimeError, match="upload interrupted"):
            store._put(key, _fail_after(6 << 20), "write")
    assert store.read_bytes("kept") == b"old content"
    assert not store.exists("new/object")
    assert _all_paths(store) == ["kept"]  # not even under the temporary prefix
    assert store.counters.objects_written == 1


def test_a_reader_sees_the_old_or_the_whole_new_object(store, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_CHUNK", 256 << 10)
    old, new = b"A" * (3 << 20), b"B" * (3 << 20) + b"end"
    store.put_bytes("obj", old)
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    seen: set[bytes] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                data = store.read_bytes("obj")
            except OSError as err:  # e.g. a GET cut short by a replacement
                data = f"{err}".encode()
            seen.add(data if data in (old, new) else b"partial:%d" % len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for name in ("new", "old", "new"):
            store.put_file(tmp_path / name, "obj")
    finally:
        done.set()
        thread.join()
    assert seen <= {old, new}, [s[:20] for s in seen]
    assert store.read_bytes("obj") == new


def test_concurrent_writers_of_one_key_leave_one_whole_object(store):
    versions = [bytes([65 + i]) * (1 << 20) for i in range(2)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(3):
                store.put_bytes("day=1/flows.parquet", data)
        except BaseException as err:  # noqa: BLE001 - reported by the assert below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.read_bytes("day=1/flows.parquet") in versions
    assert _all_paths(store) == ["day=1/flows.parquet"]


def test_counters_count_what_succeeded(store, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"12345678")
    store.put_bytes("a", b"abc")
    store.put_file(src, "b/c")
    child = store.child("b")
    assert child.read_bytes("c") == b"12345678"  # a child shares the parent's counters
    store.get_file("a", tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("missing")
    with pytest.raises(RuntimeError):
        store._put("d", _fail_after(10), "write")
    c = store.counters
    assert (c.bytes_written, c.objects_written, c.bytes_read, c.objects_read) == (11, 2, 11, 2)


def test_child_stores_see_keys_under_their_prefix(store):
    child = store.child("warehouse/")
    child.put_bytes("flows/day=1.parquet", b"x")
    assert store.list() == ["warehouse/flows/day=1.parquet"]
    assert child.list() == ["flows/day=1.parquet"]
    assert child.url == f"{store.url}/warehouse"
    assert child.is_local == store.is_local


def test_missing_objects_raise_file_not_found_naming_url_and_key(store, tmp_path):
    for call in (
        lambda: store.read_bytes("no/such.parquet"),
        lambda: store.size("no/such.parquet"),
        lambda: store.get_file("no/such.parquet", tmp_path / "out"),
    ):
        with pytest.raises(FileNotFoundError) as err:
            call()
        assert str(err.value) == f"{store.url}/no/such.parquet: no such object"
    assert not (tmp_path / "out").exists()
    assert store.counters.objects_read == 0


@pytest.mark.parametrize("key", ["", "/", "../x", "a/../b", "a//b", "./a", f"{TMP_PREFIX}/x"])
def test_bad_keys_are_refused(store, key):
    with pytest.raises(ValueError, match="bad key"):
        store.put_bytes(key, b"x")


# --- URLs -----------------------------------------------------------------------------------


def test_urls_pick_the_backend(tmp_path, s3_env):
    local = Store.from_url(tmp_path)
    assert local.is_local and local.local_root == tmp_path.resolve()
    remote_folder = Store.from_url(f"file://{tmp_path}/")
    assert not remote_folder.is_local and remote_folder.local_root is None
    assert remote_folder.root == str(tmp_path)
    s3 = Store.from_url(f"s3://{BUCKET}/some/prefix/")
    assert not s3.is_local and s3.root == f"{BUCKET}/some/prefix"
    assert s3.url == f"s3://{BUCKET}/some/prefix"
    for bad in ("s3:///prefix", "file://host/x", "ftp://host/x"):
        with pytest.raises(ValueError):
            Store.from_url(bad)


def test_s3_configuration_errors_are_one_line(monkeypatch, s3_env):
    monkeypatch.setenv("BBTR_S3_ENDPOINT", "127.0.0.1:8333")
    with pytest.raises(ValueError, match="expected http"):
        Store.from_url(f"s3://{BUCKET}/p")
    monkeypatch.setenv("BBTR_S3_ENDPOINT", s3_env.endpoint)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ValueError, match="set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Store.from_url(f"s3://{BUCKET}/p")


# --- only on the S3 server ------------------------------------------------------------------


def test_requests_are_signed(s3_env):
    store = Store.from_url(f"s3://{BUCKET}/signed")
    store.put_bytes("k", b"secret")
    anonymous = pafs.S3FileSystem(
        anonymous=True, endpoint_override=s3_env.endpoint[len("http://") :], scheme="http"
    )
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        anonymous.open_input_stream(f"{BUCKET}/signed/k").read()


def test_wrong_credentials_give_one_clear_line(s3_env, monkeypatch):
    Store.from_url(f"s3://{BUCKET}/creds").put_bytes("k", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = Store.from_url(f"s3://{BUCKET}/creds")
    for call, what in (
        (lambda: store.read_bytes("k"), "read"),
        (lambda: store.put_bytes("k", b"y"), "write"),
        (lambda: store.list(), "list"),
    ):
        with pytest.raises(StoreError) as err:
            call()
        line = str(err.value)
        assert line.startswith(f"s3://{BUCKET}/creds") and f"{what} failed: access denied" in line
        assert "\n" not in line and err.value.__cause__ is None
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.secret_key)
    assert Store.from_url(f"s3://{BUCKET}/creds").read_bytes("k") == b"x"  # unchanged


def test_a_missing_bucket_is_named(s3_env):
    store = Store.from_url("s3://no-such-bucket/p")
    with pytest.raises(FileNotFoundError, match="s3://no-such-bucket/p/k: no such bucket"):
        store.read_bytes("k")
    with pytest.raises(StoreError, match="s3://no-such-bucket/p: no such bucket"):
        store.list()
    with pytest.raises(StoreError, match="s3://no-such-bucket/p/k: write failed: no such bucket"):
        store.put_bytes("k", b"x")
    assert not store.exists("k")


def test_an_unreachable_endpoint_is_named(s3_env, monkeypatch):
    monkeypatch.setattr(store_module, "_RETRIES", 1)
    monkeypatch.setenv("BBTR_S3_ENDPOINT", "http://127.0.0.1:9")  # discard: nothing listens
    with pytest.raises(
        StoreError, match=r"read failed: cannot reach the S3 endpoint.*127\.0\.0\.1:9"
    ):
        Store.from_url(f"s3://{BUCKET}/p").read_bytes("k")


def test_the_server_stops_by_pid(tmp_path):
    with start_s3(tmp_path) as server:
        pid = server.pid
        os.kill(pid, 0)  # running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (tmp_path / "weed-data").is_dir()


def test_a_missing_weed_skips_naming_the_setup_script(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    with pytest.raises(pytest.skip.Exception, match=r"weed is missing: run `bash scripts"):
        with start_s3(tmp_path):
            pass
