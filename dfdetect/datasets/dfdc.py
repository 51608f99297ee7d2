"""DFDC: the training parts `dfdc_train_part_*/metadata.json` and the labelled public test set.

A fake's group is the original video it was made from (a real video is its own group), so every
fake of one filmed clip shares a split with it. The parts are download chunks, not a split: train
parts are split by a hash of the group. With the public test set present (its `labels.csv` beside
its videos, anywhere under the root) that set is the test split and the parts give train/val only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.folder import media_type_from_name, parse_label, require_directory
from dfdetect.datasets.splits import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, check_fractions, hash_split
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, IndexRow

PART_PREFIX = "dfdc_train_part_"
METADATA_LABELS = {"REAL": REAL, "FAKE": FAKE}


def select_parts(root: Path, parts: list[str] | None) -> list[Path]:
    """Part folders by number (`0`) or full name (`dfdc_train_part_0`); all of them by default."""
    available = {path.name: path for path in sorted(root.glob(f"{PART_PREFIX}*")) if path.is_dir()}
    if parts is None:
        return list(available.values())
    wanted = [str(part) if str(part).startswith(PART_PREFIX) else f"{PART_PREFIX}{part}" for part in parts]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        names = ", ".join(name.removeprefix(PART_PREFIX) for name in available) or "none"
        raise DfdetectError("bad_config", f"DFDC parts not found: {', '.join(unknown)}", root,
                            f"parts present: {names}")
    return [available[name] for name in wanted]


def read_part_metadata(part: Path) -> dict[str, dict]:
    metadata_path = part / "metadata.json"
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DfdetectError("bad_input", f"cannot read metadata.json ({exc.__class__.__name__})", metadata_path,
                            "re-download this part") from exc
    if not isinstance(metadata, dict):
        raise DfdetectError("bad_input", "metadata.json is not an object keyed by file name", metadata_path,
                            "re-download this part")
    return metadata


def find_test_labels(root: Path) -> Path | None:
    """The public test set's labels.csv, in the root or one folder below it (not inside a train part)."""
    candidates = [root / "labels.csv", *sorted(root.glob("*/labels.csv"))]
    return next((path for path in candidates if path.is_file() and not path.parent.name.startswith(PART_PREFIX)),
                None)


def index_dfdc(root: str | Path, parts: list[str] | None = None, val_fraction: float = DEFAULT_VAL_FRACTION,
               test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """test_fraction applies only when no labelled public test set is found."""
    root = Path(root).resolve()
    require_directory(root)
    check_fractions(val_fraction, test_fraction)
    labels_path = find_test_labels(root)
    rows, missing, notes = [], [], []
    if labels_path is not None:
        rows, missing, notes = _test_set_rows(labels_path)
        test_fraction = 0.0
    entries = []
    for part in tqdm(select_parts(root, parts), desc="dfdc parts", disable=None):
        try:
            metadata = read_part_metadata(part)
        except DfdetectError as exc:
            notes.append(f"part left out: {exc.one_line()}")
            continue
        entries += [(part / name, facts) for name, facts in metadata.items()]
    path_of = {path.name: path for path, _ in entries}
    bad = []
    for path, facts in entries:
        label = METADATA_LABELS.get(str(facts.get("label")).upper()) if isinstance(facts, dict) else None
        if label is None:
            bad.append(path.name)
            continue
        if not path.is_file():
            missing.append(str(path))
            continue
        original = facts.get("original") if label == FAKE else None
        group = Path(original).stem if original else path.stem
        source = path_of.get(original, "") if original else ""
        rows.append(IndexRow(path=str(path), media_type="video", label=label, dataset="dfdc",
                             split=hash_split(group, val_fraction, test_fraction), group=group,
                             source=str(source)))
    if bad:
        notes.append(f"{len(bad)} metadata entries have no REAL/FAKE label and were left out: {', '.join(bad[:5])}")
    return DatasetIndex(rows=rows, missing=missing, notes=notes)


def _test_set_rows(labels_path: Path) -> tuple[list[IndexRow], list[str], list[str]]:
    """Rows of the public test set (`filename,label` with 1 = fake); its videos may sit in any sub-folder."""
    folder = labels_path.parent
    videos = {path.name: path for path in folder.rglob("*")
              if media_type_from_name(path) == "video" and not any(part.startswith(PART_PREFIX)
                                                                   for part in path.relative_to(folder).parts)}
    rows, missing, bad = [], [], []
    with open(labels_path, newline="", encoding="utf-8-sig") as handle:
        for entry in csv.DictReader(handle):
            name = (entry.get("filename") or "").strip()
            try:
                label = parse_label(entry.get("label") or "", labels_path)
            except DfdetectError:
                bad.append(name or "(no filename)")
                continue
            if name not in videos:
                missing.append(str(folder / name))
                continue
            rows.append(IndexRow(path=str(videos[name]), media_type="video", label=label, dataset="dfdc",
                                 split="test", group=Path(name).stem))
    notes = [f"public test set from {labels_path}: {len(rows)} videos in the test split"]
    if bad:
        notes.append(f"{len(bad)} lines of labels.csv have no 0/1 label: {', '.join(bad[:5])}")
    return rows, missing, notes
