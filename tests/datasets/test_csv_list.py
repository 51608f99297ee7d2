import pytest

from dfdetect.datasets import build_index
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL


def test_header_labels_splits_groups_and_relative_paths(tmp_path, touch):
    media = tmp_path / "media"
    for name in ("a.jpg", "b.png", "c.mp4", "d.jpg", "e.jpg"):
        touch(media / name)
    listing = tmp_path / "lists" / "data.csv"
    listing.parent.mkdir()
    listing.write_text(
        "path,label,split,group\n"
        "../media/a.jpg,real,val,personA\n"
        f"{media / 'b.png'},FAKE,val,personA\n"
        "../media/c.mp4,1,,\n"
        "../media/d.jpg,0,test,\n"
        "../media/e.jpg,maybe,train,\n"
        "../media/gone.jpg,real,train,\n"
        "../media/notes.txt,real,train,\n"
        "../media/a.jpg,real,holdout,\n")
    index = build_index("csv", listing)
    rows = {row.path.rsplit("/", 1)[1]: row for row in index.rows}
    assert sorted(rows) == ["a.jpg", "b.png", "c.mp4", "d.jpg"]
    assert (rows["a.jpg"].label, rows["a.jpg"].split, rows["a.jpg"].group) == (REAL, "val", "personA")
    assert (rows["b.png"].label, rows["b.png"].group) == (FAKE, "personA")
    assert rows["a.jpg"].path == str(media / "a.jpg")
    assert rows["c.mp4"].media_type == "video" and rows["c.mp4"].label == FAKE
    assert rows["c.mp4"].group == "c" and rows["c.mp4"].split in ("train", "val", "test")
    assert rows["d.jpg"].split == "test"
    assert index.missing == [str(media / "gone.jpg")]
    problems = index.notes[0]
    assert problems.startswith("3 CSV lines were skipped")
    assert "line 6: label 'maybe'" in problems and "line 8:" in problems and "line 9: split 'holdout'" in problems


def test_headerless_csv_is_read_positionally(tmp_path, touch):
    touch(tmp_path / "x.jpg")
    touch(tmp_path / "y.jpg")
    listing = tmp_path / "list.csv"
    listing.write_text("x.jpg,fake,train\ny.jpg,real,test\n")
    rows = {row.path.rsplit("/", 1)[1]: (row.label, row.split) for row in build_index("csv", listing).rows}
    assert rows == {"x.jpg": (FAKE, "train"), "y.jpg": (REAL, "test")}


def test_explicit_splits_that_leak_a_group_are_refused(tmp_path, touch):
    touch(tmp_path / "x.jpg")
    touch(tmp_path / "y.jpg")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label,split,group\nx.jpg,real,train,p1\ny.jpg,fake,test,p1\n")
    with pytest.raises(DfdetectError) as caught:
        build_index("csv", listing)
    assert caught.value.code == "bad_input" and "p1 (test/train)" in caught.value.message


def test_header_without_label_column_is_refused(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("path,class\nx.jpg,real\n")
    with pytest.raises(DfdetectError) as caught:
        build_index("csv", listing)
    assert caught.value.code == "bad_input" and caught.value.path == str(listing)
