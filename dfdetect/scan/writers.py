"""Append-only JSON Lines results that survive a crash mid-scan.

Each record goes to the file in one `write` on an O_APPEND descriptor (no user-space buffer to lose),
so a killed process leaves whole lines, at worst plus one torn tail; readers skip that tail and a
writer reopening the file cuts it off before appending. fsync runs every few seconds and on close,
bounding what a power cut can take back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from dfdetect.errors import DfdetectError

RESUME_KEY = ("path", "size", "mtime")


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
    """The `fields` tuples already in a results file (empty when it does not exist), for resuming."""
    if not Path(path).exists():
        return set()
    return {tuple(record.get(f) for f in fields) for record in read_jsonl(path)}
