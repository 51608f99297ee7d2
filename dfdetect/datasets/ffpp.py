"""FaceForensics++ (and its DeepFakeDetection part) in the layout its download script writes.

Splits follow the official pair lists shipped in `ffpp_splits/`: a pair [t, s] puts originals t and
s and fakes t_s and s_t in one split, and the pair is the group, since each fake carries both
people. DeepFakeDetection's actor videos are not in those lists; they are split by a hash of the
target actor (the actor whose scene was re-faced), so an actor's real scenes and the fakes made from
them share a split.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.folder import media_type_from_name, require_directory
from dfdetect.datasets.splits import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, check_fractions, hash_split
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, SPLITS, IndexRow

COMPRESSIONS = ("raw", "c23", "c40")
PAIR_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
DFD_METHOD = "DeepFakeDetection"
METHODS = (*PAIR_METHODS, DFD_METHOD)

_PAIR_FAKE = re.compile(r"^(\d{3})_(\d{3})$")
_DFD_REAL = re.compile(r"^(\d+)__(.+)$")
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__[A-Za-z0-9]+$")


def official_pairs() -> dict[str, tuple[str, str]]:
    """Video id → (split, pair group "t_s" with t < s) from the official train/val/test lists."""
    assignment = {}
    for split in SPLITS:
        text = resources.files("dfdetect.datasets").joinpath(f"ffpp_splits/{split}.json").read_text()
        for target, source in json.loads(text):
            group = "_".join(sorted((target, source)))
            assignment[target] = assignment[source] = (split, group)
    return assignment


def dfd_group(actor: str) -> str:
    return f"actor_{actor}"


def _videos(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.iterdir())
            if path.is_file() and media_type_from_name(path) == "video" and not path.name.startswith(".")}


def _compressions_present(root: Path) -> set[str]:
    levels = list((root / "original_sequences").glob("*/*")) + list((root / "manipulated_sequences").glob("*/*"))
    return {level.name for level in levels if level.name in COMPRESSIONS and (level / "videos").is_dir()}


def _select_methods(root: Path, compression: str, methods: list[str] | None) -> tuple[list[str], list[str]]:
    """(methods to index, notes): all present methods by default; unknown names are refused."""
    present = [m for m in METHODS if (root / "manipulated_sequences" / m / compression / "videos").is_dir()]
    if methods is None:
        return present, []
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DfdetectError("bad_config", f"unknown FF++ methods {unknown}", hint=f"choose from {', '.join(METHODS)}")
    absent = [m for m in methods if m not in present]
    notes = [f"requested methods not found at {compression}: {', '.join(absent)}"] if absent else []
    return [m for m in methods if m in present], notes


def index_ffpp(root: str | Path, compression: str = "c23", methods: list[str] | None = None,
               val_fraction: float = DEFAULT_VAL_FRACTION,
               test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """val/test fractions apply only to the DeepFakeDetection actors, which the official lists do not cover."""
    root = Path(root).resolve()
    require_directory(root)
    check_fractions(val_fraction, test_fraction)
    if compression not in COMPRESSIONS:
        raise DfdetectError("bad_config", f"unknown compression {compression!r}", hint=f"use one of {COMPRESSIONS}")
    present = _compressions_present(root)
    if compression not in present:
        found = ", ".join(sorted(present)) or "none"
        raise DfdetectError("empty_dataset", f"no FF++ videos at compression {compression}", root,
                            f"compressions found: {found}; pass --compression, or check --root")
    selected, notes = _select_methods(root, compression, methods)
    pairs = official_pairs()
    youtube_dir = root / "original_sequences" / "youtube" / compression / "videos"
    actors_dir = root / "original_sequences" / "actors" / compression / "videos"
    rows: list[IndexRow] = []
    unlisted: list[str] = []

    def add(path: Path, label: int, split: str, group: str, method: str = "", identity: str = "",
            source: Path | None = None) -> None:
        rows.append(IndexRow(path=str(path), media_type="video", label=label, dataset="ffpp", split=split, group=group,
                             method=method, compression=compression, identity=identity,
                             source=str(source) if source else ""))

    originals = _videos(youtube_dir)
    for stem, path in originals.items():
        if stem in pairs:
            add(path, REAL, *pairs[stem], identity=stem)
        else:
            unlisted.append(str(path))
    missing = [str(youtube_dir / f"{video_id}.mp4") for video_id in sorted(pairs) if video_id not in originals]
    pair_groups = sorted({group for _, group in pairs.values()})
    expected_fakes = [stem for group in pair_groups for stem in (group, "_".join(reversed(group.split("_"))))]

    for method in tqdm([m for m in selected if m in PAIR_METHODS], desc="ffpp methods", disable=None):
        method_dir = root / "manipulated_sequences" / method / compression / "videos"
        fakes = _videos(method_dir)
        for stem, path in fakes.items():
            match = _PAIR_FAKE.match(stem)
            target, source = match.groups() if match else ("", "")
            if target not in pairs or pairs[target] != pairs.get(source):
                unlisted.append(str(path))
                continue
            add(path, FAKE, *pairs[target], method=method, identity=target, source=youtube_dir / f"{target}.mp4")
        missing += [str(method_dir / f"{stem}.mp4") for stem in expected_fakes if stem not in fakes]

    if DFD_METHOD in selected:
        dfd_rows, dfd_unlisted, dfd_notes = _dfd_rows(root, compression, actors_dir, val_fraction, test_fraction)
        rows += dfd_rows
        unlisted += dfd_unlisted
        notes += dfd_notes

    if unlisted:
        notes.append(f"{len(unlisted)} videos fit neither the official pair lists nor the DeepFakeDetection naming "
                     f"and were left out (e.g. {unlisted[0]})")
    notes += _mask_notes(root, selected, rows)
    return DatasetIndex(rows=rows, missing=missing, notes=notes)


def _dfd_rows(root: Path, compression: str, actors_dir: Path, val_fraction: float,
              test_fraction: float) -> tuple[list[IndexRow], list[str], list[str]]:
    """DeepFakeDetection: actor scenes `01__scene.mp4`, fakes `01_02__scene__CODE.mp4` (target 01, face of 02)."""
    rows, unlisted = [], []

    def split_of(actor: str) -> str:
        return hash_split(dfd_group(actor), val_fraction, test_fraction)

    for stem, path in _videos(actors_dir).items():
        match = _DFD_REAL.match(stem)
        if match is None:
            unlisted.append(str(path))
            continue
        actor = match.group(1)
        rows.append(IndexRow(path=str(path), media_type="video", label=REAL, dataset="ffpp", split=split_of(actor),
                             group=dfd_group(actor), compression=compression, identity=dfd_group(actor)))
    crossings = 0
    for stem, path in _videos(root / "manipulated_sequences" / DFD_METHOD / compression / "videos").items():
        match = _DFD_FAKE.match(stem)
        if match is None:
            unlisted.append(str(path))
            continue
        target, face_actor, scene = match.groups()
        crossings += split_of(face_actor) != split_of(target)
        rows.append(IndexRow(path=str(path), media_type="video", label=FAKE, dataset="ffpp", split=split_of(target),
                             group=dfd_group(target), method=DFD_METHOD, compression=compression,
                             identity=dfd_group(target),
                             source=str(actors_dir / f"{target}__{scene}.mp4")))
    notes = []
    if crossings:
        notes.append(f"{crossings} DeepFakeDetection fakes carry the face of an actor whose own videos are in "
                     "another split (they are grouped by the target actor, whose scene they reuse)")
    return rows, unlisted, notes


def _mask_notes(root: Path, methods: list[str], rows: list[IndexRow]) -> list[str]:
    """Masks are counted, not indexed: IndexRow has no column relating a mask video to its fake."""
    notes = []
    for method in methods:
        masks = _videos(root / "manipulated_sequences" / method / "masks" / "videos")
        if not masks:
            continue
        fakes = {Path(row.path).stem for row in rows if row.method == method}
        notes.append(f"masks: {method} has {len(masks)} mask videos, covering {len(fakes & masks.keys())} "
                     f"of its {len(fakes)} indexed fakes")
    return notes
