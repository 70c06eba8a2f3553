"""What a build shows and keeps: short progress lines on the terminal, everything (Dagster's own
events included) in data/logs/build-<UTC>.log, and the project's Dagster instance settings."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path

import yaml

from pipeline.atomic import write_text_atomic

# The project's Dagster instance ($DAGSTER_HOME/dagster.yaml): no telemetry (and no banner), no
# "Join the Dagster community" dialog over the UI's first page, and the stage functions' `logging`
# lines captured into each run's event log (shown by the UI).
INSTANCE_SETTINGS: dict = {
    "telemetry": {"enabled": False},
    "nux": {"enabled": False},
    "python_logs": {"managed_python_loggers": ["pipeline"], "python_log_level": "DEBUG"},
}
# BBTR_DAGSTER_PG_URL set (postgresql+psycopg2://USER[:PASSWORD]@HOST:PORT/DB): runs, event logs
# and schedules on PostgreSQL (dagster-postgres), for a webserver, daemon and runs on more than one
# host. dagster.yaml names the variable, never its value (it may hold a password): every process
# that loads the instance reads it from its environment. Unset: SQLite under DAGSTER_HOME.
# The URL names the driver: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the lock
# does not hold (dagster-postgres brings psycopg2).
PG_URL_ENV = "BBTR_DAGSTER_PG_URL"
PG_SCHEME = "postgresql+psycopg2://"
PG_STORAGE: dict = {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
SPLIT_STORAGE = ("run_storage", "event_log_storage", "schedule_storage")
TERMINAL_LOGGER = "pipeline"  # stage functions and the build log under it
EVENTS_LOGGER = "dagster"  # how the log file names Dagster's events
DAGSTER_META = "dagster_meta"  # attribute Dagster's capture sets on a record it re-logs
KEEP_LOGS = 20  # build logs kept in data/logs (the newest)
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s - %(message)s"


def ensure_instance_settings(home: Path) -> Path:
    """Write INSTANCE_SETTINGS into `home`/dagster.yaml (created if absent; other keys kept), and
    the storage BBTR_DAGSTER_PG_URL asks for (PostgreSQL when set, SQLite when not)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    current = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    wanted = _with_storage(current, bool(_pg_url()), path)
    ours = INSTANCE_SETTINGS["python_logs"]
    for key in ("telemetry", "nux"):
        wanted[key] = {**(current.get(key) or {}), **INSTANCE_SETTINGS[key]}
    logs = dict(current.get("python_logs") or {})
    managed = list(logs.get("managed_python_loggers") or [])
    logs["managed_python_loggers"] = managed + [
        name for name in ours["managed_python_loggers"] if name not in managed
    ]
    logs.setdefault("python_log_level", ours["python_log_level"])
    wanted["python_logs"] = logs
    if wanted != current or not path.is_file():
        write_text_atomic(path, yaml.safe_dump(wanted, sort_keys=False))  # several may start
    return path


def _pg_url() -> str:
    """BBTR_DAGSTER_PG_URL ('' when unset); an error naming the scheme it needs (never the URL,
    which may hold a password) when it names another driver."""
    url = os.environ.get(PG_URL_ENV, "")
    if url and not url.startswith(PG_SCHEME):
        scheme = url.split("://", 1)[0] + "://" if "://" in url else "no scheme"
        raise ValueError(
            f"{PG_URL_ENV} must start with {PG_SCHEME} (the driver the lock holds), not {scheme}"
        )
    return url


def _with_storage(current: dict, postgres: bool, path: Path) -> dict:
    """`current` with `storage` on PostgreSQL (`postgres`), or without the PostgreSQL storage this
    function wrote (back to Dagster's SQLite default; storage settings of the file's own kept)."""
    wanted = dict(current)
    if postgres:
        own = [key for key in SPLIT_STORAGE if key in current]
        if own:
            raise ValueError(
                f"{path} sets {', '.join(own)} of its own: remove them, or unset {PG_URL_ENV} "
                "(it puts all of the instance's storage on PostgreSQL)"
            )
        wanted["storage"] = PG_STORAGE
    elif current.get("storage") == PG_STORAGE:
        del wanted["storage"]
    return wanted


def log_path(root: Path, keep: int = KEEP_LOGS) -> Path:
    """A new build log file under `root`/logs, named by the UTC time it starts (the oldest logs
    beyond the newest `keep` are removed)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = root / "logs"
    for old in sorted(folder.glob("build-*.log"))[: -keep or None] if folder.is_dir() else []:
        old.unlink(missing_ok=True)
    return folder / f"build-{stamp}.log"


class _Terminal(logging.Handler):
    """Human lines: elapsed m:ss and the message on stdout; WARNING and above bare on stderr
    (the current sys.stdout/sys.stderr at each line, so that redirection and tests see them)."""

    def __init__(self, started: float) -> None:
        super().__init__(logging.INFO)
        self.started = started

    def emit(self, record: logging.LogRecord) -> None:
        try:
            seconds = int(record.created - self.started)
            meta = getattr(record, DAGSTER_META, None)
            message = meta["orig_message"] if meta else record.getMessage()
            if record.levelno >= logging.WARNING:  # errors and warnings: the bare line
                text, stream = message, sys.stderr
            else:
                text, stream = f"{seconds // 60:3d}:{seconds % 60:02d}  {message}", sys.stdout
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the build
            self.handleError(record)


class _Collect(logging.Handler):
    """Keeps the messages of WARNING records (the summary counts and names them; errors are the
    failure's own lines)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or not record.name.startswith(TERMINAL_LOGGER):
            return  # other libraries' warnings (deprecations…) are in the log file only
        meta = getattr(record, DAGSTER_META, None)
        text = meta["orig_message"] if meta else record.getMessage()
        self.messages.append((text.strip().splitlines() or [""])[0])


class BuildLog:
    """Installs the build's handlers for its duration (a context manager):

    - the terminal: INFO lines of the `pipeline` loggers (stage progress, the build's own lines);
    - the log file: the `pipeline` loggers' records from DEBUG up, other libraries' warnings,
      Python warnings, and each run's Dagster events (`dagster_events`, after the run);
    - a list of the warnings the summary reports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.warnings = _Collect()
        self._file: logging.FileHandler | None = None
        self._saved: list[tuple[logging.Logger, int]] = []

    def __enter__(self) -> BuildLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(self.path, encoding="utf-8")
        self._file.setFormatter(logging.Formatter(FILE_FORMAT))
        root, stages = logging.getLogger(), logging.getLogger(TERMINAL_LOGGER)
        self._saved = [(root, root.level), (stages, stages.level)]
        stages.setLevel(logging.DEBUG)
        root.addHandler(self._file)
        root.addHandler(self.warnings)
        self._terminal = _Terminal(self.started)
        stages.addHandler(self._terminal)
        logging.captureWarnings(True)
        return self

    def __exit__(self, *exc: object) -> None:
        root, stages = logging.getLogger(), logging.getLogger(TERMINAL_LOGGER)
        stages.removeHandler(self._terminal)
        root.removeHandler(self.warnings)
        if self._file is not None:
            root.removeHandler(self._file)
            self._file.close()
        for logger, level in self._saved:
            logger.setLevel(level)
        logging.captureWarnings(False)

    def dagster_events(self, instance, run_id: str) -> None:
        """The run's Dagster events (DEBUG up, with any step error's traceback) appended to the
        log file; its stage lines were written as they came."""
        if self._file is None:
            return
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue  # a captured `logging` line: already in the file
            self._file.handle(
                logging.makeLogRecord({
                    "name": EVENTS_LOGGER, "levelno": entry.level,
                    "levelname": logging.getLevelName(entry.level), "created": entry.timestamp,
                    "msg": f"{entry.job_name} {run_id[:8]} {entry.step_key or '-'} "
                           f"{event.event_type_value} {entry.user_message}{_error_of(event)}",
                })
            )  # fmt: skip


def _error_of(event) -> str:
    """A failed step's error with its traceback and causes ('' for other events)."""
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    return "\n" + error.to_string() if error is not None else ""


if __name__ == "__main__":  # scripts/ui.sh: python -m pipeline.buildlog DAGSTER_HOME
    try:
        ensure_instance_settings(Path(sys.argv[1]))
    except ValueError as err:
        sys.exit(f"dagster instance settings: {err}")
