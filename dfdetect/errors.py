"""One exception type with a stable code, so the scanner can turn failures into records and the
CLI can turn them into one-line messages (what went wrong, which file, what to do)."""

from __future__ import annotations

from pathlib import Path

# Codes are part of the output schema (scan records, extract summaries): add, never rename.
ERROR_CODES = {
    "missing_path": "the path does not exist",
    "unreadable_media": "the file could not be decoded as an image or video",
    "unsupported_media": "the file is not an image or video type we read",
    "no_face": "no face was detected",
    "too_large": "the image exceeds the decompression limit",
    "empty_dataset": "nothing to work on",
    "bad_input": "an input file is malformed",
    "bad_config": "an option or config value is invalid",
    "timeout": "processing the file took longer than the per-file limit",
    "quality_gate": "a new model scored below the one it would replace",
    "internal": "an unexpected error",
}


class DfdetectError(Exception):
    """An expected failure with a machine-readable `code`, the `path` concerned and a `hint`."""

    def __init__(self, code: str, message: str, path: str | Path | None = None, hint: str = ""):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.path = str(path) if path is not None else None
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" ({self.hint})" if self.hint else ""
        return f"{self.code}: {where}{self.message}{fix}"
