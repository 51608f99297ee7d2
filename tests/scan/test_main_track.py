"""A clip about one person with a bystander who comes nearer the camera for a few frames: extract and
scan keep the main track (the person seen in the most frames), not the largest face of each frame,
which switched to the bystander; --all-faces keeps everyone. Images keep every face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfdetect.extract import extract
from dfdetect.faces import Face
from dfdetect.faces.tracking import main_track_mask
from dfdetect.model.crops import ExtractOptions
from dfdetect.records import INDEX_COLUMNS, IndexRow, read_crops, write_rows
from dfdetect.results import read_jsonl
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import h264_clip, london_face

FRAMES = 8
# where the second person, larger than the first, is in the picture: from the first frame, which extract
# searches whole (it follows the largest face into the next frames, as on a real 1080p clip)
BYSTANDER_FRAMES = (0, 1, 2)
MAIN_RIGHT_EDGE = 300  # the main person's face lies left of this column, the bystander's right of it


def two_person_frame(index: int) -> np.ndarray:
    canvas = np.zeros((368, 720, 3), np.uint8)
    canvas[56:312, 16:272] = np.roll(london_face(0), index, axis=1)  # the main person, 256 px, in every frame
    if index in BYSTANDER_FRAMES:
        bystander = np.asarray(Image.fromarray(london_face(7)).resize((340, 340)))
        canvas[14:354, 360:700] = bystander
    return canvas


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return h264_clip([two_person_frame(i) for i in range(FRAMES)], tmp_path_factory.mktemp("clip") / "two.mp4",
                     fps=10)


def test_the_main_track_is_the_longest_not_the_largest():
    main, near = (10.0, 10.0, 60.0, 60.0), (200.0, 0.0, 300.0, 100.0)
    frames = [[Face(main, 1.0)], [Face(near, 1.0), Face(main, 1.0)], [Face(near, 1.0), Face(main, 1.0)],
              [Face(main, 1.0)]]
    assert main_track_mask(frames) == [[True], [False, True], [False, True], [True]]
    assert main_track_mask([[], []]) == [[], []]


def test_scan_scores_the_main_track_of_a_video_unless_all_faces(clip, model_path, tmp_path):
    counts = {}
    for all_faces in (False, True):
        out = tmp_path / f"all{all_faces}.jsonl"
        scan_paths([clip], model_path, out, device="cpu", workers=0, frames=FRAMES, details=True, progress=False,
                   all_faces=all_faces)
        (record,) = read_jsonl(out)
        counts[all_faces] = record["faces_scored"]
        boxes = [score["box"] for score in record["frame_scores"]]
        if not all_faces:
            assert all(box[2] < MAIN_RIGHT_EDGE for box in boxes), boxes
            assert sorted(score["frame_index"] for score in record["frame_scores"]) == list(range(FRAMES))
    assert counts == {False: FRAMES, True: FRAMES + len(BYSTANDER_FRAMES)}


def test_extract_keeps_one_track_per_video(clip, tmp_path):
    index = write_rows([IndexRow(path=str(clip), media_type="video", label=0, dataset="t", split="train",
                                 group="two")], tmp_path / "index.parquet", INDEX_COLUMNS)
    extract(index, tmp_path / "crops", ExtractOptions(frames=FRAMES, size=64))
    crops = read_crops(tmp_path / "crops")
    assert crops["track_id"].nunique() == 1 and (crops["x1"] < MAIN_RIGHT_EDGE).all()
    # the main face in every frame after the bystander left (largest-per-frame took the bystander's before)
    assert set(range(BYSTANDER_FRAMES[-1] + 1, FRAMES)) <= set(crops["frame_index"])
