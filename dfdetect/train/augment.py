"""Augmentation presets by name, so a config picks one with a string and a new preset is one
function plus one registry line. Evaluation always uses the deterministic resize + normalise path,
whatever the preset, so validation numbers do not depend on augmentation randomness."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from dfdetect.errors import DfdetectError


def _no_augmentation(size: int) -> list[A.BasicTransform]:
    return []


def _dfb_augmentation(size: int) -> list[A.BasicTransform]:
    """The DeepfakeBench-style recipe: geometric jitter, mild blur, photometric change and JPEG
    re-compression, which stops the model keying on one dataset's compression level."""
    return [
        A.HorizontalFlip(p=0.5),
        A.Rotate(limit=10, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
        A.GaussianBlur(blur_limit=(3, 7), p=0.1),
        A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=0.5),
        A.ImageCompression(quality_range=(40, 100), p=0.5),
    ]


AUGMENTATION_PRESETS: dict[str, Callable[[int], list[A.BasicTransform]]] = {
    "none": _no_augmentation,
    "dfb": _dfb_augmentation,
}


def build_transforms(preset: str, size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                     seed: int | None = None) -> A.Compose:
    """uint8 HWC RGB crop → float32 CHW tensor at `size`, normalised with the model's mean/std.

    The augmentations run on the full-resolution crop before the resize, so blur and JPEG artefacts
    are scaled the way they would be in real footage. albumentations ignores global seeds, so a run
    is reproducible only when `seed` is given.
    """
    if preset not in AUGMENTATION_PRESETS:
        raise DfdetectError("bad_config", f"unknown augmentation preset {preset!r}", None,
                            f"choose one of {sorted(AUGMENTATION_PRESETS)}")
    augment = AUGMENTATION_PRESETS[preset](size) if train else []
    return A.Compose([
        *augment,
        A.Resize(size, size, interpolation=cv2.INTER_AREA),
        A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0),
        ToTensorV2(),
    ], seed=seed)
