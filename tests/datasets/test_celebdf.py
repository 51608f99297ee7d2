import pytest

from dfdetect.datasets import build_index
from dfdetect.datasets.celebdf import TEST_LIST
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, SPLITS


def _official_lines(fixtures):
    return (fixtures / "celebdf_v2" / TEST_LIST).read_text().split("\n")


def _celebdf_tree(root, touch, fixtures, flip_line=None):
    """The real test list (optionally with one label flipped), the first 40 listed videos of each folder on
    disk, and videos outside the list."""
    lines = _official_lines(fixtures)
    if flip_line is not None:
        label, relative = lines[flip_line].split()
        lines[flip_line] = f"{1 - int(label)} {relative}"
    (root / TEST_LIST).write_text("\n".join(lines))
    listed = {}
    for line in lines:
        label, relative = line.split()
        folder = relative.split("/")[0]
        if sum(1 for known in listed if known.startswith(folder)) < 40:
            listed[relative] = int(label)
            touch(root / relative)
    unlisted = ["Celeb-real/id50_0001.mp4", "Celeb-synthesis/id50_id51_0001.mp4", "Celeb-real/id51_0003.mp4",
                "YouTube-real/09999.mp4", "Celeb-synthesis/id1_id55_0007.mp4"]
    for relative in unlisted:
        touch(root / relative)
    return listed, len(lines)


def test_official_test_list_with_flipped_labels(tmp_path, touch, fixtures):
    listed, listed_count = _celebdf_tree(tmp_path, touch, fixtures)
    index = build_index("celebdf", tmp_path)
    rows = {row.path.removeprefix(str(tmp_path) + "/"): row for row in index.rows}
    for relative, list_label in listed.items():
        assert rows[relative].split == "test"
        assert rows[relative].label == (REAL if list_label == 1 else FAKE)
    assert {row.split for row in index.rows if row.path.removeprefix(str(tmp_path) + "/") not in listed} <= {
        "train", "val"}
    fake = rows["Celeb-synthesis/id50_id51_0001.mp4"]
    assert (fake.group, fake.identity, fake.method) == ("id50_0001", "id50", "Celeb-synthesis")
    assert fake.source == str(tmp_path / "Celeb-real/id50_0001.mp4")
    assert fake.split == rows["Celeb-real/id50_0001.mp4"].split
    assert rows["YouTube-real/09999.mp4"].group == "youtube_09999"
    assert "Celeb-synthesis/id1_id55_0007.mp4" not in rows  # its source video id1_0007 is in the test list
    assert any(note.startswith("1 videos share a source video with the official test set") for note in index.notes)
    assert len(index.missing) == listed_count - 120
    assert not any("disagree" in note for note in index.notes)
    assert any(note.startswith("identities in both train and test: ") for note in index.notes)


def test_a_label_contradicting_its_folder_is_reported(tmp_path, touch, fixtures):
    lines = _official_lines(fixtures)
    flip_line = next(n for n, line in enumerate(lines) if line == "0 Celeb-synthesis/id1_id3_0007.mp4")
    _celebdf_tree(tmp_path, touch, fixtures, flip_line=flip_line)
    index = build_index("celebdf", tmp_path)
    assert ("1 test-list labels disagree with their folder (the folder is used): Celeb-synthesis/id1_id3_0007.mp4"
            in index.notes)
    row = next(row for row in index.rows if row.path.endswith("id1_id3_0007.mp4"))
    assert row.label == FAKE


def test_identity_split_keeps_each_person_in_one_split(tmp_path, touch, fixtures):
    _celebdf_tree(tmp_path, touch, fixtures)
    index = build_index("celebdf", tmp_path, split="identity", test_fraction=0.3)
    splits_of_person = {}
    for row in index.rows:
        if row.identity:
            splits_of_person.setdefault(row.identity, set()).add(row.split)
    assert all(len(splits) == 1 for splits in splits_of_person.values())
    assert {row.split for row in index.rows} == {"train", "val", "test"}
    assert any(note.startswith("identities in both train and test: 0 ") for note in index.notes)


def test_official_split_needs_the_list(tmp_path, touch):
    touch(tmp_path / "Celeb-real/id0_0000.mp4")
    with pytest.raises(DfdetectError) as caught:
        build_index("celebdf", tmp_path)
    assert caught.value.code == "missing_path" and "--split identity" in caught.value.hint
    rows = build_index("celebdf", tmp_path, split="identity").rows
    assert len(rows) == 1 and rows[0].split in SPLITS
