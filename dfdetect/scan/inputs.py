"""What to scan: files, directories (recursive), glob patterns and manifests (.txt / .csv).

A path named directly is kept even when it does not exist, so it gets its own error record instead of
vanishing from the results. Manifests are how archives arrive from other systems: one path per line
(.txt) or a `path` column (.csv); relative entries resolve against the manifest's own folder, so a
manifest travels with its media.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from dfdetect.errors import DfdetectError

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".txt", ".csv")
GLOB_CHARACTERS = frozenset("*?[")


def _walk(directory: Path) -> Iterator[Path]:
    """Every non-hidden file below `directory`, in a stable (sorted) order."""
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from (Path(root) / n for n in sorted(names) if not n.startswith("."))


def read_manifest(path: str | Path) -> list[Path]:
    """Paths listed in a .txt (one per line, `#` comments and blank lines skipped) or a .csv with a
    `path` column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DfdetectError("bad_input", f"cannot read the manifest ({exc.__class__.__name__})", path,
                            "a manifest is a UTF-8 text file") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if "path" not in (reader.fieldnames or []):
            raise DfdetectError("bad_input", f"the manifest has no 'path' column (columns: {reader.fieldnames})",
                                path, "name the column of file paths 'path'")
        entries = [row["path"].strip() for row in reader if (row.get("path") or "").strip()]
    else:
        entries = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(path.parent / entry).absolute() for entry in entries]


def _expand_one(given: str | Path) -> Iterator[Path]:
    path = Path(given).absolute()
    if path.is_dir():
        yield from _walk(path)
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        for listed in read_manifest(path):
            yield from (_walk(listed) if listed.is_dir() else (listed,))
    elif not path.exists() and GLOB_CHARACTERS.intersection(str(given)):
        matches = sorted(glob.glob(str(given), recursive=True))
        if not matches:
            log.warning("the pattern %s matches no file", given)
        for match in matches:
            match_path = Path(match).absolute()
            yield from (_walk(match_path) if match_path.is_dir() else (match_path,))
    else:
        yield path


def expand_inputs(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Absolute file paths to scan, in the order given (directories sorted), each file once: `a/../b`
    is written as `b`, and two names of one file (a symlink and its target, a folder named twice) are
    one input, recorded under the name met first. Files named directly with a .txt or .csv suffix are
    read as manifests, not scanned."""
    excluded = {os.path.realpath(p) for p in exclude}
    found: dict[str, Path] = {}
    for given in paths:
        for path in _expand_one(given):
            real = os.path.realpath(path)  # a symlink loop resolves to a name, not an error
            if real not in excluded and real not in found:
                found[real] = Path(os.path.normpath(path))
    return list(found.values())
