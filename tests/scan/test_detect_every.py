"""`--detect-every K`: the detector sees every K-th sampled frame, the tracker carries faces between."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.faces import Face, box_iou, create_detector
from dfdetect.faces.tracking import faces_between
from dfdetect.media.io import Frame
from dfdetect.model.contract import Preprocessing
from dfdetect.results import read_jsonl
from dfdetect.scan.decode import FileDecoded
from dfdetect.scan.pipeline import DetectionBatcher, FileTask, PreparedFile, scan_paths
from tests.scan.corpus import good_clip, london_face

FRAMES = 32
FRAME_SIZE = (240, 320)  # height, width
FACE_SIDE = 112


def test_faces_between_moves_a_tracked_face_on_the_line_and_holds_an_untracked_one():
    before = [Face((0.0, 0.0, 100.0, 100.0), 0.9, np.array([[20.0, 30.0], [60.0, 30.0]])),
              Face((300.0, 0.0, 340.0, 40.0), 0.8)]  # only in the frame before
    after = [Face((40.0, 20.0, 140.0, 120.0), 0.7, np.array([[60.0, 50.0], [100.0, 50.0]]))]
    quarter = faces_between(before, after, 0.25)
    assert [f.box for f in quarter] == [(10.0, 5.0, 110.0, 105.0), (300.0, 0.0, 340.0, 40.0)]
    assert quarter[0].score == pytest.approx(0.85)
    np.testing.assert_allclose(quarter[0].landmarks, [[30.0, 35.0], [70.0, 35.0]])
    assert [f.box for f in faces_between(before, after, 0.75)] == [(30.0, 15.0, 130.0, 115.0)]


def face_offset(i: int) -> tuple[int, int]:
    """Where the face's top-left corner is in sampled frame i: a fast sway, up to 13 px per frame."""
    return 100 + round(80 * np.sin(i / 6)), 60 + round(40 * np.cos(i / 5))


def cut_offset(i: int) -> tuple[int, int]:
    """A scene cut: the face jumps across the frame every 7th sampled frame, too far to follow."""
    return (10, 20) if (i // 7) % 2 == 0 else (190, 110)


def moving_face_frames(offset=face_offset) -> tuple[list[Frame], list[tuple[float, float, float, float]]]:
    """Sampled frames of one face swaying over a noise background, and the true face box in each: the
    detector's box on the face alone, moved with it."""
    import cv2

    face = cv2.resize(london_face(5), (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    (alone,) = create_detector("blazeface").detect([face])[0][:1]
    background = np.random.default_rng(0).integers(60, 180, (*FRAME_SIZE, 3), dtype=np.uint8)
    frames, truth = [], []
    for i in range(FRAMES):
        x, y = offset(i)
        image = background.copy()
        image[y : y + FACE_SIDE, x : x + FACE_SIDE] = face
        frames.append(Frame(index=i * 8, image=image))
        x0, y0, x1, y1 = alone.box
        truth.append((x0 + x, y0 + y, x1 + x, y1 + y))
    return frames, truth


def face_recall(detect_every: int, frames: list[Frame], truth: list) -> float:
    """Share of frames with a face crop whose box overlaps the true face by IoU >= 0.5."""
    done: list[PreparedFile] = []
    batcher = DetectionBatcher(create_detector("blazeface"), Preprocessing(input_size=64), batch_frames=8,
                               finished=done.append, detect_every=detect_every,
                               all_faces=True)  # recall of detection, not of the main-track choice after it
    task = FileTask("moving.mp4", 1, 0.0)
    for start in range(0, len(frames), 4):  # chunks of 4, as decode workers send them
        batcher.add_frames(0, task, "video", frames[start : start + 4])
    batcher.file_decoded(0, task, FileDecoded("video", len(frames), 0.0))
    batcher.flush()
    (prepared,) = done
    assert len(prepared.crops) == len(prepared.faces)
    assert [f.frame_index for f in prepared.faces] == sorted(f.frame_index for f in prepared.faces)
    boxes = {face.frame_index: face.box for face in prepared.faces if face.face_index == 0}
    hits = [i for i, frame in enumerate(frames)
            if frame.index in boxes and box_iou(np.array(boxes[frame.index]), np.array(truth[i]))[0, 0] >= 0.5]
    return len(hits) / len(frames)


@pytest.mark.parametrize("offset", [face_offset, cut_offset], ids=["sway", "cuts"])
def test_recall_on_moving_faces_stays_within_1_percent_of_detecting_every_frame(offset):
    """A followed face is carried between detections; one that jumps (a cut) sends the frames
    between to the detector, so no frame gets a box where the face was before."""
    frames, truth = moving_face_frames(offset)
    every_frame = face_recall(1, frames, truth)
    assert every_frame >= 0.9  # the detector itself finds the face: the comparison means something
    for k in (2, 4):
        assert face_recall(k, frames, truth) >= 0.99 * every_frame, k


def test_detect_every_scans_a_video_with_fewer_detector_calls(model_path, tmp_path):
    clip = good_clip(tmp_path / "clip.mp4", frames=12)
    records = {}
    for k in (1, 3):
        out = tmp_path / f"every{k}.jsonl"
        scan_paths([clip], model_path, out, device="cpu", frames=8, detect_every=k, details=True, progress=False)
        (records[k],) = read_jsonl(out)
    assert records[3]["status"] == records[1]["status"] == "ok"
    assert records[3]["faces_scored"] == records[1]["faces_scored"] == 8
    frames = [s["frame_index"] for s in records[3]["frame_scores"]]
    assert frames == [s["frame_index"] for s in records[1]["frame_scores"]]  # in frame order, one face each


def test_detect_every_below_one_is_refused(model_path, tmp_path):
    with pytest.raises(DfdetectError, match="--detect-every must be >= 1"):
        scan_paths([tmp_path], model_path, tmp_path / "out.jsonl", detect_every=0, progress=False)
    assert not (tmp_path / "out.jsonl").exists()

