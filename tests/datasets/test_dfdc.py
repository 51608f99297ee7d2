import json
import shutil

import pytest

from dfdetect.datasets import build_index
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL


def _dfdc_tree(root, touch, fixtures, absent=3):
    """Part 0 holds the real metadata.json and all but `absent` of its videos; part 1 one extra pair."""
    part = root / "dfdc_train_part_0"
    part.mkdir(parents=True)
    shutil.copy(fixtures / "dfdc" / "metadata.json", part / "metadata.json")
    metadata = json.loads((part / "metadata.json").read_text())
    names = sorted(metadata)
    for name in names[absent:]:
        touch(part / name)
    other = root / "dfdc_train_part_1"
    other.mkdir()
    (other / "metadata.json").write_text(json.dumps({
        "zzreal.mp4": {"label": "REAL", "split": "train", "original": None},
        "zzfake.mp4": {"label": "FAKE", "split": "train", "original": "zzreal.mp4"}}))
    touch(other / "zzreal.mp4")
    touch(other / "zzfake.mp4")
    return metadata, names[:absent]


def test_labels_groups_sources_from_the_real_metadata(tmp_path, touch, fixtures):
    metadata, absent = _dfdc_tree(tmp_path, touch, fixtures)
    index = build_index("dfdc", tmp_path)
    rows = {row.path.rsplit("/", 1)[1]: row for row in index.rows}
    assert len(rows) == 400 - 3 + 2
    assert sorted(index.missing) == sorted(str(tmp_path / "dfdc_train_part_0" / name) for name in absent)
    present = {name: facts for name, facts in metadata.items() if name not in absent}
    assert sum(row.label == FAKE for row in rows.values()) == sum(f["label"] == "FAKE" for f in present.values()) + 1
    for name, facts in present.items():
        row = rows[name]
        if facts["label"] == "FAKE":
            assert row.label == FAKE and row.group == facts["original"].removesuffix(".mp4")
            if facts["original"] in present:
                assert row.source == str(tmp_path / "dfdc_train_part_0" / facts["original"])
                assert row.split == rows[facts["original"]].split
        else:
            assert row.label == REAL and row.group == name.removesuffix(".mp4") and row.source == ""
    assert rows["zzfake.mp4"].split == rows["zzreal.mp4"].split
    assert {row.split for row in index.rows} == {"train", "val", "test"}


def test_parts_subset_and_unknown_parts(tmp_path, touch, fixtures):
    _dfdc_tree(tmp_path, touch, fixtures)
    rows = build_index("dfdc", tmp_path, parts=["1"]).rows
    assert sorted(row.path.rsplit("/", 1)[1] for row in rows) == ["zzfake.mp4", "zzreal.mp4"]
    fake = next(row for row in rows if row.label == FAKE)
    assert (fake.group, fake.source) == ("zzreal", str(tmp_path / "dfdc_train_part_1" / "zzreal.mp4"))
    with pytest.raises(DfdetectError) as caught:
        build_index("dfdc", tmp_path, parts=["7"])
    assert caught.value.code == "bad_config" and "parts present: 0, 1" in caught.value.hint


def test_public_test_set_becomes_the_test_split(tmp_path, touch, fixtures):
    _dfdc_tree(tmp_path, touch, fixtures)
    test_dir = tmp_path / "test"
    touch(test_dir / "videos" / "aaa.mp4")
    touch(test_dir / "videos" / "bbb.mp4")
    (test_dir / "labels.csv").write_text("filename,label\naaa.mp4,1\nbbb.mp4,0\nccc.mp4,1\nddd.mp4,x\n")
    index = build_index("dfdc", tmp_path)
    test_rows = {row.path.rsplit("/", 1)[1]: row.label for row in index.rows if row.split == "test"}
    assert test_rows == {"aaa.mp4": FAKE, "bbb.mp4": REAL}
    assert {row.split for row in index.rows if "dfdc_train_part_" in row.path} == {"train", "val"}
    assert str(test_dir / "ccc.mp4") in index.missing
    assert "1 lines of labels.csv have no 0/1 label: ddd.mp4" in index.notes


def test_a_broken_part_is_reported_not_fatal(tmp_path, touch, fixtures):
    _dfdc_tree(tmp_path, touch, fixtures)
    (tmp_path / "dfdc_train_part_1" / "metadata.json").write_text("{not json")
    index = build_index("dfdc", tmp_path)
    assert len(index.rows) == 397
    assert any(note.startswith("part left out: bad_input:") for note in index.notes)
