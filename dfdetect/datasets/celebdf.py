"""Celeb-DF v2: `Celeb-real/`, `YouTube-real/`, `Celeb-synthesis/` and the official test list.

The test list writes 1 for real and 0 for fake, the opposite of our labels. The folder a video sits
in is taken as the truth, and any line of the list that disagrees with it is reported.

A fake `id9_id26_0000` is the real video `id9_0000` re-faced with person 26, so its group is
`id9_0000`. The official list does not keep groups whole (many listed fakes come from real videos
outside it), so non-listed members of a group that has a listed member are left out of training
rather than moved into the test set: the official test set stays exactly as published.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from dfdetect.datasets.checks import DatasetIndex
from dfdetect.datasets.folder import media_type_from_name, require_directory
from dfdetect.datasets.splits import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, check_fractions, hash_split
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, IndexRow

TEST_LIST = "List_of_testing_videos.txt"
FOLDER_LABELS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
METHOD = "Celeb-synthesis"
LIST_LABELS = {"1": REAL, "0": FAKE}  # the list's own convention, flipped to ours

_REAL_NAME = re.compile(r"^(id\d+)_(\d+)$")
_FAKE_NAME = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")


def read_test_list(list_path: Path) -> tuple[dict[str, int], list[str]]:
    """(relative path → our label, unparsable lines) from the official test list."""
    entries, bad_lines = {}, []
    for number, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[0] not in LIST_LABELS:
            bad_lines.append(f"line {number}: {line!r}")
            continue
        entries[fields[1]] = LIST_LABELS[fields[0]]
    return entries, bad_lines


def describe_video(relative: str) -> tuple[str, str, str, str] | None:
    """(group, identity, face identity, source relative path) from a video's folder and name.

    The face identity is the person whose face is shown: the target for a real video, the swapped-in
    person for a fake. YouTube-real videos carry no identity. None when the name fits no pattern.
    """
    folder, _, name = relative.partition("/")
    stem = Path(name).stem
    if folder == "YouTube-real":
        return f"youtube_{stem}", "", "", ""
    if folder == "Celeb-real" and (match := _REAL_NAME.match(stem)):
        return stem, match.group(1), match.group(1), ""
    if folder == "Celeb-synthesis" and (match := _FAKE_NAME.match(stem)):
        target, face, number = match.groups()
        return f"{target}_{number}", target, face, f"Celeb-real/{target}_{number}.mp4"
    return None


def index_celebdf(root: str | Path, split: str = "official", val_fraction: float = DEFAULT_VAL_FRACTION,
                  test_fraction: float = DEFAULT_TEST_FRACTION) -> DatasetIndex:
    """split="official": the published test list, the rest train/val by hash of group (test_fraction
    unused). split="identity": train/val/test by hash of the person whose video it is, so no one's
    own videos span two splits (swapped-in faces still can; the notes count them)."""
    root = Path(root).resolve()
    require_directory(root)
    check_fractions(val_fraction, test_fraction)
    if split not in ("official", "identity"):
        raise DfdetectError("bad_config", f"Celeb-DF split {split!r} is not official or identity",
                            hint="use --split official or --split identity")
    notes: list[str] = []
    videos = {f"{folder}/{path.name}": path for folder in FOLDER_LABELS if (root / folder).is_dir()
              for path in sorted((root / folder).iterdir()) if media_type_from_name(path) == "video"}
    described = {relative: facts for relative in videos if (facts := describe_video(relative)) is not None}
    unnamed = [relative for relative in videos if relative not in described]
    if unnamed:
        notes.append(f"{len(unnamed)} videos fit no Celeb-DF name pattern and were left out: "
                     + ", ".join(unnamed[:5]))

    if split == "official":
        list_path = root / TEST_LIST
        if not list_path.is_file():
            raise DfdetectError("missing_path", f"{TEST_LIST} not found", list_path,
                                "put the official test list in the dataset root, or use --split identity")
        test_labels, bad_lines = read_test_list(list_path)
        if bad_lines:
            notes.append(f"{len(bad_lines)} unreadable lines in {TEST_LIST}: " + "; ".join(bad_lines[:5]))
        missing = [str(root / relative) for relative in test_labels if relative not in videos]
        notes += label_disagreements(test_labels)
        splits, left_out = official_splits(described, test_labels, val_fraction)
        if left_out:
            notes.append(f"{len(left_out)} videos share a source video with the official test set without being "
                         "in it; left out so that training never sees a test group")
    else:
        missing = []
        splits = {relative: hash_split(facts[1] or facts[0], val_fraction, test_fraction)
                  for relative, facts in described.items()}

    rows = []
    for relative, video_split in splits.items():
        group, identity, _, source = described[relative]
        label = FOLDER_LABELS[relative.split("/")[0]]
        rows.append(IndexRow(path=str(videos[relative]), media_type="video", label=label, dataset="celebdf",
                             split=video_split, group=group, method=METHOD if label == FAKE else "",
                             identity=identity, source=str(root / source) if source else ""))
    notes.append(identity_overlap({relative: described[relative] for relative in splits}, splits))
    return DatasetIndex(rows=rows, missing=missing, notes=notes)


def label_disagreements(test_labels: dict[str, int]) -> list[str]:
    """Lines of the test list whose (flipped) label contradicts the folder the video is listed under."""
    wrong = [relative for relative, label in test_labels.items()
             if FOLDER_LABELS.get(relative.split("/")[0], label) != label]
    if not wrong:
        return []
    return [f"{len(wrong)} test-list labels disagree with their folder (the folder is used): " + ", ".join(wrong[:10])]


def official_splits(described: dict[str, tuple[str, str, str, str]], test_labels: dict[str, int],
                    val_fraction: float) -> tuple[dict[str, str], list[str]]:
    """(relative path → split, left-out paths): listed videos in test, other groups train/val by hash."""
    test_groups = {facts[0] for relative, facts in described.items() if relative in test_labels}
    splits, left_out = {}, []
    for relative, (group, *_) in described.items():
        if relative in test_labels:
            splits[relative] = "test"
        elif group in test_groups:
            left_out.append(relative)
        else:
            splits[relative] = hash_split(group, val_fraction, 0.0)
    return splits, left_out


def identity_overlap(described: dict[str, tuple[str, str, str, str]], splits: dict[str, str]) -> str:
    """How many people appear in both train and test: by whose video it is, and counting swapped-in faces."""
    owners: dict[str, set[str]] = defaultdict(set)
    anyone: dict[str, set[str]] = defaultdict(set)
    for relative, (_, identity, face, _) in described.items():
        owners[splits[relative]].update({identity} - {""})
        anyone[splits[relative]].update({identity, face} - {""})
    return (f"identities in both train and test: {len(owners['train'] & owners['test'])} "
            f"(counting swapped-in faces: {len(anyone['train'] & anyone['test'])})")
