"""Image-quality degradations of uint8 RGB faces, in one place for every stage that needs them:
training applies them to reals and fakes alike (train/degrade.py), evaluation sweeps them
(evaluate/robustness.py), self-blending compresses its output, and the starter model's test sets
simulate video. Each is a pure function of the image and a strength (noise also takes its rng)."""

from __future__ import annotations

import cv2
import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.media.encode import h264_roundtrip

VIDEO_QUALITY_CRF = 35  # "video quality" in evaluation and validation: H.264 at this CRF


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """One JPEG encode/decode at `quality` (1-100)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DfdetectError("bad_input", f"JPEG encoding failed for an image of shape {image.shape}", None,
                            "pass an HxWx3 uint8 RGB image")
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def shrink(image: np.ndarray, factor: float, min_side: int = 1) -> np.ndarray:
    """The image with its sides divided by `factor` ≥ 1 (area averaging), each at least `min_side` px."""
    height, width = image.shape[:2]
    return cv2.resize(image, (max(min_side, round(width / factor)), max(min_side, round(height / factor))),
                      interpolation=cv2.INTER_AREA)


def enlarge(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize back to (height, width), as the crop stage enlarges a small face."""
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink the sides by `factor` ≥ 1 and scale back up: the detail lost when a face is small in the
    frame and its crop is enlarged to the network's size."""
    return enlarge(shrink(image, factor), *image.shape[:2])


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT_101)


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0.0, float(sigma), image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def motion_blur(image: np.ndarray, length: float, angle_degrees: float) -> np.ndarray:
    """A straight streak of `length` px at `angle_degrees`: the camera or the head moving during exposure."""
    size = max(3, int(np.ceil(length)) | 1)
    kernel = np.zeros((size, size), np.float32)
    half, radians = (length - 1) / 2.0, np.deg2rad(angle_degrees)
    dx, dy = half * np.cos(radians), half * np.sin(radians)
    centre = size // 2
    # the line is drawn at 1/16 px precision, so a streak of any angle and length has its true extent
    cv2.line(kernel, (round((centre - dx) * 16), round((centre - dy) * 16)),
             (round((centre + dx) * 16), round((centre + dy) * 16)), 1.0, thickness=1, lineType=cv2.LINE_AA, shift=4)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT_101)


def colour_cast(image: np.ndarray, gamma: float, gains: tuple[float, float, float]) -> np.ndarray:
    """Gamma and per-channel gains (white balance): the same scene through another camera's processing."""
    out = np.power(image.astype(np.float32) / np.float32(255.0), np.float32(gamma)) * np.asarray(gains, np.float32)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def greyscale(image: np.ndarray) -> np.ndarray:
    """Black and white, kept as three equal channels."""
    return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def h264(image: np.ndarray, crf: int) -> np.ndarray:
    """One face through libx264 at `crf` as a single-frame clip (an I-frame, as at a scene cut)."""
    return h264_roundtrip([image], crf)[0]


def video_quality(image: np.ndarray, factor: float, crf: int = VIDEO_QUALITY_CRF) -> np.ndarray:
    """A face as it looks in a typical compressed video: downscaled by `factor`, then H.264 at `crf`
    at the small size, then enlarged back."""
    return enlarge(h264(shrink(image, factor, min_side=16), crf), *image.shape[:2])


def video_face(crop: np.ndarray, face_px: float, crop_margin: float, crf: int = VIDEO_QUALITY_CRF) -> np.ndarray:
    """A face crop at video quality with its face — the crop's side over `crop_margin` — shrunk to
    `face_px` wide (never enlarged): the fixed degradation that evaluation and validation share."""
    return video_quality(crop, max(1.0, crop.shape[0] / (crop_margin * face_px)), crf)
