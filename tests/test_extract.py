import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.extract import ExtractOptions, extract
from dfdetect.media import read_image
from dfdetect.media.encode import write_video
from dfdetect.records import INDEX_COLUMNS, IndexRow, read_crops, write_rows
from dfdetect.sample_data import london_images


def _index(tmp_path: Path, n_images: int = 4, with_video: bool = True, bad: bool = True) -> Path:
    rows = []
    for i, path in enumerate(london_images()[:n_images]):
        rows.append(IndexRow(path=str(path), media_type="image", label=i % 2, dataset="t", split="train",
                             group=path.name[:3]))
    if with_video:
        face = read_image(london_images()[10])
        frames = [np.roll(face, shift=2 * k, axis=1) for k in range(20)]
        write_video(frames, tmp_path / "clip.mp4", fps=20)
        rows.append(IndexRow(path=str(tmp_path / "clip.mp4"), media_type="video", label=0, dataset="t",
                             split="val", group="clip"))
    if bad:
        (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
        rows.append(IndexRow(path=str(tmp_path / "broken.mp4"), media_type="video", label=1, dataset="t",
                             split="test", group="broken"))
        flat = tmp_path / "flat.png"
        from PIL import Image

        Image.new("RGB", (300, 300), (128, 128, 128)).save(flat)
        rows.append(IndexRow(path=str(flat), media_type="image", label=0, dataset="t", split="train", group="flat"))
    return write_rows(rows, tmp_path / "index.parquet", INDEX_COLUMNS)


def test_extract_crops_faces_and_counts_the_rest(tmp_path):
    index = _index(tmp_path)
    summary = extract(index, tmp_path / "crops", ExtractOptions(frames=8, size=96))
    crops = read_crops(tmp_path / "crops")
    assert summary["images"] == 5 and summary["videos"] == 2
    assert summary["faces"] == len(crops) == 4 + 8  # 4 portraits + 8 sampled video frames, one face each
    assert summary["no_face_frames"] == 1  # the flat grey image
    assert [e["code"] for e in summary["errors"]] == ["unreadable_media"]
    video = crops[crops.media_type == "video"]
    assert sorted(video.frame_index) == [0, 3, 5, 8, 11, 14, 16, 19]
    assert set(video.track_id) == {0}  # one face followed across all frames
    for row in crops.itertuples():
        crop = read_image(row.crop_path)
        assert crop.shape == (96, 96, 3)
        assert len(row.landmarks) == 12 and row.x1 > row.x0
    saved = json.loads((tmp_path / "crops" / "extract_summary.json").read_text())
    assert saved["faces"] == 12


def test_rerun_with_other_options_is_refused(tmp_path):
    index = _index(tmp_path, n_images=1, with_video=False, bad=False)
    extract(index, tmp_path / "crops", ExtractOptions(size=64))
    from dfdetect.errors import DfdetectError

    with pytest.raises(DfdetectError) as err:
        extract(index, tmp_path / "crops", ExtractOptions(size=128))
    assert err.value.code == "bad_config"


def _extract_cmd(index: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "dfdetect", "extract", str(index), "--out", str(out),
            "--size", "64", "--workers", "1"]


def test_killed_extract_resumes_without_duplicates(tmp_path):
    rows = [IndexRow(path=str(p), media_type="image", label=0, dataset="t", split="train", group=p.name[:3])
            for p in london_images()[:40]]
    index = write_rows(rows, tmp_path / "index.parquet", INDEX_COLUMNS)
    reference = tmp_path / "reference"
    assert subprocess.run(_extract_cmd(index, reference), capture_output=True).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(_extract_cmd(index, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("*.parquet")))
    assert 10 <= done_before < 40, "the kill should land mid-run"
    assert not (out / "crops.parquet").exists()
    resumed = subprocess.run(_extract_cmd(index, out), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    got, want = pd.read_parquet(out / "crops.parquet"), pd.read_parquet(reference / "crops.parquet")
    assert len(got) == len(want) == 40
    assert got.crop_path.is_unique
    pd.testing.assert_frame_equal(got.drop(columns="landmarks"), want.drop(columns="landmarks"))
    assert not list(out.rglob("*.tmp*"))
    files = sorted(p.relative_to(out) for p in (out / "crops").rglob("*.jpg"))
    assert files == sorted(p.relative_to(reference) for p in (reference / "crops").rglob("*.jpg"))
    assert os.path.getsize(out / "extract_summary.json") > 0
