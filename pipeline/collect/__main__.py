"""`python -m pipeline.collect --listen 0.0.0.0:2055 [--listen [::]:4739] --out DIR`."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from pipeline.collect.collector import Collector, default_collector_dir


def parse_listen(text: str) -> tuple[str, int]:
    """'0.0.0.0:2055' or '[::]:4739' → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65_535:
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected HOST:PORT or [V6]:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.collect", description=__doc__)
    parser.add_argument(
        "--listen",
        type=parse_listen,
        action="append",
        required=True,
        help="HOST:PORT to receive on (repeatable; [::]:PORT for IPv6)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: $BBTR_COLLECTOR_DIR or <raw>/collector"
    )
    parser.add_argument("--rotate-seconds", type=float, default=300.0)
    parser.add_argument("--rcvbuf", type=int, default=None, help="socket receive buffer, bytes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = args.out or default_collector_dir()
    collector = Collector(args.listen, out, args.rotate_seconds, rcvbuf=args.rcvbuf)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: collector.stop())
    logging.info("listening on %s, writing to %s", args.listen, out)
    collector.serve_forever()
    files = len(collector.files_written)
    logging.info("stopped: %d datagrams in %d files", collector.datagrams_received, files)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
