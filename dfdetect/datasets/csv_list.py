"""A CSV list `path,label[,split,group,dataset,original]`, for datasets whose labels live in a table.

Groups decide splits, so they must be right: a `group` column is used when present; otherwise the
benchmarks' own naming rules derive one (FF++ `183.mp4` / `183_253.mp4` → the official pair of 183,
Celeb-DF `id9_0000.mp4` / `id9_id26_0000.mp4` → person id9, DFDC → the `original` column's video),
and any other file is its own group. Which rule grouped how many files is reported, because a wrong
group is a silent train/test leak: the leakage check can only compare the groups it is given.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.ffpp import official_pairs
from dfdetect.datasets.folder import media_type_from_name, parse_label
from dfdetect.datasets.splits import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, check_fractions, hash_split
from dfdetect.errors import DfdetectError
from dfdetect.records import SPLITS, IndexRow

COLUMNS = ("path", "label", "split", "group")
_EXPECTED = "a header `path,label[,split,group,dataset,original]` (label real/fake or 0/1)"

# Benchmark names as they survive being flattened into one folder (`original_youtube_c40_183.mp4`,
# `Deepfakes_c40_183_253.mp4`): the ids sit at the end of the stem.
_FFPP_FAKE = re.compile(r"(?:^|_)(\d{3})_(\d{3})$")
_FFPP_REAL = re.compile(r"(?:^|_)(\d{3})$")
_CELEBDF = re.compile(r"(?:^|_)(id\d+)(?:_id\d+)?_(\d{4})$")


def convention_group(path: Path, original: str, pairs: dict[str, tuple[str, str]]) -> tuple[str, str, str] | None:
    """(rule, group, identity) from a benchmark's naming convention, or None when the name follows
    none. FF++: a real video and every fake made with its face share the official pair's group;
    Celeb-DF: the person whose video it is; DFDC: the original video a fake was made from."""
    if original:
        return "dfdc original column", f"dfdc:{Path(original).stem}", ""
    if media_type_from_name(path) != "video":
        return None
    stem = path.stem
    if match := _CELEBDF.search(stem):
        return "celebdf names", f"celebdf:{match.group(1)}", match.group(1)
    if (match := _FFPP_FAKE.search(stem)) and match.group(1) in pairs:
        target, source = match.groups()
        group = pairs[target][1] if pairs[target] == pairs.get(source) else "_".join(sorted((target, source)))
        return "ffpp names", f"ffpp:{group}", target
    if (match := _FFPP_REAL.search(stem)) and match.group(1) in pairs:
        return "ffpp names", f"ffpp:{pairs[match.group(1)][1]}", match.group(1)
    return None


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
    gets a hash split of its group; a row without a group gets one from convention_group, else its
    own. A `dataset` column names each row's dataset (default "csv")."""
    csv_path = Path(root).resolve()
    if not csv_path.is_file():
        raise DfdetectError("missing_path", "CSV list not found", csv_path, "pass the CSV file as --root")
    check_fractions(val_fraction, test_fraction)
    pairs = official_pairs()
    rows, missing, problems = [], [], []
    rules: Counter[str] = Counter()
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
            continue
        if media_type is None:
            problems.append(f"line {line_number}: {entry['path']} is not an image or video file name")
            continue
        if not path.is_file():
            missing.append(str(path))
            continue
        identity = ""
        if entry.get("group"):
            rule, group = "group column", entry["group"]
        elif derived := convention_group(path, entry.get("original", ""), pairs):
            rule, group, identity = derived
        else:
            rule, group = "one group per file", str(path)
        rules[rule] += 1
        rows.append(IndexRow(path=str(path), media_type=media_type, label=label, dataset=entry.get("dataset") or "csv",
                             split=split or hash_split(group, val_fraction, test_fraction), group=group,
                             identity=identity))
    notes = ["groups from " + ", ".join(f"{rule} ({count} files)" for rule, count in rules.most_common())]
    if problems:
        notes.append(f"{len(problems)} CSV lines were skipped: " + "; ".join(problems[:10]))
    return DatasetIndex(rows=rows, missing=missing, notes=notes)
