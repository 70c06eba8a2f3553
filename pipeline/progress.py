"""Progress of a long stage through `logging`: a line at one and two thirds of the items when the
stage has run `every` seconds since its last line (the stage's own closing line follows). Two
lines at most per stage keep a whole build's output short; the build shows INFO lines of the
`pipeline` loggers and Dagster captures them in runs."""

from __future__ import annotations

import logging
import sys
import time

PROGRESS_SECONDS = 15.0  # a stage quicker than this between marks prints no progress line
MARKS = (1 / 3, 2 / 3)  # fractions of the items at which a progress line may be printed


def count(n: float) -> str:
    """1234567 → '1.23 M', 12345 → '12.3 k', 123 → '123' (for progress lines only)."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"


class Progress:
    """Counts `done` of `total` items (and optionally flows); logs at the MARKS, `every` s apart."""

    def __init__(
        self, log: logging.Logger, what: str, total: int, unit: str, every: float = PROGRESS_SECONDS
    ) -> None:
        self.log, self.what, self.total, self.unit, self.every = log, what, total, unit, every
        self.done, self.records = 0, 0
        self.started = self._last = time.monotonic()
        self._marks = [m * total for m in MARKS]

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> str:
        """Records per second so far ('' before any)."""
        return f"{count(self.records / max(self.seconds, 1e-3))} flows/s" if self.records else ""

    def step(self, records: int = 0) -> None:
        """One more item done (with `records` flows); a line at a mark reached `every` s after the
        last line."""
        self.done += 1
        self.records += records
        reached = False
        while self._marks and self.done >= self._marks[0]:
            self._marks.pop(0)
            reached = True
        now = time.monotonic()
        if reached and now - self._last >= self.every and self.done < self.total:
            self._last = now
            rate = self.rate()
            self.log.info(
                "%s: %d/%d %s%s", self.what, self.done, self.total, self.unit,
                f", {count(self.records)} flows, {rate}" if rate else "",
            )  # fmt: skip


def cli_logging(level: int = logging.INFO) -> None:
    """A command-line tool's output: its `logging` lines as bare text on stdout, warnings and
    errors on stderr (tools log their results rather than print them)."""
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(lambda r: r.levelno < logging.WARNING)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", handlers=[out, err], force=True)
