"""The labelled London set: the files the folder indexer expects, faces BlazeFace can find in each of
them, fakes that really differ from the reals, and the same bytes for the same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.faces import create_detector
from dfdetect.media.io import iter_video_frames, read_image
from dfdetect.recipes.labelled_faces import build_labelled_faces, main
from dfdetect.records import FAKE, REAL
from dfdetect.sample_data import LONDON_DIR

IDS = ["001", "002", "005"]
VIDEO_FRAMES = 6


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, object]:
    out_dir = tmp_path_factory.mktemp("labelled")
    return out_dir, build_labelled_faces(out_dir, IDS, seed=0, videos=True, video_frames=VIDEO_FRAMES)


def test_writes_the_expected_files_and_table(built):
    out_dir, table = built
    names = {str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()}
    swaps = {name for name in names if "_swap_" in name}
    expected = {"ATTRIBUTION.md"}
    for face_id in IDS:
        expected |= {f"real/{face_id}_neutral.jpg", f"real/{face_id}_smiling.jpg", f"real/{face_id}_video.mp4",
                     f"fake/{face_id}_sbi.jpg", f"fake/{face_id}_sbi_video.mp4"}
    assert names - swaps == expected
    assert len(swaps) == 6  # an image and a video each
    for name in swaps:
        face_id, other = Path(name).stem.removesuffix("_video").split("_swap_")
        assert name.startswith("fake/") and face_id in IDS and other in IDS and other != face_id
    assert (out_dir / "ATTRIBUTION.md").read_text() == (LONDON_DIR / "ATTRIBUTION.md").read_text()

    assert list(table.columns) == ["path", "label", "kind", "identity"]
    assert len(table) == 21
    assert sorted(table["kind"].value_counts().items()) == [
        ("neutral", 3), ("sbi", 3), ("sbi_video", 3), ("smiling", 3), ("swap", 3), ("swap_video", 3), ("video", 3)]
    for row in table.itertuples():
        path = Path(row.path)
        assert path.is_absolute() and path.exists()
        assert path.name.startswith(f"{row.identity}_")
        assert path.parent.name == ("real" if row.label == REAL else "fake")
    assert set(table.loc[table["label"] == FAKE, "kind"]) == {"sbi", "swap", "sbi_video", "swap_video"}


def test_blazeface_finds_a_face_in_every_written_image_and_video(built):
    _out_dir, table = built
    detector = create_detector("blazeface")
    images = [Path(p) for p in table["path"] if p.endswith(".jpg")]
    assert len(images) == 12
    found = detector.detect([read_image(p) for p in images])
    assert all(len(faces) >= 1 for faces in found), [p.name for p, f in zip(images, found) if not f]
    for path in (Path(p) for p in table["path"] if p.endswith(".mp4")):
        frames = list(iter_video_frames(path, num_frames=None, every=1))
        assert len(frames) == VIDEO_FRAMES
        assert frames[0].image.shape == (256, 256, 3)
        assert all(detector.detect([frames[0].image, frames[-1].image])), path.name


def test_fakes_differ_from_the_reals_of_the_same_person(built):
    out_dir, _table = built
    for face_id in IDS:
        real = read_image(out_dir / "real" / f"{face_id}_neutral.jpg").astype(int)
        sbi = read_image(out_dir / "fake" / f"{face_id}_sbi.jpg").astype(int)
        swap = read_image(next((out_dir / "fake").glob(f"{face_id}_swap_*.jpg"))).astype(int)
        face = (slice(100, 180), slice(90, 166))  # cheeks, eyes, nose and mouth of the bundled 256 px faces
        corner = (slice(0, 40), slice(0, 40))  # background, never blended: only JPEG noise differs there
        assert np.abs(sbi - real)[face].mean() > 1.5
        assert np.abs(sbi - real)[face].mean() > 3 * np.abs(sbi - real)[corner].mean()
        assert np.abs(swap - real)[face].mean() > 8  # a different person's features
        assert np.abs(swap - real)[corner].max() <= 12


def test_same_seed_same_bytes_and_size_option(tmp_path):
    first = build_labelled_faces(tmp_path / "a", IDS[:2], seed=3, size=128)
    second = build_labelled_faces(tmp_path / "b", IDS[:2], seed=3, size=128)
    assert len(first) == 8
    for path_a, path_b in zip(first["path"], second["path"]):
        assert Path(path_a).read_bytes() == Path(path_b).read_bytes()
    assert all(read_image(p).shape == (128, 128, 3) for p in first["path"])


def test_unknown_ids_and_bad_options_are_refused(tmp_path):
    for kwargs, code in (({"face_ids": ["999"]}, "bad_config"), ({"face_ids": []}, "empty_dataset"),
                         ({"face_ids": ["001"], "videos": True, "video_frames": 0}, "bad_config")):
        with pytest.raises(DfdetectError) as caught:
            build_labelled_faces(tmp_path, **kwargs)
        assert caught.value.code == code


def test_main_builds_from_the_command_line(tmp_path, capsys):
    main([str(tmp_path / "out"), "--ids", "1", "2", "--seed", "1"])
    assert "wrote 8 files (4 real, 4 fake) for 2 of 2 faces" in capsys.readouterr().out
    assert (tmp_path / "out" / "fake" / "001_sbi.jpg").exists()
    assert (tmp_path / "out" / "fake" / "001_swap_002.jpg").exists()
