"""Faces in pictures stored sideways or upside down with no EXIF tag or display matrix to say so.

A face detector often still finds a face turned by 90° (BlazeFace: score 0.75 on a sideways London
face), but the crop is then sideways too, and a detector trained on upright faces read that real face
as fake (0.954). The landmarks say which way is up (the eyes above the mouth): a frame whose largest
face is turned is detected again turned upright, and a frame without any face is tried at each quarter
turn. The turn is kept with the faces, so a record says which way the face was read. An upside-down
face that BlazeFace finds is not caught: its landmarks come out as if the face were upright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dfdetect.faces.base import Face, FaceDetector

QUARTER_TURNS = (1, 3, 2)  # counter-clockwise (np.rot90), tried in this order on a frame without a face


def turned(image: np.ndarray, quarter_turns: int) -> np.ndarray:
    return image if quarter_turns % 4 == 0 else np.ascontiguousarray(np.rot90(image, quarter_turns))


def upright_turns(face: Face) -> int:
    """Quarter turns (np.rot90, counter-clockwise) that stand `face` upright, read from its landmarks:
    the eyes (the first two points, in BlazeFace and MTCNN alike) above the mouth (BlazeFace's fourth
    point; the mean of MTCNN's two mouth corners). 0 without landmarks."""
    if face.landmarks is None or len(face.landmarks) < 4:
        return 0
    points = np.asarray(face.landmarks, np.float64).reshape(-1, 2)
    mouth = points[3] if len(points) != 5 else points[3:5].mean(axis=0)
    up = points[:2].mean(axis=0) - mouth
    angle = math.degrees(math.atan2(-up[1], up[0]))  # 90° when the eyes are straight above the mouth
    return round((90.0 - angle) / 90.0) % 4


def detect_any_orientation(detector: FaceDetector, images: Sequence[np.ndarray]) -> tuple[list[list[Face]], list[int]]:
    """Faces per image and the quarter turns (0 upright) of the image they were found in; their boxes
    are in that turned image's pixels. The images go through the detector as they are in one batch,
    then the turned ones in one batch per turn: those whose largest face is sideways or upside down,
    stood up; then those without a face, at each quarter turn until one is found."""
    faces = list(detector.detect(list(images)))
    turns = [0] * len(images)

    def retry(indices_by_turn: dict[int, list[int]]) -> None:
        for quarter_turns, indices in indices_by_turn.items():
            for i, found in zip(indices, detector.detect([turned(images[i], quarter_turns) for i in indices])):
                if found:
                    faces[i], turns[i] = found, quarter_turns

    sideways: dict[int, list[int]] = {}
    for i, found in enumerate(faces):
        if found and (quarter_turns := upright_turns(found[0])):
            sideways.setdefault(quarter_turns, []).append(i)
    retry(sideways)
    for quarter_turns in QUARTER_TURNS:
        missing = [i for i, found in enumerate(faces) if not found]
        if not missing:
            break
        retry({quarter_turns: missing})
    return faces, turns
