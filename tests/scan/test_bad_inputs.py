"""The acceptance corpus: every kind of broken or unusual file, mixed with good ones, scanned with
real decode workers. No crash, one record per input, the right code for each, good files scored."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfdetect.scan.pipeline import scan_paths
from dfdetect.scan.writers import read_jsonl
from tests.scan.corpus import (
    audio_only_mp4,
    copy_london_faces,
    good_clip,
    jpeg_with_exif_rotation,
    london_face,
    png_header_only,
    tall_face,
    tiled_faces,
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
}


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
    return root


def test_bad_inputs_mixed_with_good_ones(corpus, model_path, tmp_path):
    out = tmp_path / "corpus.jsonl"
    summary = scan_paths([corpus], model_path, out, device="cpu", batch_size=8, frames=FRAMES, details=True,
                         workers=2, timeout=60, progress=False)
    records = list(read_jsonl(out))
    by_name = {Path(r["path"]).name: r for r in records}
    assert len(records) == len(by_name) == len(EXPECTED)  # exactly one record per input
    assert {name: (r["status"], r["error_code"]) for name, r in by_name.items()} == EXPECTED
    for name, record in by_name.items():
        if record["status"] == "error":
            assert record["error_message"] and record["probability"] is None and record["faces_scored"] == 0, name
        if record["status"] == "ok":
            assert record["faces_scored"] >= 1 and 0.0 <= record["probability"] <= 1.0, name
    assert (summary.ok, summary.no_face, summary.error) == (13, 1, 7)

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
