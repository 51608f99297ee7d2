"""End-to-end scan over a directory of good and broken media with a tiny exported model."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.special import expit

from dfdetect.errors import DfdetectError
from dfdetect.media.encode import write_video
from dfdetect.media.io import read_image
from dfdetect.records import SCAN_COLUMNS
from dfdetect.results import read_jsonl
from dfdetect.sample_data import LONDON_DIR, london_images
from dfdetect.scan.cli import add_arguments, run
from dfdetect.scan.pipeline import scan_paths

VIDEO_FRAMES = 12
REQUESTED_FRAMES = 4


@pytest.fixture()
def media_dir(tmp_path) -> Path:
    root = tmp_path / "media"
    faces = root / "faces"
    faces.mkdir(parents=True)
    for source in london_images()[:3]:
        shutil.copy(source, faces / source.name)
    shutil.copy(LONDON_DIR / "ATTRIBUTION.md", faces / "ATTRIBUTION.md")  # CC BY 4.0 travels with the copies
    face = read_image(london_images()[3])
    drifting = [np.roll(face, shift=(i, 2 * i), axis=(0, 1)) for i in range(VIDEO_FRAMES)]
    write_video(drifting, root / "clip.mp4", fps=10)  # H.264 (libx264, yuv420p) through PyAV
    jpeg = london_images()[4].read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.mp4").write_text("this is not a video\n")
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(root / "blank.png")  # decodes, has no face
    return root


def test_scan_gives_one_record_per_file_and_keeps_going_past_bad_files(media_dir, model_path, tmp_path):
    out = tmp_path / "results.jsonl"
    summary = scan_paths([media_dir], model_path, out, device="cpu", batch_size=3, frames=REQUESTED_FRAMES,
                         progress=False)
    records = {Path(r["path"]).name: r for r in read_jsonl(out)}
    files = sorted(p.name for p in media_dir.rglob("*") if p.is_file())
    assert sorted(records) == files and summary.scanned == len(files) == 9
    assert all(list(r) == SCAN_COLUMNS for r in records.values())

    assert {records[n]["error_code"] for n in ("truncated.jpg", "empty.jpg")} == {"unreadable_media"}
    assert records["notes.mp4"]["error_code"] == "unsupported_media"
    assert records["ATTRIBUTION.md"]["error_code"] == "unsupported_media"
    for name in ("truncated.jpg", "empty.jpg", "notes.mp4", "ATTRIBUTION.md"):
        assert records[name]["status"] == "error" and records[name]["probability"] is None
        assert records[name]["error_message"]
    assert records["blank.png"]["status"] == "no_face" and records["blank.png"]["frames_decoded"] == 1

    good = [n for n in files if n.endswith("_03.jpg")] + ["clip.mp4"]
    for name in good:
        record = records[name]
        assert record["status"] == "ok" and record["error_code"] == ""
        assert record["faces_scored"] >= 1 and 0.0 <= record["probability"] <= 1.0
        assert record["probability"] == pytest.approx(float(expit(record["logit"])))
        assert record["decision"] == (record["probability"] >= 0.5)
        assert record["threshold_name"] == "default" and record["threshold"] == 0.5
        assert 1 <= len(record["top_faces"]) <= 5
        top = [f["probability"] for f in record["top_faces"]]
        assert top == sorted(top, reverse=True)
        assert record["frame_scores"] is None
        assert len(record["model_sha256"]) == 64 and record["toolkit_version"]
        assert set(record["timings"]) == {"decode", "detect", "infer"}
    video = records["clip.mp4"]
    assert video["media_type"] == "video" and video["frames_decoded"] == REQUESTED_FRAMES
    assert {f["frame_index"] for f in video["top_faces"]} <= set(range(VIDEO_FRAMES))
    assert records["001_03.jpg"]["media_type"] == "image" and records["001_03.jpg"]["frames_decoded"] == 1

    assert (summary.ok, summary.no_face, summary.error) == (4, 1, 4)
    assert summary.flagged == sum(bool(r["decision"]) for r in records.values())
    assert summary.providers == ["CPUExecutionProvider"]


def test_details_hold_every_face_and_aggregate_follows_the_contract(media_dir, model_path, tmp_path):
    out = tmp_path / "details.jsonl"
    scan_paths([media_dir / "clip.mp4"], model_path, out, device="cpu", frames=REQUESTED_FRAMES, details=True,
               progress=False)
    [record] = list(read_jsonl(out))
    scores = record["frame_scores"]
    assert len(scores) == record["faces_scored"] >= REQUESTED_FRAMES - 1
    logits = sorted((s["logit"] for s in scores), reverse=True)
    assert record["logit"] == pytest.approx(np.mean(logits[:2]))  # contract: topk_mean:k=2
    for score in scores:
        assert score["probability"] == pytest.approx(float(expit(score["logit"])))


def test_resume_skips_recorded_files_and_rescans_changed_ones(media_dir, model_path, tmp_path):
    out = tmp_path / "results.jsonl"
    images = sorted((media_dir / "faces").glob("*.jpg"))
    first = scan_paths(images[:2], model_path, out, device="cpu", progress=False)
    assert first.scanned == 2
    with pytest.raises(DfdetectError) as exists:
        scan_paths(images, model_path, out, device="cpu", progress=False)
    assert exists.value.code == "bad_config"

    second = scan_paths(images, model_path, out, device="cpu", resume=True, progress=False)
    assert (second.files, second.skipped, second.scanned) == (3, 2, 1)
    images[0].write_bytes(images[0].read_bytes() + b"\0")  # changed size: scanned again
    third = scan_paths(images, model_path, out, device="cpu", resume=True, progress=False)
    assert (third.skipped, third.scanned) == (2, 1)
    names = [Path(r["path"]).name for r in read_jsonl(out)]
    assert names == [images[0].name, images[1].name, images[2].name, images[0].name]


def test_missing_input_is_an_error_record(model_path, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = scan_paths([tmp_path / "nowhere.jpg"], model_path, out, device="cpu", progress=False)
    [record] = list(read_jsonl(out))
    assert summary.error == 1 and record["status"] == "error" and record["error_code"] == "missing_path"


def test_cli_prints_a_summary_and_never_scans_its_own_output(media_dir, model_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    faces = media_dir / "faces"
    out = faces / "cli.jsonl"  # inside the scanned directory, next to a hidden file
    (faces / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    argv = [str(faces), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--batch-size", "2"]
    run(parser.parse_args(argv))
    printed = capsys.readouterr().out
    assert "3 ok, 0 no face, 1 errors" in printed and "files/s" in printed
    lines = out.read_text().splitlines()
    assert sorted(Path(json.loads(line)["path"]).name for line in lines) == [
        "001_03.jpg", "002_03.jpg", "003_03.jpg", "ATTRIBUTION.md"]
    run(parser.parse_args([*argv, "--resume"]))
    assert "scanned 0 files" in capsys.readouterr().out and out.read_text().splitlines() == lines
