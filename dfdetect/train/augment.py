"""Augmentation presets by name, so a config picks one with a string and a new preset is one
function plus one registry line. Evaluation always uses the deterministic resize + normalise path,
whatever the preset, so validation numbers do not depend on augmentation randomness."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import ImageOnlyTransform
from albumentations.pytorch import ToTensorV2

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import DEFAULT_CROP_MARGIN


def _no_augmentation(size: int, crop_margin: float) -> list[A.BasicTransform]:
    return []


def _dfb_augmentation(size: int, crop_margin: float) -> list[A.BasicTransform]:
    """The DeepfakeBench-style recipe: geometric jitter, mild blur, photometric change and JPEG
    re-compression, which stops the model keying on one dataset's compression level."""
    return [
        A.HorizontalFlip(p=0.5),
        A.Rotate(limit=10, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
        A.GaussianBlur(blur_limit=(3, 7), p=0.1),
        A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=0.5),
        A.ImageCompression(quality_range=(40, 100), p=0.5),
    ]


# Face parts in a crop from `dfdetect extract` at the default margin (a square of DEFAULT_CROP_MARGIN × the
# face box around the box centre), as (x0, y0, x1, y1) fractions of the crop side. Averages over BlazeFace
# crops of frontal faces; `face_part_box` moves them for crops cut at another margin.
FACE_PARTS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.18, 0.30, 0.82, 0.48),
    "nose": (0.38, 0.40, 0.62, 0.66),
    "mouth": (0.28, 0.62, 0.72, 0.80),
    "left_half": (0.0, 0.0, 0.5, 1.0),
    "right_half": (0.5, 0.0, 1.0, 1.0),
    "lower_half": (0.0, 0.55, 1.0, 1.0),
}


def face_part_box(part: str, crop_margin: float) -> tuple[float, float, float, float]:
    """FACE_PARTS[part] in a crop cut at `crop_margin`: a wider margin shrinks the face towards the centre."""
    scale = DEFAULT_CROP_MARGIN / crop_margin
    x0, y0, x1, y1 = (0.5 + (f - 0.5) * scale for f in FACE_PARTS[part])
    return x0, y0, x1, y1


class FacePartCutout(ImageOnlyTransform):
    """Black out one face part (eyes, nose, mouth, or half of the face).

    The DFDC winner (Seferbekov 2020) found the network otherwise fixes on one strong artefact, such as
    the eyes, and ignores the rest; hiding a part forces it to find evidence everywhere. Part positions
    come from the crop layout of `dfdetect extract` rather than per-image landmarks, so the transform
    needs the image alone; `crop_margin` is the margin the crops were cut at.
    """

    def __init__(self, crop_margin: float = DEFAULT_CROP_MARGIN, p: float = 0.5):
        super().__init__(p=p)
        self.crop_margin = crop_margin

    def get_params(self) -> dict[str, Any]:
        return {"part": self.py_random.choice(sorted(FACE_PARTS))}

    def apply(self, img: np.ndarray, part: str = "eyes", **params) -> np.ndarray:
        height, width = img.shape[:2]
        x0, y0, x1, y1 = face_part_box(part, self.crop_margin)
        out = img.copy()
        out[round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)] = 0
        return out


def _dfdc_augmentation(size: int, crop_margin: float) -> list[A.BasicTransform]:
    """The DFDC winner's recipe (Seferbekov 2020): compression, noise and blur so the model cannot rely
    on pristine pixels, isotropic rescaling with padding (the face keeps its aspect ratio), one
    photometric change, grey images, small geometric jitter and face-part cutout."""
    return [
        A.ImageCompression(quality_range=(60, 100), p=0.5),
        A.GaussNoise(std_range=(0.02, 0.08), p=0.1),
        A.GaussianBlur(blur_limit=(3, 5), p=0.05),
        A.HorizontalFlip(p=0.5),
        A.OneOf([
            A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_AREA),
            A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_CUBIC),
            A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_LINEAR),
        ], p=1.0),
        A.PadIfNeeded(min_height=size, min_width=size, border_mode=cv2.BORDER_CONSTANT, fill=0),
        A.OneOf([A.RandomBrightnessContrast(), A.FancyPCA(), A.HueSaturationValue()], p=0.7),
        A.ToGray(p=0.2),
        A.Affine(translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-10, 10),  # ShiftScaleRotate
                 border_mode=cv2.BORDER_CONSTANT, p=0.5),
        FacePartCutout(crop_margin, p=0.3),
    ]


AUGMENTATION_PRESETS: dict[str, Callable[[int, float], list[A.BasicTransform]]] = {
    "none": _no_augmentation,
    "dfb": _dfb_augmentation,
    "dfdc": _dfdc_augmentation,
}


def build_transforms(preset: str, size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                     seed: int | None = None, crop_margin: float = DEFAULT_CROP_MARGIN) -> A.Compose:
    """uint8 HWC RGB crop → float32 CHW tensor at `size`, normalised with the model's mean/std.

    The augmentations run on the full-resolution crop before the resize, so blur and JPEG artefacts
    are scaled the way they would be in real footage. albumentations ignores global seeds, so a run
    is reproducible only when `seed` is given. A second image passed as `clean=` gets exactly the same
    augmentation (the quality-consistency pairs of dfdetect.train.data).
    """
    if preset not in AUGMENTATION_PRESETS:
        raise DfdetectError("bad_config", f"unknown augmentation preset {preset!r}", None,
                            f"choose one of {sorted(AUGMENTATION_PRESETS)}")
    augment = AUGMENTATION_PRESETS[preset](size, crop_margin) if train else []
    return A.Compose([
        *augment,
        A.Resize(size, size, interpolation=cv2.INTER_AREA),
        A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0),
        ToTensorV2(),
    ], seed=seed, additional_targets={"clean": "image"})
