import pytest

from dfdetect.datasets.checks import DatasetIndex, check_leakage, describe_missing, require_rows, summarize
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, IndexRow


def _row(name, split, group, label=REAL, method=""):
    return IndexRow(path=f"/d/{name}", media_type="video", label=label, dataset="t", split=split, group=group,
                    method=method)


def test_a_group_in_two_splits_fails_loudly_naming_it():
    rows = [_row("a", "train", "g1"), _row("b", "test", "g1", FAKE), _row("c", "val", "g2"), _row("d", "val", "g2")]
    with pytest.raises(DfdetectError) as caught:
        check_leakage(rows)
    assert caught.value.code == "bad_input"
    assert caught.value.message == "1 groups appear in more than one split: g1 (test/train)"
    check_leakage(rows[2:])


def test_summary_counts_split_label_method():
    rows = [_row("a", "train", "g1"), _row("b", "train", "g1", FAKE, "Deepfakes"),
            _row("c", "train", "g2", FAKE, "Deepfakes"), _row("d", "test", "g3", FAKE, "FaceSwap"),
            _row("e", "val", "g4")]
    lines = summarize(rows).splitlines()
    assert lines[1].split() == ["train", "real", "-", "1"]
    assert lines[2].split() == ["train", "fake", "Deepfakes", "2"]
    assert lines[3].split() == ["val", "real", "-", "1"]
    assert lines[4].split() == ["test", "fake", "FaceSwap", "1"]
    assert lines[5].split() == ["total", "5"]
    assert lines[6] == "groups: train 2, val 1, test 1"


def test_empty_index_names_the_missing_files():
    with pytest.raises(DfdetectError) as caught:
        require_rows(DatasetIndex(rows=[], missing=["/x/a.mp4", "/x/b.mp4"]), "/x")
    assert caught.value.code == "empty_dataset" and "names 2 files" in caught.value.hint
    text = describe_missing([f"/x/{i}.mp4" for i in range(12)])
    assert text.startswith("12 files named in the metadata are missing") and text.endswith("… and 2 more")
