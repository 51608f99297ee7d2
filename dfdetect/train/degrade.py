"""Image-quality degradations applied to every training face, real or fake, with the same probabilities.

A detector trained on sharp reals and self-blended fakes (whose blended source is blurred or rescaled)
learns "soft = fake" and then calls every frame of a compressed real video fake. Degrading reals and
fakes alike, after the fake is made, removes quality as a cue: the only thing left that separates the
classes is the manipulation itself. H.264 is applied for real (libx264 through PyAV), because its
blocking and deblocking differ from anything a JPEG or blur simulates.

The steps follow a face through a video pipeline: a downscaled face stays small while it is blurred,
noised and encoded — a codec works on the face at its size in the frame, where a CRF 35 block is a
large part of an eye — and is enlarged back to the crop size only at the end, as the crop stage does.
Encoding the enlarged face instead would be far milder than real video, and a model trained that way
meets harsher faces at scan time than it ever saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.media.quality import (
    colour_cast,
    enlarge,
    gaussian_blur,
    gaussian_noise,
    greyscale,
    h264,
    jpeg,
    motion_blur,
    shrink,
)

# Default strengths; a recipe may set its own downscale range and CRFs (data.downscale_factors, data.h264_crfs)
DOWNSCALE_FACTORS = (1.25, 3.5)  # side shrunk by this much: a 98 px face of a 128 px crop → 28–78 px
BLUR_SIGMAS = (0.5, 1.5)
MOTION_BLUR_LENGTHS = (3.0, 9.0)  # px, on the face at its (possibly shrunk) size
NOISE_SIGMAS = (2.0, 8.0)  # grey levels
GAMMAS = (0.7, 1.4)
COLOUR_GAIN = 0.08  # each channel's gain in 1 ± this
JPEG_QUALITIES = (30, 95)
H264_CRFS = (23, 28, 32, 35, 38)
VIDEO_QUALITY_FACTORS = (2.0, 3.0)

# Probability of each step; the steps run in this order, as a face passes through a real pipeline:
# resampled, softened by defocus or motion, sensor noise, the camera's colour processing (or none:
# black and white), then lossy codecs.
DEFAULT_DEGRADATIONS: dict[str, float] = {"downscale": 0.5, "blur": 0.2, "motion_blur": 0.1, "noise": 0.2,
                                          "colour": 0.3, "greyscale": 0.05, "jpeg": 0.3, "h264": 0.5}


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


def check_strengths(downscale_factors: Sequence[float], h264_crfs: Sequence[int]) -> tuple[tuple, tuple]:
    """The downscale range (low, high) and the CRF choices as tuples, refusing impossible values."""
    factors, crfs = tuple(float(f) for f in downscale_factors), tuple(int(c) for c in h264_crfs)
    if len(factors) != 2 or not 1.0 <= factors[0] <= factors[1]:
        raise DfdetectError("bad_config", f"downscale_factors must be [low, high] with 1 ≤ low ≤ high, got {factors}",
                            None, "e.g. [1.0, 1.63] shrinks a 98 px face to 60–98 px")
    if not crfs or not all(0 <= c <= 51 for c in crfs):
        raise DfdetectError("bad_config", f"h264_crfs must be one or more CRFs in 0–51, got {crfs}", None,
                            "e.g. [18, 23, 28, 32, 35, 38, 40]")
    return factors, crfs


def degrade(image: np.ndarray, probabilities: Mapping[str, float], rng: np.random.Generator,
            downscale_factors: tuple[float, float] = DOWNSCALE_FACTORS, h264_crfs: tuple[int, ...] = H264_CRFS
            ) -> np.ndarray:
    """The uint8 RGB image after each step that its coin flip selects, in DEFAULT_DEGRADATIONS order.
    A drawn downscale shrinks by a factor in `downscale_factors`; a drawn H.264 step uses one of `h264_crfs`.

    Every step draws its coin (and its strength) whether or not an earlier step ran, so the random
    stream — and with it every later item of a seeded run — does not depend on the image content.
    """
    draws = {name: (rng.random(), rng.random()) for name in DEFAULT_DEGRADATIONS}
    height, width = image.shape[:2]
    for name in DEFAULT_DEGRADATIONS:
        coin, strength = draws[name]
        if coin >= probabilities.get(name, 0.0):
            continue
        if name == "downscale":
            image = shrink(image, _between(downscale_factors, strength), min_side=16)
        elif name == "blur":
            image = gaussian_blur(image, _between(BLUR_SIGMAS, strength))
        elif name == "motion_blur":
            image = motion_blur(image, _between(MOTION_BLUR_LENGTHS, strength), float(rng.uniform(0.0, 180.0)))
        elif name == "noise":
            image = gaussian_noise(image, _between(NOISE_SIGMAS, strength), rng)
        elif name == "colour":
            gains = tuple(1.0 + rng.uniform(-COLOUR_GAIN, COLOUR_GAIN, 3))
            image = colour_cast(image, _between(GAMMAS, strength), gains)
        elif name == "greyscale":
            image = greyscale(image)
        elif name == "jpeg":
            image = jpeg(image, round(_between(JPEG_QUALITIES, strength)))
        else:
            image = h264(image, h264_crfs[min(int(strength * len(h264_crfs)), len(h264_crfs) - 1)])
    if image.shape[:2] != (height, width):
        image = enlarge(image, height, width)
    return image


def _between(bounds: tuple[float, float], fraction: float) -> float:
    return bounds[0] + fraction * (bounds[1] - bounds[0])
