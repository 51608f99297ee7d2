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

from dfdetect.extract import extract
from dfdetect.media import read_image
from dfdetect.media.encode import write_video
from dfdetect.media.io import sample_indices
from dfdetect.model.crops import ExtractOptions
from dfdetect.records import INDEX_COLUMNS, IndexRow, file_sha256, read_crops, write_rows
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
    assert saved["index"] == {"path": str(index.resolve()), "sha256": file_sha256(index)}  # what fit's manifest names


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


def _swap_face(frame: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """A crude face swap: the donor's inner face over the frame's, the rest of the frame kept."""
    fake = frame.copy()
    fake[70:190, 80:175] = donor[70:190, 80:175]
    return fake


def test_fakes_reuse_the_faces_of_their_source_video(tmp_path):
    face, donor = read_image(london_images()[10]), read_image(london_images()[20])
    real_frames = [np.roll(face, shift=2 * k, axis=1) for k in range(20)]
    write_video(real_frames, tmp_path / "real.mp4", fps=20)
    write_video([_swap_face(f, np.roll(donor, 2 * k, axis=1)) for k, f in enumerate(real_frames)],
                tmp_path / "fake.mp4", fps=20)
    write_video([_swap_face(f, donor) for f in real_frames[:12]], tmp_path / "fake_short.mp4", fps=20)
    common = dict(media_type="video", dataset="t", split="train", group="real")
    rows = [  # the fakes come first in the index: extraction must still finish their source before them
        IndexRow(path=str(tmp_path / "fake.mp4"), label=1, source=str(tmp_path / "real.mp4"), **common),
        IndexRow(path=str(tmp_path / "fake_short.mp4"), label=1, source=str(tmp_path / "real.mp4"), **common),
        IndexRow(path=str(tmp_path / "real.mp4"), label=0, **common),
    ]
    index = write_rows(rows, tmp_path / "index.parquet", INDEX_COLUMNS)

    summary = extract(index, tmp_path / "reused", ExtractOptions(frames=8, size=64, reuse_source_boxes=True))
    reused_both = len(set(sample_indices(20, 8)) & set(sample_indices(12, 8)))
    assert summary["reused_frames"] == 8 + reused_both and summary["errors"] == []
    crops = read_crops(tmp_path / "reused")
    by_video = {Path(p).name: g.set_index("frame_index") for p, g in crops.groupby("source_path")}
    real, fake, short = by_video["real.mp4"], by_video["fake.mp4"], by_video["fake_short.mp4"]
    box = ["x0", "y0", "x1", "y1", "score", "track_id"]
    pd.testing.assert_frame_equal(fake[box], real[box])  # the very same faces, frame by frame
    shared = sorted(set(short.index) & set(real.index))
    assert len(shared) == reused_both
    pd.testing.assert_frame_equal(short.loc[shared, box], real.loc[shared, box])
    assert len(short) == 8  # the frames the source never looked at were detected

    detected = extract(index, tmp_path / "detected", ExtractOptions(frames=8, size=64))
    assert detected["reused_frames"] == 0
    own = read_crops(tmp_path / "detected")
    own_fake = own[own.source_path.str.endswith("/fake.mp4")].set_index("frame_index")
    assert not np.allclose(own_fake[box[:4]].to_numpy(), real[box[:4]].to_numpy(), atol=0.5)  # detector bias
