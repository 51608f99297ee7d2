"""Input expansion: directories, globs and manifests become one ordered, duplicate-free file list."""

from __future__ import annotations

import pytest

from dfdetect.errors import DfdetectError
from dfdetect.scan.inputs import expand_inputs, read_manifest


@pytest.fixture()
def tree(tmp_path):
    for relative in ("a/1.jpg", "a/2.png", "a/sub/3.mp4", "a/.hidden/4.jpg", "a/.5.jpg", "b/6.jpg", "b/7.mov"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def test_directories_are_walked_sorted_without_hidden_entries(tree):
    assert expand_inputs([tree / "a"]) == [tree / "a/1.jpg", tree / "a/2.png", tree / "a/sub/3.mp4"]


def test_globs_expand_recursively_and_duplicates_collapse(tree):
    found = expand_inputs([str(tree / "**/*.jpg"), tree / "b", tree / "a/1.jpg"])
    assert found == [tree / "a/1.jpg", tree / "b/6.jpg", tree / "b/7.mov"]
    assert expand_inputs([str(tree / "nothing*.jpg")]) == []


def test_a_missing_path_is_kept_for_its_error_record_and_exclusions_apply(tree):
    missing = tree / "gone.jpg"
    assert expand_inputs([missing, tree / "b"], exclude=[tree / "b/7.mov"]) == [missing, tree / "b/6.jpg"]


def test_txt_manifest_with_relative_paths_comments_and_directories(tree):
    manifest = tree / "list.txt"
    manifest.write_text("# archive batch 1\nb/6.jpg\n\n  a/sub  \n" + str(tree / "a/2.png") + "\n")
    assert read_manifest(manifest) == [tree / "b/6.jpg", tree / "a/sub", tree / "a/2.png"]
    assert expand_inputs([manifest]) == [tree / "b/6.jpg", tree / "a/sub/3.mp4", tree / "a/2.png"]


def test_csv_manifest_reads_the_path_column(tree):
    manifest = tree / "list.csv"
    manifest.write_text("id,path,label\n1,a/1.jpg,real\n2,b/7.mov,fake\n3,,none\n")
    assert expand_inputs([manifest]) == [tree / "a/1.jpg", tree / "b/7.mov"]
    bad = tree / "bad.csv"
    bad.write_text("file,label\na/1.jpg,real\n")
    with pytest.raises(DfdetectError) as caught:
        expand_inputs([bad])
    assert caught.value.code == "bad_input" and "path" in caught.value.message
