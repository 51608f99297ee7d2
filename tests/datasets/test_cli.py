import argparse
import json

import pytest

from dfdetect.datasets.cli import add_arguments, run
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, read_index


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_index_writes_parquet_and_prints_the_summary(tmp_path, touch, capsys):
    for person in range(10):
        touch(tmp_path / "data" / "real" / f"{person:02d}_a.jpg")
        touch(tmp_path / "data" / "fake" / "swap" / f"{person:02d}_b.jpg")
    out = tmp_path / "index.parquet"
    run(_parse(["--dataset", "folder", "--root", str(tmp_path / "data"), "--out", str(out),
                "--val-fraction", "0.2", "--test-fraction", "0.2"]))
    frame = read_index(out)
    assert len(frame) == 20
    assert sorted(frame["label"].unique()) == [REAL, FAKE]
    assert (frame.groupby("group")["split"].nunique() == 1).all()
    printed = capsys.readouterr().out
    assert "swap" in printed and printed.rstrip().endswith(f"wrote 20 rows to {out}")


def test_label_map_from_the_command_line(tmp_path, fixtures, touch, capsys):
    touch(tmp_path / "UADFV/real/frames/0000/000.png")
    out = tmp_path / "index.parquet"
    run(_parse(["--dataset", "deepfakebench", "--root", str(tmp_path), "--out", str(out),
                "--json", str(fixtures / "deepfakebench" / "UADFV.json"), "--json-splits", "test",
                "--label-map", '{"UADFV_Real": "fake"}']))
    frame = read_index(out)
    assert frame["label"].tolist() == [FAKE]
    bench = json.loads((fixtures / "deepfakebench" / "UADFV.json").read_text())["UADFV"]
    test_frames = sum(len(video["frames"]) for label in bench.values() for video in label["test"].values())
    assert f"{test_frames - 1} files named in the metadata are missing" in capsys.readouterr().out


def test_options_that_do_not_fit_the_dataset_are_refused(tmp_path, touch):
    touch(tmp_path / "real" / "a.jpg")
    with pytest.raises(DfdetectError) as caught:
        run(_parse(["--dataset", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "i.parquet"),
                    "--split", "identity"]))
    assert caught.value.code == "bad_config" and "split" in caught.value.message
    assert not (tmp_path / "i.parquet").exists()
    with pytest.raises(DfdetectError) as caught:
        run(_parse(["--dataset", "deepfakebench", "--root", str(tmp_path), "--out", str(tmp_path / "i.parquet"),
                    "--json", "x.json", "--label-map", "{broken"]))
    assert caught.value.code == "bad_config"


def test_a_partial_copy_lists_every_missing_file_beside_the_index(tmp_path, touch, capsys):
    """An FF++ copy with 2 of its 1000 originals: 998 missing, all of them in <out>.missing.txt, ten printed."""
    for video_id in ("000", "003"):
        touch(tmp_path / "ffpp/original_sequences/youtube/c23/videos" / f"{video_id}.mp4")
    out = tmp_path / "ffpp.parquet"
    run(_parse(["--dataset", "ffpp", "--root", str(tmp_path / "ffpp"), "--out", str(out)]))
    printed = capsys.readouterr().out
    listing = tmp_path / "ffpp.parquet.missing.txt"
    missing = listing.read_text().splitlines()
    assert len(missing) == 998 and missing[0].endswith("/original_sequences/youtube/c23/videos/001.mp4")
    assert "998 files named in the metadata are missing on disk" in printed
    assert f"the full list: {listing}" in printed and "… and 988 more" in printed
    assert "leakage check: passed (1 groups)" in printed  # 000 and 003 are one official pair


def test_index_warns_about_splits_fit_and_evaluate_cannot_use(tmp_path, touch, capsys):
    for person in range(4):
        touch(tmp_path / "data" / "fake" / f"{person:02d}_b.jpg")
    run(_parse(["--dataset", "folder", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "i.parquet"),
                "--val-fraction", "0", "--test-fraction", "0"]))
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: no real rows: a detector trained or evaluated on this index never sees a real face",
        "warning: no val split: `dfdetect fit` needs validation rows to choose a checkpoint "
        "(set --val-fraction, or a split column)",
        "warning: split train has only fake rows: its AUC and EER are undefined"]
