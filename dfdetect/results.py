"""Append-only JSON Lines results that survive a crash mid-scan.

Each record goes to the file in one `write` on an O_APPEND descriptor (no user-space buffer to lose),
so a killed process leaves whole lines, at worst plus one torn tail; readers skip that tail and a
writer reopening the file cuts it off before appending. fsync runs every few seconds and on close,
bounding what a power cut can take back.

CSV and Parquet cannot be appended to safely (a Parquet footer is written last; a CSV row can be torn
anywhere), so for those the JSONL journal `<out>.journal.jsonl` is the record of truth during the scan
and `<out>` is rewritten from it, through a temporary file and an atomic rename, when the scan ends.
A crash leaves the journal (resume continues from it) and at worst the previous complete `<out>`.
Nested fields (top_faces, frame_scores, timings) become JSON text in those two formats, so every
shard and every run has the same flat column types.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import pandas as pd

from dfdetect.errors import DfdetectError
from dfdetect.records import SCAN_COLUMNS, record_path

RESUME_KEY = ("path", "size", "mtime")
# With --hash a file is (path, content): two files with the same bytes are two inputs, and an input
# that could not be hashed (a FIFO, a dangling link) is still recorded once, under its path.
HASH_RESUME_KEY = ("path", "sha256")
OUTPUT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
NESTED_COLUMNS = ("top_faces", "frame_scores", "timings", "provenance")
NULLABLE_COLUMNS = ("probability", "logit", "decision", "threshold", "clear_threshold", "frame_scores", "provenance")


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline: the record being written when a previous run died."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        block = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                fh.truncate(start + newline + 1)
                return
            end = start
        fh.truncate(0)


class JsonlWriter:
    """Appends dict records to a .jsonl file, one line each; use as a context manager."""

    def __init__(self, path: str | Path, fsync_interval_s: float = 5.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _cut_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync_interval_s = fsync_interval_s
        self._last_fsync = time.monotonic()
        self.records_written = 0

    def write(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        view = memoryview(line)
        while view:  # a regular file takes it in one call; loop only for a short write (disk full, signal)
            view = view[os.write(self._fd, view):]
        self.records_written += 1
        if time.monotonic() - self._last_fsync >= self._fsync_interval_s:
            os.fsync(self._fd)
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class OutputLock:
    """An exclusive lock on one scan output for the whole scan, so two scans never append to one
    journal: a second is refused at once, in one line naming the holder (pid, host, start, command).

    `fcntl.flock` on `<out>.lock` rather than the filelock package: filelock truncates the lock file
    on every attempt, so the file could not say who holds it. The kernel drops the lock when its
    holder exits, kill -9 included, so a crashed scan never leaves a stale lock; the file stays
    (deleting it would let a third scan lock a new file while a second holds the old one).
    """

    def __init__(self, path: str | Path, holder: str):
        self.path = Path(path)
        self.holder = holder
        self._fd = -1

    def __enter__(self) -> OutputLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DfdetectError("bad_config", f"cannot write beside the output ({exc.strerror})", self.path,
                                "choose an --out in a folder you can write") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 4096).decode("utf-8", "replace").strip() or "a process that is still starting"
            os.close(fd)
            raise DfdetectError("bad_config", f"another scan is writing this output ({other})",
                                self.path.with_suffix(""), "wait for it to finish, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, self.holder.encode("utf-8", "surrogateescape") + b"\n")
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = -1


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a .jsonl file; a torn last line (no newline: its writer died) is skipped, a bad
    line elsewhere is an error because something other than a crash damaged the file."""
    path = Path(path)
    if not path.exists():
        raise DfdetectError("missing_path", "results file not found", path, "check the path")
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                return
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise DfdetectError("bad_input", f"line {number} is not valid JSON ({exc})", path,
                                    "the file was edited or damaged; remove that line") from exc


def recorded_keys(path: str | Path, fields: tuple[str, ...] = RESUME_KEY) -> set[tuple]:
    """The `fields` tuples already in a results file (empty when it does not exist), for resuming;
    `path` as the operating system spells it (record_path), so a non-UTF-8 name matches its file."""
    if not Path(path).exists():
        return set()
    return {tuple(record_path(record) if f == "path" else record.get(f) for f in fields) for record in read_jsonl(path)}


def output_format(out: str | Path) -> str:
    """'jsonl', 'csv' or 'parquet' from the --out suffix."""
    fmt = OUTPUT_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise DfdetectError("bad_config", f"unknown output format {Path(out).suffix!r}", out,
                            f"end --out with one of {sorted(OUTPUT_FORMATS)}")
    return fmt


def journal_path(out: str | Path) -> Path:
    """Where records are appended while scanning: `out` itself for JSONL, a sibling journal otherwise."""
    out = Path(out)
    return out if output_format(out) == "jsonl" else out.with_name(out.name + ".journal.jsonl")


def flatten_record(record: dict) -> dict:
    """A record with its nested fields as JSON text (None stays None), in SCAN_COLUMNS order."""
    return {column: (json.dumps(record.get(column)) if column in NESTED_COLUMNS and record.get(column) is not None
                     else record.get(column)) for column in SCAN_COLUMNS}


def unflatten_record(row: dict) -> dict:
    """The inverse of flatten_record."""
    return {column: (json.loads(row[column]) if column in NESTED_COLUMNS and isinstance(row.get(column), str)
                     else row.get(column)) for column in SCAN_COLUMNS}


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    return pd.DataFrame([flatten_record(r) for r in records], columns=SCAN_COLUMNS)


def write_table(records: Iterable[dict], out: str | Path) -> Path:
    """Write records as CSV or Parquet through a temporary file renamed over `out`, so a reader (or
    a crash) never meets a half-written table."""
    out = Path(out)
    frame = records_frame(records)
    tmp = out.with_name(out.name + ".tmp")
    try:
        if output_format(out) == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def read_results(path: str | Path) -> list[dict]:
    """Records from a results file of any --out format, nested fields restored."""
    fmt = output_format(path)
    if fmt == "jsonl":
        return list(read_jsonl(path))
    if not Path(path).exists():
        raise DfdetectError("missing_path", "results file not found", path, "check the path")
    if fmt == "parquet":
        frame = pd.read_parquet(path)
    else:  # an empty cell is "" in a text column and None in a nullable one
        frame = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in NULLABLE_COLUMNS})
    frame = frame.astype(object).where(frame.notna(), None)
    return [unflatten_record(row) for row in frame.to_dict("records")]


def write_json_atomic(data: dict, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path
