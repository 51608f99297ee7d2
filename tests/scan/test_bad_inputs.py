"""The acceptance corpus: every kind of broken, unusual or hostile file, mixed with good ones, scanned
with real decode workers. No crash, one record per input (a file reached by two names is one input),
the right code for each, good files scored; a non-UTF-8 name round-trips through every output format
and through --resume; --hash --resume is exact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfdetect.records import record_path
from dfdetect.results import read_jsonl, read_results
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import (
    audio_only_mp4,
    copy_london_faces,
    good_clip,
    jpeg_with_exif_rotation,
    london_face,
    non_utf8_name,
    png_header_only,
    tall_face,
    tiled_faces,
    uniform_video,
    variable_frame_rate_video,
    video_with_rotation,
)

FRAMES = 4
EXPECTED = {
    "empty.mp4": ("error", "unreadable_media"),
    "truncated.mp4": ("error", "unreadable_media"),
    "text.mp4": ("error", "unsupported_media"),
    "audio_only.mp4": ("error", "unreadable_media"),
    "huge_30000x30000.png": ("error", "too_large"),
    "fifo.jpg": ("error", "unsupported_media"),
    "cmyk.jpg": ("ok", ""),
    "gray16.png": ("ok", ""),
    "gray.jpg": ("ok", ""),
    "rgba.png": ("ok", ""),
    "tall.png": ("ok", ""),
    "exif_rotated.jpg": ("ok", ""),
    "rotated.mp4": ("ok", ""),
    "vfr.mp4": ("ok", ""),
    "blank.png": ("no_face", ""),
    "ten_faces.jpg": ("ok", ""),
    "001_03.jpg": ("ok", ""),
    "002_03.jpg": ("ok", ""),
    "003_03.jpg": ("ok", ""),
    "good.mp4": ("ok", ""),
    "ATTRIBUTION.md": ("error", "unsupported_media"),
    "bad_utf8_\\xff\\xfe.jpg": ("ok", ""),  # the record's text form of the name's bytes
    "copy_of_002.jpg": ("ok", ""),  # the same bytes as 002_03.jpg under another name: its own input
    "face.avif": ("ok", ""),
    "huge_8192x6144.mp4": ("error", "too_large"),  # refused from the stream header, before decoding
    "dangling.jpg": ("error", "missing_path"),
    "loop_a.jpg": ("error", "missing_path"),
    "loop_b.jpg": ("error", "missing_path"),
    # link_to_001.jpg (a symlink to 001_03.jpg) and sub/../003_03.jpg name files already listed: no record
}
BAD_UTF8 = b"bad_utf8_\xff\xfe"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    copy_london_faces(root, 3)
    face = london_face(5)
    good_clip(root / "good.mp4")
    (root / "empty.mp4").write_bytes(b"")
    whole = good_clip(root / "whole.mp4", frames=12).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "whole.mp4").unlink()
    (root / "text.mp4").write_text("meeting notes, not a video\n" * 20)
    audio_only_mp4(root / "audio_only.mp4")
    png_header_only(root / "huge_30000x30000.png", 30000, 30000)
    os.mkfifo(root / "fifo.jpg")  # opening it would block forever
    Image.fromarray(face).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    gray = np.asarray(Image.fromarray(face).convert("L"), np.uint16) * 257
    Image.fromarray(gray).save(root / "gray16.png")  # 16-bit single channel (I;16)
    Image.fromarray(face).convert("L").save(root / "gray.jpg", quality=95)
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:20, :, 3] = 0  # a transparent band, composited onto white
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    Image.fromarray(tall_face()).save(root / "tall.png")
    jpeg_with_exif_rotation(tall_face(), root / "exif_rotated.jpg")
    video_with_rotation(tall_face(), root / "rotated.mp4")
    variable_frame_rate_video([np.roll(face, 3 * i, axis=1) for i in range(10)], root / "vfr.mp4")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(root / "blank.png")
    Image.fromarray(tiled_faces(10, columns=5)).save(root / "ten_faces.jpg", quality=92)
    shutil.copy(root / "001_03.jpg", non_utf8_name(root, BAD_UTF8, ".jpg"))
    shutil.copy(root / "002_03.jpg", root / "copy_of_002.jpg")
    Image.fromarray(face).save(root / "face.avif", quality=90)
    uniform_video(root / "huge_8192x6144.mp4", 8192, 6144)
    (root / "dangling.jpg").symlink_to(root / "deleted.jpg")
    (root / "loop_a.jpg").symlink_to(root / "loop_b.jpg")
    (root / "loop_b.jpg").symlink_to(root / "loop_a.jpg")
    (root / "link_to_001.jpg").symlink_to(root / "001_03.jpg")
    (root / "sub").mkdir()
    return root


def scan_corpus(corpus: Path, model_path: Path, out: Path, **options) -> object:
    """The corpus folder plus a second name of one of its files (`sub/../003_03.jpg`)."""
    return scan_paths([corpus, corpus / "sub" / ".." / "003_03.jpg"], model_path, out, device="cpu", batch_size=8,
                      frames=FRAMES, workers=2, timeout=60, progress=False, **options)


def test_bad_inputs_mixed_with_good_ones(corpus, model_path, tmp_path):
    out = tmp_path / "corpus.jsonl"
    summary = scan_corpus(corpus, model_path, out, details=True)
    records = list(read_jsonl(out))
    by_name = {Path(r["path"]).name: r for r in records}
    assert len(records) == len(by_name) == len(EXPECTED)  # exactly one record per input
    assert {name: (r["status"], r["error_code"]) for name, r in by_name.items()} == EXPECTED
    for name, record in by_name.items():
        if record["status"] == "error":
            assert record["error_message"] and record["probability"] is None and record["faces_scored"] == 0, name
        if record["status"] == "ok":
            assert record["faces_scored"] >= 1 and 0.0 <= record["probability"] <= 1.0, name
    assert (summary.ok, summary.no_face, summary.error) == (16, 1, 11)
    assert by_name["face.avif"]["media_type"] == "image"
    assert "8192x6144" in by_name["huge_8192x6144.mp4"]["error_message"]
    assert by_name["003_03.jpg"]["path"] == str(corpus / "003_03.jpg")
    bad = by_name["bad_utf8_\\xff\\xfe.jpg"]
    assert bad["path"] == str(corpus) + "/bad_utf8_\\xff\\xfe.jpg" and bad["path_bytes"] == os.fsencode(
        non_utf8_name(corpus, BAD_UTF8, ".jpg")).hex()
    assert record_path(bad) == str(non_utf8_name(corpus, BAD_UTF8, ".jpg"))
    assert bad["probability"] == pytest.approx(by_name["001_03.jpg"]["probability"])

    assert by_name["ten_faces.jpg"]["faces_scored"] == 10
    assert {s["face_index"] for s in by_name["ten_faces.jpg"]["frame_scores"]} == set(range(10))
    assert by_name["vfr.mp4"]["frames_decoded"] == FRAMES
    assert by_name["good.mp4"]["frames_decoded"] == FRAMES
    assert by_name["truncated.mp4"]["media_type"] == "video"
    assert "30000x30000" in by_name["huge_30000x30000.png"]["error_message"]

    upright = np.array(by_name["tall.png"]["top_faces"][0]["box"])
    assert upright[3] < 280  # the face is in the top of the portrait frame
    for rotated in ("exif_rotated.jpg", "rotated.mp4"):  # rotation applied: the face is where it is upright
        box = np.array(by_name[rotated]["top_faces"][0]["box"])
        assert np.abs(box - upright).max() < 12, (rotated, box, upright)
    cmyk_face = by_name["cmyk.jpg"]["top_faces"][0]["box"]
    gray_face = by_name["gray16.png"]["top_faces"][0]["box"]
    assert np.abs(np.array(cmyk_face) - np.array(gray_face)).max() < 12  # the same face found in both


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_non_utf8_name_round_trips_through_every_format_and_resume(corpus, model_path, tmp_path, suffix):
    """A name whose bytes are not UTF-8 once stopped the scan for good (UnicodeEncodeError in the
    writer, and again on every --resume): now it is a record like any other, in every format."""
    bad = non_utf8_name(corpus, BAD_UTF8, ".jpg")
    out = tmp_path / f"r{suffix}"
    first = scan_paths([bad, corpus / "002_03.jpg"], model_path, out, device="cpu", workers=0, progress=False)
    assert first.ok == 2
    records = read_results(out)
    assert sorted(record_path(r) for r in records) == sorted([str(bad), str(corpus / "002_03.jpg")])
    again = scan_paths([bad, corpus / "002_03.jpg", corpus / "003_03.jpg"], model_path, out, device="cpu", workers=0,
                       resume=True, progress=False)
    assert (again.skipped, again.scanned) == (2, 1)
    assert len(read_results(out)) == 3


def test_hash_resume_is_exact_for_twins_and_unhashable_inputs(corpus, model_path, tmp_path):
    """With --hash, identity is (path, sha256): copy_of_002.jpg is not skipped as 002_03.jpg, and the
    inputs without a hash (FIFO, dangling link, loops) are recorded once, not again on every resume."""
    out = tmp_path / "hashed.jsonl"
    summary = scan_corpus(corpus, model_path, out, hash_files=True)
    records = list(read_jsonl(out))
    assert summary.scanned == len(records) == len(EXPECTED)
    by_name = {Path(r["path"]).name: r for r in records}
    assert by_name["copy_of_002.jpg"]["sha256"] == by_name["002_03.jpg"]["sha256"] != ""
    assert by_name["fifo.jpg"]["sha256"] == by_name["dangling.jpg"]["sha256"] == ""
    for _ in range(2):
        resumed = scan_corpus(corpus, model_path, out, hash_files=True, resume=True)
        assert (resumed.skipped, resumed.scanned) == (len(EXPECTED), 0)
    assert len(list(read_jsonl(out))) == len(EXPECTED)
