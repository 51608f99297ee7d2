"""Image-quality degradations applied to every training face, real or fake, with the same probabilities.

A detector trained on sharp reals and self-blended fakes (whose blended source is blurred or rescaled)
learns "soft = fake" and then calls every frame of a compressed real video fake. Degrading reals and
fakes alike, after the fake is made, removes quality as a cue: the only thing left that separates the
classes is the manipulation itself. H.264 is applied for real (libx264 through PyAV), because its
blocking and deblocking differ from anything a JPEG or blur simulates.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.media.encode import h264_roundtrip
from dfdetect.train.sbi import jpeg_compress

DOWNSCALE_FACTORS = (1.5, 3.0)  # side shrunk by this much, then scaled back up
BLUR_SIGMAS = (0.5, 1.5)
NOISE_SIGMAS = (2.0, 8.0)  # grey levels
JPEG_QUALITIES = (30, 95)
H264_CRFS = (23, 28, 32, 35, 38)
VIDEO_QUALITY_CRF = 35
VIDEO_QUALITY_FACTORS = (2.0, 3.0)

# Probability of each step; the steps run in this order, as a face passes through a real pipeline:
# resampled, softened by the camera or a filter, sensor noise, then a lossy codec.
DEFAULT_DEGRADATIONS: dict[str, float] = {"downscale": 0.5, "blur": 0.2, "noise": 0.2, "jpeg": 0.3, "h264": 0.5}


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by `factor` (area averaging) and scale back up (bilinear): the detail lost when a face is
    small in the frame and the crop is enlarged to the network's size."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, round(width / factor)), max(1, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def h264(image: np.ndarray, crf: int) -> np.ndarray:
    """One face through libx264 at `crf` as a single-frame clip (an I-frame, as at a scene cut)."""
    return h264_roundtrip([image], crf)[0]


def video_quality(image: np.ndarray, factor: float, crf: int = VIDEO_QUALITY_CRF) -> np.ndarray:
    """A face as it looks in a typical compressed video: downscaled by `factor` and H.264 at `crf`."""
    return h264(downscale(image, factor), crf)


def check_degradations(probabilities: Mapping[str, float] | None) -> dict[str, float]:
    """The probabilities as a plain dict, refusing unknown steps and values outside [0, 1]."""
    if probabilities is None:
        return {}
    unknown = sorted(set(probabilities) - set(DEFAULT_DEGRADATIONS))
    if unknown:
        raise DfdetectError("bad_config", f"unknown degradation steps {unknown}", None,
                            f"use any of {list(DEFAULT_DEGRADATIONS)}")
    bad = {name: p for name, p in probabilities.items() if not 0.0 <= float(p) <= 1.0}
    if bad:
        raise DfdetectError("bad_config", f"degradation probabilities must be in [0, 1], got {bad}", None,
                            "set each step's probability between 0 and 1")
    return {name: float(p) for name, p in probabilities.items()}


def degrade(image: np.ndarray, probabilities: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """The uint8 RGB image after each step that its coin flip selects, in DEFAULT_DEGRADATIONS order.

    Every step draws its coin (and its strength) whether or not an earlier step ran, so the random
    stream — and with it every later item of a seeded run — does not depend on the image content.
    """
    draws = {name: (rng.random(), rng.random()) for name in DEFAULT_DEGRADATIONS}
    for name in DEFAULT_DEGRADATIONS:
        coin, strength = draws[name]
        if coin >= probabilities.get(name, 0.0):
            continue
        if name == "downscale":
            image = downscale(image, _between(DOWNSCALE_FACTORS, strength))
        elif name == "blur":
            image = gaussian_blur(image, _between(BLUR_SIGMAS, strength))
        elif name == "noise":
            image = gaussian_noise(image, _between(NOISE_SIGMAS, strength), rng)
        elif name == "jpeg":
            image = jpeg_compress(image, round(_between(JPEG_QUALITIES, strength)))
        else:
            image = h264(image, H264_CRFS[min(int(strength * len(H264_CRFS)), len(H264_CRFS) - 1)])
    return image


def _between(bounds: tuple[float, float], fraction: float) -> float:
    return bounds[0] + fraction * (bounds[1] - bounds[0])
