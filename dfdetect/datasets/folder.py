"""Any folder of images and videos, labelled by `real/` and `fake/` folders or one label for all."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.splits import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    check_fractions,
    hash_split,
    shared_identities,
)
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, IMAGE_EXTENSIONS, LABELS, VIDEO_EXTENSIONS, IndexRow


def media_type_from_name(path: Path) -> str | None:
    """Indexing trusts the extension: it must not open every file of a large dataset."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def require_directory(root: Path) -> None:
    if not root.exists():
        raise DfdetectError("missing_path", "dataset root not found", root, "check --root")
    if not root.is_dir():
        raise DfdetectError("bad_config", "dataset root is not a folder", root, "pass the dataset's top folder")


def parse_label(value: str | int, path: str | Path | None = None) -> int:
    """real/fake (any case) or 0/1 as our label; anything else is refused rather than guessed."""
    text = str(value).strip().lower()
    if text in LABELS:
        return LABELS[text]
    if text in ("0", "1"):
        return int(text)
    raise DfdetectError("bad_input", f"label {value!r} is neither real/fake nor 0/1", path,
                        "use real, fake, 0 (real) or 1 (fake)")


def label_from_folders(path: Path, root: Path) -> tuple[int, str] | None:
    """(label, method) from the nearest ancestor named real/ or fake/ (the root's own name counts).

    For a fake, the folder just below `fake/` names the method (`fake/sbi/001.png` → "sbi").
    """
    parts = [root.name, *path.relative_to(root).parts[:-1]]
    for depth in range(len(parts) - 1, -1, -1):
        name = parts[depth].lower()
        if name in LABELS:
            below = parts[depth + 1:]
            method = below[0] if LABELS[name] == FAKE and below else ""
            return LABELS[name], method
    return None


def list_media(root: Path) -> list[Path]:
    """Image and video files under root, sorted; hidden files (`.DS_Store`, `._x.jpg`) are skipped."""
    found = []
    for path in tqdm(sorted(root.rglob("*")), desc="listing", unit="file", disable=None):
        if path.name.startswith(".") or not path.is_file():
            continue
        if media_type_from_name(path) is not None:
            found.append(path)
    return found


def index_folder(root: str | Path, label: str | None = None, val_fraction: float = DEFAULT_VAL_FRACTION,
                 test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """Rows for every image and video under root. `label` labels every file, overriding the folders;
    without it, files with no real/ or fake/ folder above them are reported and left out."""
    root = Path(root).resolve()
    require_directory(root)
    check_fractions(val_fraction, test_fraction)
    forced_label = parse_label(label) if label is not None else None
    labelled: dict[Path, tuple[int, str]] = {}
    unlabelled = []
    for path in list_media(root):
        found = (forced_label, "") if forced_label is not None else label_from_folders(path, root)
        if found is None:
            unlabelled.append(path)
        else:
            labelled[path] = found
    identities = shared_identities(list(labelled))
    rows = []
    for path, (file_label, method) in labelled.items():
        group = identities.get(path, path.stem)
        rows.append(IndexRow(path=str(path), media_type=media_type_from_name(path), label=file_label,
                             dataset="folder", split=hash_split(group, val_fraction, test_fraction), group=group,
                             method=method, identity=identities.get(path, "")))
    notes = []
    if unlabelled:
        notes.append(f"{len(unlabelled)} files have no real/ or fake/ folder above them and were left out "
                     f"(e.g. {unlabelled[0]}); pass --label real|fake to label them all")
    return DatasetIndex(rows=rows, notes=notes)
