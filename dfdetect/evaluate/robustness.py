"""Degradations for the robustness sweep, applied to face crops before the model sees them.

Uploaded media is recompressed, resized and filtered on its way to a detector; a detector that only
works on pristine crops fails silently in production. Each degradation is a pure function of a
uint8 RGB crop and a strength, so a sweep is reproducible and a level means the same thing in every
report: JPEG quality (lower is harsher), Gaussian blur σ and noise σ in pixels / grey levels, and a
downscale factor (the crop is shrunk by it and enlarged back, losing the detail in between).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from dfdetect.errors import DfdetectError


def jpeg_recompress(image: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DfdetectError("internal", f"OpenCV could not JPEG-encode a {image.shape} crop")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT_101)


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0.0, float(sigma), image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def downscale(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


Degradation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Sweep:
    """One degradation and its levels, mildest first."""

    name: str
    label: str  # axis title in the report
    apply: Degradation
    levels: tuple[float, ...]


SWEEPS: dict[str, Sweep] = {s.name: s for s in (
    Sweep("jpeg", "JPEG quality", jpeg_recompress, (90, 70, 50, 30)),
    Sweep("blur", "Gaussian blur σ (px)", gaussian_blur, (0.5, 1.0, 2.0, 3.0)),
    Sweep("noise", "Gaussian noise σ (grey levels)", gaussian_noise, (2.0, 5.0, 10.0, 20.0)),
    Sweep("downscale", "downscale factor", downscale, (0.75, 0.5, 0.35, 0.25)),
)}


def condition_name(sweep: str, level: float) -> str:
    """Key of one degraded condition, e.g. 'jpeg@50' or 'blur@0.5'."""
    return f"{sweep}@{level:g}"


def degradations(sweeps: dict[str, Sweep] = SWEEPS) -> dict[str, Callable[[np.ndarray, np.random.Generator],
                                                                           np.ndarray]]:
    """Every (sweep, level) as one function of (crop, rng), keyed by `condition_name`."""
    return {condition_name(s.name, level): (lambda image, rng, s=s, level=level: s.apply(image, level, rng))
            for s in sweeps.values() for level in s.levels}
