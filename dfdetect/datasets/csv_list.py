"""A CSV list `path,label[,split,group]`, for datasets whose labels live in a table rather than folders."""

from __future__ import annotations

import csv
from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.folder import media_type_from_name, parse_label
from dfdetect.datasets.splits import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    check_fractions,
    hash_split,
    shared_identities,
)
from dfdetect.errors import DfdetectError
from dfdetect.records import SPLITS, IndexRow

COLUMNS = ("path", "label", "split", "group")
_EXPECTED = "a header `path,label[,split,group]` (label real/fake or 0/1)"


def read_csv_entries(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row as a dict keyed by column name). A file without a header row is read positionally."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            table = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DfdetectError("bad_input", f"cannot read the CSV ({exc.__class__.__name__})", csv_path,
                            f"write it as UTF-8 text with {_EXPECTED}") from exc
    if not table:
        raise DfdetectError("empty_dataset", "the CSV has no rows", csv_path, f"add rows under {_EXPECTED}")
    header = [cell.strip().lower() for cell in table[0][1]]
    if "path" in header or "label" in header:
        if "path" not in header or "label" not in header:
            raise DfdetectError("bad_input", f"the CSV header {table[0][1]} lacks path or label", csv_path,
                                f"start the file with {_EXPECTED}")
        columns, body = header, table[1:]
    else:
        columns, body = list(COLUMNS), table
    return [(line_number, {name: row[position].strip() if position < len(row) else ""
                           for position, name in enumerate(columns)})
            for line_number, row in body]


def index_csv(root: str | Path, val_fraction: float = DEFAULT_VAL_FRACTION,
              test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """root is the CSV file. Relative paths are resolved against its folder; a row without a split
    gets a hash split of its group, and a row without a group gets the identity read from its name."""
    csv_path = Path(root).resolve()
    if not csv_path.is_file():
        raise DfdetectError("missing_path", "CSV list not found", csv_path, "pass the CSV file as --root")
    check_fractions(val_fraction, test_fraction)
    entries = []
    missing, problems = [], []
    for line_number, entry in tqdm(read_csv_entries(csv_path), desc="csv", unit="row", disable=None):
        path = (csv_path.parent / entry["path"]).resolve()
        media_type = media_type_from_name(path)
        try:
            label = parse_label(entry["label"], csv_path)
        except DfdetectError as exc:
            problems.append(f"line {line_number}: {exc.message}")
            continue
        split = entry.get("split", "").lower()
        if split and split not in SPLITS:
            problems.append(f"line {line_number}: split {entry['split']!r} is not one of {', '.join(SPLITS)}")
        elif media_type is None:
            problems.append(f"line {line_number}: {entry['path']} is not an image or video file name")
        elif not path.is_file():
            missing.append(str(path))
        else:
            entries.append((path, media_type, label, split, entry.get("group", "")))
    identities = shared_identities([path for path, *_ in entries])
    rows = []
    for path, media_type, label, split, group in entries:
        group = group or identities.get(path, path.stem)
        rows.append(IndexRow(path=str(path), media_type=media_type, label=label, dataset="csv",
                             split=split or hash_split(group, val_fraction, test_fraction), group=group,
                             identity=identities.get(path, "")))
    notes = [f"{len(problems)} CSV lines were skipped: " + "; ".join(problems[:10])] if problems else []
    return DatasetIndex(rows=rows, missing=missing, notes=notes)
