"""What an indexer found, and the checks every index passes before it is written.

Indexers report rather than crash: files the metadata names but the disk lacks, and facts worth a
user's attention (label disagreements, identity overlap), travel beside the rows so that one bad
entry never stops the rest of a dataset from being indexed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.records import REAL, SPLITS, IndexRow

_SHOWN = 10


@dataclass
class DatasetIndex:
    rows: list[IndexRow]
    missing: list[str] = field(default_factory=list)  # paths named by the metadata but absent on disk
    notes: list[str] = field(default_factory=list)  # facts for the user: disagreements, overlaps, skipped files


def check_leakage(rows: list[IndexRow]) -> None:
    """Refuse an index in which a group (the leakage unit) spans more than one split."""
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        splits_of_group[row.group].add(row.split)
    leaked = sorted(group for group, splits in splits_of_group.items() if len(splits) > 1)
    if leaked:
        shown = ", ".join(f"{group} ({'/'.join(sorted(splits_of_group[group]))})" for group in leaked[:_SHOWN])
        more = f" and {len(leaked) - _SHOWN} more" if len(leaked) > _SHOWN else ""
        raise DfdetectError("bad_input", f"{len(leaked)} groups appear in more than one split: {shown}{more}",
                            hint="give every file of a group the same split (fix the split/group columns or "
                                 "use a hash split)")


def require_rows(index: DatasetIndex, root: str | Path) -> None:
    if index.rows:
        return
    hint = "check --root and the dataset layout"
    if index.missing:
        hint = f"the metadata names {len(index.missing)} files, none of them under this root; check --root"
    raise DfdetectError("empty_dataset", "no media files were indexed", root, hint)


def summarize(rows: list[IndexRow]) -> str:
    """A small text table of counts by split × label × method, then group counts per split."""
    counts = Counter((row.split, row.label, row.method) for row in rows)
    split_order = {split: position for position, split in enumerate(SPLITS)}
    keys = sorted(counts, key=lambda key: (split_order.get(key[0], len(SPLITS)), key[0], key[1], key[2]))
    method_width = max([len("method"), *(len(key[2] or "-") for key in keys)])
    lines = [f"{'split':<6} {'label':<5} {'method':<{method_width}} {'count':>8}"]
    for split, label, method in keys:
        label_name = "real" if label == REAL else "fake"
        lines.append(f"{split:<6} {label_name:<5} {method or '-':<{method_width}} {counts[split, label, method]:>8}")
    lines.append(f"{'total':<6} {'':<5} {'':<{method_width}} {len(rows):>8}")
    groups_per_split: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        groups_per_split[row.split].add(row.group)
    ordered = sorted(groups_per_split, key=lambda split: split_order.get(split, len(SPLITS)))
    lines.append("groups: " + ", ".join(f"{split} {len(groups_per_split[split])}" for split in ordered))
    return "\n".join(lines)


def describe_missing(missing: list[str], listed_in: Path | None = None) -> str:
    """The first few missing paths and how many more, so a half-downloaded dataset is visible at a
    glance; `listed_in` names the file that holds the whole list."""
    if not missing:
        return ""
    shown = "\n".join(f"  {path}" for path in missing[:_SHOWN])
    more = f"\n  … and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    where = f"\nthe full list: {listed_in}" if listed_in is not None else ""
    return f"{len(missing)} files named in the metadata are missing on disk:\n{shown}{more}{where}"


def write_missing_list(missing: list[str], index_path: Path) -> Path:
    """All missing paths, one per line, beside the index (`<index>.missing.txt`), so a partial copy
    of a dataset can be completed from the list rather than from the ten paths printed."""
    listing = index_path.with_name(index_path.name + ".missing.txt")
    listing.write_text("".join(f"{path}\n" for path in missing), encoding="utf-8")
    return listing


def split_warnings(rows: list[IndexRow]) -> list[str]:
    """What will fail or mislead later, said when the index is built: no real rows, no validation
    split (fit needs one to choose a checkpoint), a split with one class (its AUC is undefined)."""
    warnings = []
    labels_of_split: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        labels_of_split[row.split].add(row.label)
    if not any(row.label == REAL for row in rows):
        warnings.append("no real rows: a detector trained or evaluated on this index never sees a real face")
    if "val" not in labels_of_split:
        warnings.append("no val split: `dfdetect fit` needs validation rows to choose a checkpoint "
                        "(set --val-fraction, or a split column)")
    for split in SPLITS:
        if len(labels_of_split.get(split, ())) == 1:
            only = "real" if REAL in labels_of_split[split] else "fake"
            warnings.append(f"split {split} has only {only} rows: its AUC and EER are undefined")
    return warnings
