from collections import defaultdict

import pytest

from dfdetect.datasets import build_index, index_dataset
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL


def _identity_tree(root, touch, people=40):
    for person in range(people):
        touch(root / "real" / f"{person:03d}_neutral.jpg")
        touch(root / "real" / "smiles" / f"{person:03d}_smiling.png")
        touch(root / "fake" / "sbi" / f"{person:03d}_sbi.webp")
    touch(root / "fake" / "clips" / "talking.mp4")
    touch(root / "real" / "notes.txt")
    touch(root / "real" / ".DS_Store")


def test_labels_methods_and_media_types(tmp_path, touch):
    _identity_tree(tmp_path, touch)
    rows = {r.path.removeprefix(str(tmp_path) + "/"): r for r in index_dataset("folder", tmp_path)}
    assert len(rows) == 40 * 3 + 1
    assert rows["real/smiles/007_smiling.png"].label == REAL
    assert rows["fake/sbi/007_sbi.webp"].label == FAKE
    assert rows["fake/sbi/007_sbi.webp"].method == "sbi"
    assert rows["fake/clips/talking.mp4"].media_type == "video"
    assert rows["real/007_neutral.jpg"].media_type == "image"
    assert rows["real/007_neutral.jpg"].identity == "007"
    assert rows["fake/clips/talking.mp4"].group == "talking"


def test_all_files_of_an_identity_share_a_split_and_reruns_agree(tmp_path, touch):
    _identity_tree(tmp_path, touch)
    first = index_dataset("folder", tmp_path)
    splits_of_group = defaultdict(set)
    for row in first:
        splits_of_group[row.group].add(row.split)
    assert all(len(splits) == 1 for splits in splits_of_group.values())
    assert len([r for r in first if r.group == "012"]) == 3
    assert {r.split for r in first} == {"train", "val", "test"}
    assert [(r.path, r.split) for r in index_dataset("folder", tmp_path)] == [(r.path, r.split) for r in first]


def test_nearest_real_or_fake_ancestor_wins(tmp_path, touch):
    touch(tmp_path / "fake" / "real" / "a.jpg")
    touch(tmp_path / "real" / "x" / "fake" / "y" / "b.jpg")
    rows = {r.path.rsplit("/", 1)[1]: r for r in index_dataset("folder", tmp_path)}
    assert rows["a.jpg"].label == REAL
    assert rows["b.jpg"].label == FAKE and rows["b.jpg"].method == "y"


def test_unlabelled_files_are_reported_and_a_forced_label_covers_them(tmp_path, touch):
    touch(tmp_path / "real" / "a.jpg")
    touch(tmp_path / "misc" / "b.jpg")
    index = build_index("folder", tmp_path)
    assert [r.path for r in index.rows] == [str(tmp_path / "real" / "a.jpg")]
    assert "1 files have no real/ or fake/ folder" in index.notes[0]
    forced = build_index("folder", tmp_path, label="fake")
    assert sorted(r.label for r in forced.rows) == [FAKE, FAKE]


def test_nothing_to_index_and_bad_roots(tmp_path, touch):
    touch(tmp_path / "misc" / "b.jpg")
    with pytest.raises(DfdetectError) as caught:
        index_dataset("folder", tmp_path)
    assert caught.value.code == "empty_dataset"
    with pytest.raises(DfdetectError) as caught:
        index_dataset("folder", tmp_path / "absent")
    assert caught.value.code == "missing_path"
    with pytest.raises(DfdetectError) as caught:
        index_dataset("folder", tmp_path, compression="c23")
    assert caught.value.code == "bad_config" and "compression" in caught.value.message
