import pytest

from dfdetect.datasets import build_index
from dfdetect.datasets.ffpp import official_pairs
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
    assert rows["c.mp4"].group == str(media / "c.mp4") and rows["c.mp4"].split in ("train", "val", "test")
    assert rows["d.jpg"].split == "test"
    assert index.missing == [str(media / "gone.jpg")]
    assert index.notes[0] == "groups from group column (2 files), one group per file (2 files)"
    problems = index.notes[1]
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


def test_benchmark_names_give_the_benchmarks_groups_and_the_dataset_column_is_kept(tmp_path, touch):
    """Flattened FF++ and Celeb-DF names: FF++ 183 (real, c40) and its fakes 183_253 / 253_183 share
    the official pair's group; every `original_*` file is NOT one group, nor every `Deepfakes_*`
    fake; a Celeb-DF person's real and fake videos share a group; other names are one group each."""
    names = {"original_youtube_c40_183.mp4": ("real", "ffpp"), "original_youtube_c40_253.mp4": ("real", "ffpp"),
             "original_youtube_c40_000.mp4": ("real", "ffpp"), "Deepfakes_c40_183_253.mp4": ("fake", "ffpp"),
             "Deepfakes_c40_253_183.mp4": ("fake", "ffpp"), "Deepfakes_c40_000_003.mp4": ("fake", "ffpp"),
             "Celeb-real_id9_0000.mp4": ("real", "celebdf"), "Celeb-synthesis_id9_id26_0000.mp4": ("fake", "celebdf"),
             "Celeb-real_id26_0001.mp4": ("real", "celebdf"), "holiday.mp4": ("real", ""),
             "dfdc_aaqaifqrwn.mp4": ("fake", "dfdc"), "dfdc_abarnvbtwb.mp4": ("real", "dfdc")}
    for name in names:
        touch(tmp_path / "videos" / name)
    listing = tmp_path / "list.csv"
    listing.write_text("path,label,dataset,original\n" + "".join(
        f"videos/{name},{label},{dataset},{'abarnvbtwb.mp4' if dataset == 'dfdc' else ''}\n"
        for name, (label, dataset) in names.items()))
    index = build_index("csv", listing)
    group = {row.path.rsplit("/", 1)[1]: row.group for row in index.rows}
    pair_183 = official_pairs()["183"][1]
    assert pair_183 in ("183_253", "253_183")  # FF++ lists 183 and 253 as one pair
    assert {group[n] for n in ("original_youtube_c40_183.mp4", "original_youtube_c40_253.mp4",
                               "Deepfakes_c40_183_253.mp4", "Deepfakes_c40_253_183.mp4")} == {f"ffpp:{pair_183}"}
    assert group["original_youtube_c40_000.mp4"] == group["Deepfakes_c40_000_003.mp4"] != f"ffpp:{pair_183}"
    assert group["Celeb-real_id9_0000.mp4"] == group["Celeb-synthesis_id9_id26_0000.mp4"] == "celebdf:id9"
    assert group["Celeb-real_id26_0001.mp4"] == "celebdf:id26"
    assert group["dfdc_aaqaifqrwn.mp4"] == "dfdc:abarnvbtwb"
    assert group["holiday.mp4"] == str(tmp_path / "videos" / "holiday.mp4")
    assert {row.path.rsplit("/", 1)[1]: row.dataset for row in index.rows} == {
        name: dataset or "csv" for name, (_, dataset) in names.items()}
    assert index.notes[0] == ("groups from ffpp names (6 files), celebdf names (3 files), "
                              "dfdc original column (2 files), one group per file (1 files)")
    splits_of = {}
    for row in index.rows:
        splits_of.setdefault(row.group, set()).add(row.split)
    assert all(len(splits) == 1 for splits in splits_of.values())
