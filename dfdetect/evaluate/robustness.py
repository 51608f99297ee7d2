"""Degradations for the robustness sweep, applied to face crops before the model sees them.

Uploaded media is recompressed, resized and filtered on its way to a detector; a detector that only
works on pristine crops fails silently in production. Each degradation is a pure function of a
uint8 RGB crop and a strength, so a sweep is reproducible and a level means the same thing in every
report: JPEG quality (lower is harsher), Gaussian blur σ and noise σ in pixels / grey levels, and the
fraction of its side a crop keeps when shrunk and enlarged back (losing the detail in between). The
functions themselves live in `dfdetect.media.quality`, shared with training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dfdetect.media import quality

Degradation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Sweep:
    """One degradation and its levels, mildest first."""

    name: str
    label: str  # axis title in the report
    apply: Degradation
    levels: tuple[float, ...]


SWEEPS: dict[str, Sweep] = {s.name: s for s in (
    Sweep("jpeg", "JPEG quality", lambda image, level, rng: quality.jpeg(image, int(level)), (90, 70, 50, 30)),
    Sweep("blur", "Gaussian blur σ (px)", lambda image, level, rng: quality.gaussian_blur(image, level),
          (0.5, 1.0, 2.0, 3.0)),
    Sweep("noise", "Gaussian noise σ (grey levels)", quality.gaussian_noise, (2.0, 5.0, 10.0, 20.0)),
    Sweep("downscale", "size kept (fraction of the side)",
          lambda image, level, rng: quality.downscale(image, 1.0 / level), (0.75, 0.5, 0.35, 0.25)),
)}


def condition_name(sweep: str, level: float) -> str:
    """Key of one degraded condition, e.g. 'jpeg@50' or 'blur@0.5'."""
    return f"{sweep}@{level:g}"


def degradations(sweeps: dict[str, Sweep] = SWEEPS) -> dict[str, Callable[[np.ndarray, np.random.Generator],
                                                                           np.ndarray]]:
    """Every (sweep, level) as one function of (crop, rng), keyed by `condition_name`."""
    return {condition_name(s.name, level): (lambda image, rng, s=s, level=level: s.apply(image, level, rng))
            for s in sweeps.values() for level in s.levels}
