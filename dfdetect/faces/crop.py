"""Square face crops with a margin, optionally rotated so the eyes are level. One affine warp per
face: no padding copies, and boxes near the border are filled with black instead of shifted."""

from __future__ import annotations

import cv2
import numpy as np

from dfdetect.faces.base import Face


def crop_transform(box, size: int, margin: float, landmarks: np.ndarray | None = None,
                   align: bool = False) -> np.ndarray:
    """2x3 affine matrix mapping image pixels to crop pixels."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = max(x1 - x0, y1 - y0) * margin
    side = max(side, 1.0)
    angle = 0.0
    if align and landmarks is not None and len(landmarks) >= 2:
        (rx, ry), (lx, ly) = landmarks[0], landmarks[1]  # right eye, left eye (subject's)
        angle = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    scale = size / side
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[0, 2] += size / 2.0 - cx
    matrix[1, 2] += size / 2.0 - cy
    return matrix


def crop_face(image: np.ndarray, face: Face, size: int, margin: float,
              align: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The face as a size×size uint8 crop, and its landmarks in crop coordinates."""
    matrix = crop_transform(face.box, size, margin, face.landmarks, align)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    points = None
    if face.landmarks is not None:
        points = np.asarray(face.landmarks, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return crop, points
