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

from collections.abc import Mapping

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.media.quality import enlarge, gaussian_blur, gaussian_noise, h264, jpeg, shrink

DOWNSCALE_FACTORS = (1.25, 3.5)  # side shrunk by this much: a 98 px face of a 128 px crop → 28–78 px
BLUR_SIGMAS = (0.5, 1.5)
NOISE_SIGMAS = (2.0, 8.0)  # grey levels
JPEG_QUALITIES = (30, 95)
H264_CRFS = (23, 28, 32, 35, 38)
VIDEO_QUALITY_CRF = 35
VIDEO_QUALITY_FACTORS = (2.0, 3.0)

# Probability of each step; the steps run in this order, as a face passes through a real pipeline:
# resampled, softened by the camera or a filter, sensor noise, then a lossy codec.
DEFAULT_DEGRADATIONS: dict[str, float] = {"downscale": 0.5, "blur": 0.2, "noise": 0.2, "jpeg": 0.3, "h264": 0.5}


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
    height, width = image.shape[:2]
    for name in DEFAULT_DEGRADATIONS:
        coin, strength = draws[name]
        if coin >= probabilities.get(name, 0.0):
            continue
        if name == "downscale":
            image = shrink(image, _between(DOWNSCALE_FACTORS, strength), min_side=16)
        elif name == "blur":
            image = gaussian_blur(image, _between(BLUR_SIGMAS, strength))
        elif name == "noise":
            image = gaussian_noise(image, _between(NOISE_SIGMAS, strength), rng)
        elif name == "jpeg":
            image = jpeg(image, round(_between(JPEG_QUALITIES, strength)))
        else:
            image = h264(image, H264_CRFS[min(int(strength * len(H264_CRFS)), len(H264_CRFS) - 1)])
    if image.shape[:2] != (height, width):
        image = enlarge(image, height, width)
    return image


def _between(bounds: tuple[float, float], fraction: float) -> float:
    return bounds[0] + fraction * (bounds[1] - bounds[0])
