"""Import a DeepfakeBench dataset JSON: `{dataset: {label_name: {split: {video_id: {"label", "frames"}}}}}`.

Some of its files add a compression level under the split (`{"c23": {video_id: …}}`); the
`compression` option picks it. Frame paths are resolved against `root`, the folder DeepfakeBench
calls its data root. Rows are frames (images) or, with unit="video", the videos those frames came
from, found by DeepfakeBench's layout (`…/frames/<video>/000.png` ↔ `…/videos/<video>.mp4`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.ffpp import COMPRESSIONS
from dfdetect.datasets.folder import parse_label, require_directory
from dfdetect.datasets.splits import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    check_fractions,
    hash_split,
    leading_token,
)
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, SPLITS, VIDEO_EXTENSIONS, IndexRow


def default_label(label_name: str) -> int:
    """DeepfakeBench names real classes `…_Real`, `FF-real`, `youtube_real`; every other class is a fake."""
    return REAL if "real" in label_name.lower() else FAKE


def load_bench_json(json_path: Path) -> dict:
    if not json_path.is_file():
        raise DfdetectError("missing_path", "DeepfakeBench JSON not found", json_path,
                            "pass the dataset's JSON (DeepfakeBench preprocessing/dataset_json/NAME.json) with --json")
    try:
        content = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DfdetectError("bad_input", f"cannot read the JSON ({exc.__class__.__name__})", json_path,
                            "pass a DeepfakeBench dataset JSON") from exc
    if not isinstance(content, dict) or not all(isinstance(classes, dict) for classes in content.values()):
        raise DfdetectError("bad_input", "not a DeepfakeBench dataset JSON ({dataset: {label: {split: …}}})",
                            json_path, "pass a DeepfakeBench dataset JSON")
    return content


def iter_videos(content: dict, compression: str) -> list[tuple[str, str, str, dict]]:
    """(label name, split, video id, entry) for every video in the JSON."""
    found = []
    for classes in content.values():
        for label_name, splits in classes.items():
            for split, videos in splits.items():
                if videos and all(key in COMPRESSIONS for key in videos):
                    videos = videos.get(compression, {})
                found += [(label_name, split, video_id, entry) for video_id, entry in videos.items()]
    return found


def video_candidates(frame_path: Path) -> list[Path]:
    """Where the video of `…/frames/<video>/000.png` may be: `…/videos/<video>.*`, then beside `frames/`."""
    frame_dir = frame_path.parent
    folders = [frame_dir.parent.parent / "videos", frame_dir.parent.parent] if frame_dir.parent.name == "frames" \
        else [frame_dir.parent]
    return [folder / f"{frame_dir.name}{suffix}" for folder in folders for suffix in VIDEO_EXTENSIONS]


def _label_for(label_name: str, label_map: dict[str, str | int] | None) -> int:
    if not label_map or label_name not in label_map:
        return default_label(label_name)
    try:
        return parse_label(label_map[label_name])
    except DfdetectError as exc:
        raise DfdetectError("bad_config", f"label map: {label_name}: {exc.message}", hint=exc.hint) from exc


def index_deepfakebench(root: str | Path, json_path: str | Path | None = None,
                        label_map: dict[str, str | int] | None = None, unit: str = "frame",
                        split: str = "official", json_splits: list[str] | None = None, compression: str = "c23",
                        val_fraction: float = DEFAULT_VAL_FRACTION,
                        test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """split="official" keeps the JSON's splits (group = video id); split="hash" re-splits by a hash of
    the video id's leading token, so `0000` and `0000_fake` stay together. json_splits picks which of
    the JSON's splits to import."""
    root = Path(root).resolve()
    require_directory(root)
    check_fractions(val_fraction, test_fraction)
    if json_path is None:
        raise DfdetectError("bad_config", "the deepfakebench importer needs the dataset JSON", root,
                            "pass --json PATH/TO/NAME.json")
    if unit not in ("frame", "video"):
        raise DfdetectError("bad_config", f"unit {unit!r} is not frame or video", hint="use --unit frame or video")
    if split not in ("official", "hash"):
        raise DfdetectError("bad_config", f"DeepfakeBench split {split!r} is not official or hash",
                            hint="use --split official or --split hash")
    json_path = Path(json_path).resolve()
    videos = [video for video in iter_videos(load_bench_json(json_path), compression)
              if json_splits is None or video[1] in json_splits]
    label_names = sorted({label_name for label_name, *_ in videos})
    unknown_mapped = sorted(set(label_map or {}) - set(label_names))
    if unknown_mapped:
        raise DfdetectError("bad_config", f"label map names {unknown_mapped} are not in the JSON", json_path,
                            f"its label names are {label_names}")
    labels = {label_name: _label_for(label_name, label_map) for label_name in label_names}
    if split == "official":
        unknown_splits = sorted({video_split for _, video_split, *_ in videos} - set(SPLITS))
        if unknown_splits:
            raise DfdetectError("bad_input", f"JSON splits {unknown_splits} are not train/val/test", json_path,
                                "import the others with --json-splits, or re-split with --split hash")
        _refuse_split_leaks(videos, json_path)
    notes = ["label mapping: " + ", ".join(f"{name} → {'real' if labels[name] == REAL else 'fake'}"
                                           for name in label_names)] if label_names else []
    rows, missing, seen = [], [], set()
    for label_name, video_split, video_id, entry in tqdm(videos, desc="deepfakebench", unit="video", disable=None):
        group = video_id if split == "official" else leading_token(video_id)
        row_split = video_split if split == "official" else hash_split(group, val_fraction, test_fraction)
        frames = [root / frame for frame in entry.get("frames", [])] if isinstance(entry, dict) else []
        if unit == "frame":
            paths = frames
        else:
            candidates = video_candidates(frames[0]) if frames else []
            paths = [next((path for path in candidates if path.is_file()), candidates[0])] if candidates else []
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            if not path.is_file():
                missing.append(str(path))
                continue
            label = labels[label_name]
            rows.append(IndexRow(path=str(path), media_type="image" if unit == "frame" else "video", label=label,
                                 dataset="deepfakebench", split=row_split, group=group,
                                 method=label_name if label == FAKE else ""))
    return DatasetIndex(rows=rows, missing=missing, notes=notes)


def _refuse_split_leaks(videos: list[tuple[str, str, str, dict]], json_path: Path) -> None:
    """DeepfakeBench lists test-only datasets (UADFV, Celeb-DF v1…) with every video in every split:
    kept as is, the same video would be trained on and tested on."""
    splits_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for label_name, video_split, video_id, _ in videos:
        splits_of[label_name, video_id].add(video_split)
    repeated = sorted(key for key, splits in splits_of.items() if len(splits) > 1)
    if repeated:
        label_name, video_id = repeated[0]
        raise DfdetectError(
            "bad_input", f"{len(repeated)} of {len(splits_of)} videos are listed in more than one split "
            f"(e.g. {label_name}/{video_id} in {', '.join(sorted(splits_of[repeated[0]]))})", json_path,
            "import one split with --json-splits test (for a test-only dataset), or re-split with --split hash")
