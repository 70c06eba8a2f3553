"""Time-bounded fuzz run over the decoders: `python -m bench.fuzz --seconds N [--target NAME ...]`.

Coverage-guided with atheris when it imports (not in the lock: install it outside the repo venv,
`pip install --target /tmp/fuzzenv/site atheris==3.0.0`, run with PYTHONPATH=/tmp/fuzzenv/site),
else a seeded random-mutation run over the seeds and mutators of tests/support/fuzz_corpus.py. Each
input is checked against the same contract as tests/wire/test_fuzz.py (fuzz_corpus.call_target).
`--seconds` is per target; targets run one after another (atheris: one child process each).
Failures are written to --out (default /tmp/bbtr-fuzz), never to the repo; replay one with
`python -m bench.fuzz --target NAME --replay FILE`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.support.fuzz_corpus as fc  # noqa: E402

MEMORY_EVERY = 64  # trace memory (tracemalloc) on every 64th input: it slows calls down
PROGRESS_S = 30.0
TEMPLATE_VERSIONS = {"ipfix": (10,), "datagrams": (9, 10), "v9": (9,)}


# --------------------------------------------------------------------------- input framing
def frame(unit) -> bytes:
    """A fuzz unit as one byte string (datagram lists: u16 big-endian length before each)."""
    if isinstance(unit, bytes):
        return unit
    return b"".join(min(len(g), 0xFFFF).to_bytes(2, "big") + g[:0xFFFF] for g in unit)


def unframe(data: bytes, is_list: bool):
    """The fuzz unit of `data` (inverse of `frame`; a short last length takes what is left)."""
    if not is_list:
        return data[: fc.MAX_INPUT_BYTES]
    grams, pos = [], 0
    data = data[: fc.MAX_INPUT_BYTES + 512]
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 2], "big")
        grams.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return grams


# --------------------------------------------------------------------------- one run's record
class Tally:
    """Counts of one target's run: inputs, reasons, slowest input, memory peak, failures."""

    def __init__(self, target: fc.Target, out_dir: Path, engine: str) -> None:
        self.target, self.out_dir, self.engine = target, out_dir, engine
        self.inputs = 0
        self.reasons: Counter[str] = Counter()
        self.max_seconds, self.max_seconds_bytes = 0.0, 0
        self.peak_bytes, self.peak_input_bytes = 0, 0
        self.failures: dict[str, dict] = {}
        self.t0 = time.perf_counter()
        self.last_progress = self.t0
        self.start_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def run(self, unit) -> None:
        """One input through the target and its contract; a breach is recorded, not raised."""
        self.inputs += 1
        trace = self.inputs % MEMORY_EVERY == 0
        data = fc.unit_bytes(unit)
        t0 = time.perf_counter()
        try:
            call = fc.call_target(self.target, unit, trace_memory=trace, source="fuzz.input")
        except Exception as exc:  # noqa: BLE001 - any escape is a finding
            self._failure(unit, exc, time.perf_counter() - t0)
            return
        for r in call.reasons:  # detail suffixes ("unsupported block type 7") folded, as "… *"
            base = fc.reason_base(r)
            self.reasons[r if base in (r, None) else f"{base} *"] += 1
        if not trace and call.seconds > self.max_seconds:
            self.max_seconds, self.max_seconds_bytes = call.seconds, len(data)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / f"{self.target.name}-slowest.bin").write_bytes(frame(unit))
        if call.peak_bytes > self.peak_bytes:
            self.peak_bytes, self.peak_input_bytes = call.peak_bytes, len(data)
        now = time.perf_counter()
        if now - self.last_progress > PROGRESS_S:
            self.last_progress = now
            rate = self.inputs / (now - self.t0)
            print(f"  [{self.target.name}] {self.inputs} inputs, {rate:.0f}/s", flush=True)

    def _failure(self, unit, exc: Exception, seconds: float) -> None:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        gist = "".join(c for c in (str(exc).splitlines() or [""])[0][:40] if not c.isdigit())
        key = f"{type(exc).__name__} at {where}: {gist}"
        if key in self.failures:
            self.failures[key]["count"] += 1
            return
        raw = frame(unit)
        digest = hashlib.sha1(raw).hexdigest()[:12]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{self.target.name}-{digest}.bin"
        path.write_bytes(raw)
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        self.failures[key] = {
            "count": 1,
            "error": f"{type(exc).__name__}: {message}",
            "reproducer": str(path),
            "bytes": len(raw),
            "hex": raw.hex() if len(raw) <= 256 else raw[:256].hex() + "…",
            "seconds": round(seconds, 3),
        }
        print(f"  [{self.target.name}] FAILURE {key}: {message[:160]} → {path}", flush=True)

    def summary(self) -> dict:
        """The run's numbers (what the report quotes)."""
        seconds = time.perf_counter() - self.t0
        return {
            "target": self.target.name,
            "engine": self.engine,
            "seconds": round(seconds, 1),
            "inputs": self.inputs,
            "execs_per_s": round(self.inputs / max(seconds, 1e-9), 1),
            "reasons": dict(sorted(self.reasons.items())),
            "max_seconds_per_input": round(self.max_seconds, 4),
            "max_seconds_input_bytes": self.max_seconds_bytes,
            "peak_traced_bytes": self.peak_bytes,
            "peak_traced_input_bytes": self.peak_input_bytes,
            "start_rss_mib": round(self.start_rss_mib, 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "failures": self.failures,
        }


def print_summary(s: dict) -> None:
    print(f"== {s['target']} ({s['engine']}): {s['inputs']} inputs in {s['seconds']} s, "
          f"{s['execs_per_s']} execs/s")  # fmt: skip
    print(f"   max time per input {s['max_seconds_per_input'] * 1000:.1f} ms "
          f"({s['max_seconds_input_bytes']} B); peak traced memory "
          f"{s['peak_traced_bytes'] / 2**10:.0f} KiB ({s['peak_traced_input_bytes']} B input); "
          f"RSS {s['start_rss_mib']} → {s['max_rss_mib']} MiB")  # fmt: skip
    print(f"   {len(s['reasons'])} distinct reasons: " + ", ".join(
        f"{r!r}×{n}" for r, n in s["reasons"].items()))  # fmt: skip
    print(f"   failures: {len(s['failures'])}")
    for key, f in s["failures"].items():
        print(f"   - {key} ×{f['count']}: {f['error']}\n     {f['reproducer']} hex {f['hex']}")


# --------------------------------------------------------------------------- random engine
def random_unit(target: fc.Target, seeds: list, rng: random.Random):
    """One generated input: a mutated seed, an adversarial template case, a splice or noise."""
    pick = rng.random()
    versions = TEMPLATE_VERSIONS.get(target.name)
    if pick < 0.15 and versions:
        grams = fc.structured_template_case(rng, rng.choice(versions))
        return grams if target.unit_is_list else b"".join(grams)
    if pick < 0.25 or not seeds:
        noise = rng.randbytes(rng.randrange(0, 2048))
        return (
            [noise[i : i + 300] for i in range(0, len(noise), 300)]
            if target.unit_is_list
            else noise
        )
    seed = rng.choice(seeds)
    if target.unit_is_list:
        grams = list(seed)
        for _ in range(rng.randrange(1, 5)):
            grams = fc.mutate_messages(grams, rng)
        if pick < 0.35:  # splice in datagrams of another seed
            other = rng.choice(seeds)
            grams[rng.randrange(len(grams) + 1) : 0] = other[: rng.randrange(1, 4)]
        return grams
    if pick < 0.35:
        other = rng.choice(seeds)
        cut = rng.randrange(len(seed) + 1)
        seed = (seed[:cut] + other[rng.randrange(len(other) + 1) :])[: fc.MAX_INPUT_BYTES]
    return fc.mutate(seed, rng, rng.randrange(1, 6))


def run_random(target: fc.Target, seconds: float, out_dir: Path, seed: int) -> dict:
    tally = Tally(target, out_dir, "random")
    rng = random.Random(seed)
    seeds = target.seeds()
    for unit in seeds:  # the seeds themselves must pass
        tally.run(unit)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        tally.run(random_unit(target, seeds, rng))
    return tally.summary()


# --------------------------------------------------------------------------- atheris engine
def run_atheris_child(target: fc.Target, seconds: float, out_dir: Path, seed: int) -> None:
    """Runs in its own process: libFuzzer owns the loop; we stop it at the deadline."""
    import atheris

    with atheris.instrument_imports(include=["pipeline.ingest"]):
        import pipeline.wire.datagrams  # noqa: F401
        import pipeline.wire.ipfix.decoder  # noqa: F401
        import pipeline.wire.netflow_v5  # noqa: F401
        import pipeline.wire.nfcapd.reader  # noqa: F401
        import pipeline.wire.pcap.reader  # noqa: F401
    corpus = out_dir / f"corpus-{target.name}"
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seeds = target.seeds()
    extra = [random_unit(target, seeds, rng) for _ in range(200)]
    for unit in [*seeds, *extra]:
        raw = frame(unit)
        (corpus / hashlib.sha1(raw).hexdigest()).write_bytes(raw)
    tally = Tally(target, out_dir, "atheris")
    deadline = time.perf_counter() + seconds

    def one_input(data: bytes) -> None:
        tally.run(unframe(data, target.unit_is_list))
        if time.perf_counter() > deadline:
            summary = tally.summary()
            print_summary(summary)
            (out_dir / f"summary-{target.name}.json").write_text(json.dumps(summary, indent=1))
            sys.stdout.flush()
            os._exit(0)  # libFuzzer has no clean stop from inside the callback

    max_len = max([len(frame(u)) for u in seeds] + [4096])
    args = [sys.argv[0], str(corpus), f"-max_len={min(max_len, fc.MAX_INPUT_BYTES + 512)}",
            f"-seed={seed}", "-timeout=60", "-rss_limit_mb=3072", "-print_final_stats=0",
            "-close_fd_mask=0", "-print_pcs=0", "-verbosity=0"]  # fmt: skip
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(name: str, seconds: float, out_dir: Path, seed: int) -> dict:
    """One child per target (atheris.Fuzz never returns); its summary JSON is read back."""
    cmd = [sys.executable, "-m", "bench.fuzz", "--target", name, "--seconds", str(seconds),
           "--out", str(out_dir), "--seed", str(seed), "--child"]  # fmt: skip
    summary_path = out_dir / f"summary-{name}.json"
    summary_path.unlink(missing_ok=True)
    log = out_dir / f"libfuzzer-{name}.log"
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=fh, text=True)
    sys.stdout.write(proc.stdout)
    if not summary_path.exists():
        raise SystemExit(f"{name}: atheris child exited {proc.returncode}, see {log}")
    return json.loads(summary_path.read_text())


# --------------------------------------------------------------------------- main
def replay(target: fc.Target, path: Path) -> int:
    """Run a saved input (uninstrumented) 5 times: the contract breach it raises, or its timing."""
    unit = unframe(path.read_bytes(), target.unit_is_list)
    fc.call_target(target, unit, trace_memory=True, source="fuzz.input")  # raises on a breach
    best = min(fc.call_target(target, unit, source="fuzz.input").seconds for _ in range(5))
    call = fc.call_target(target, unit, trace_memory=True, source="fuzz.input")
    print(f"ok: best of 5 {best * 1000:.1f} ms, peak {call.peak_bytes} B, reasons {call.reasons}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="per target")
    p.add_argument("--target", action="append", choices=sorted(fc.TARGETS), help="repeatable")
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--out", type=Path, default=Path("/tmp/bbtr-fuzz"))
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--replay", type=Path, help="run one saved reproducer and show the error")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    names = a.target or ["ipfix", "v9", "v5", "datagrams", "nfcapd", "pcap", *fc.TEXT_TARGETS]
    if a.replay:
        return replay(fc.TARGETS[names[0]], a.replay)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.child:
        run_atheris_child(fc.TARGETS[names[0]], a.seconds, a.out, a.seed)
        return 1  # not reached
    engine = a.engine if a.engine != "auto" else ("atheris" if have_atheris() else "random")
    summaries, failed = [], 0
    for name in names:
        if engine == "atheris":
            s = run_atheris(name, a.seconds, a.out, a.seed)
        else:
            s = run_random(fc.TARGETS[name], a.seconds, a.out, a.seed)
            print_summary(s)
        summaries.append(s)
        failed += len(s["failures"])
    (a.out / "summary.json").write_text(json.dumps(summaries, indent=1))
    print(f"summary: {a.out / 'summary.json'}; {failed} distinct failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
