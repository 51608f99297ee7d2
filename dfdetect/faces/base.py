"""The detector interface and its registry: a detector is one class plus one `@register_detector`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dfdetect.errors import DfdetectError


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float
    landmarks: np.ndarray | None = None  # (K, 2) image pixels; BlazeFace: eyes, nose, mouth, ears

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class FaceDetector(Protocol):
    name: str

    def detect(self, images: Sequence[np.ndarray],
               hints: Sequence[tuple[float, float, float, float] | None] | None = None) -> list[list[Face]]:
        """Faces in each HxWx3 uint8 RGB image, largest first. `hints`, one per image or None, is where
        a face was in the previous frame of the same video; a detector may use it to search there first."""


DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable:
    def add(factory: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        DETECTORS[name] = factory
        return factory

    return add


def create_detector(name: str, **kwargs) -> FaceDetector:
    if name not in DETECTORS:
        raise DfdetectError("bad_config", f"unknown face detector {name!r}", None,
                            f"choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N,4) and b (M,4) in x0,y0,x1,y1 form."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
