"""Heatmaps over a face crop that any model can give, ONNX included: occlusion sensitivity, and the PNG
that shows a crop beside its heatmap. `dfdetect explain` and `scan --explain` both draw them; Grad-CAM,
which needs a torch network, lives with the explain verb.

Occlusion slides a window filled with the crop's mean colour over the crop and records how far the raw
logit falls: a region whose covering drops the score is one the score rests on. It needs nothing but
a logits function, so a deployment without torch can explain too, at the price of one inference per
window position (about 200 for a 128 px crop).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from dfdetect.model.contract import Preprocessing

OCCLUSION_WINDOWS = 8  # window side = input size / 8 (16 px at 128 px), stride half a window
OVERLAY_ALPHA = 0.5
BATCH_SIZE = 32


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Window positions along one side that cover it fully, the last one flush with the edge."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion_map(logits: Callable[[np.ndarray], np.ndarray], crop: np.ndarray, preprocessing: Preprocessing,
                  window: int | None = None, stride: int | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(H, W) map: at each pixel, the mean fall of the raw logit over the windows that covered it when
    each was filled with the crop's mean colour. `logits` takes a normalised float32 NCHW batch (an
    ONNX session or a torch network wrapped in numpy), so a deployment without torch can explain too."""
    size = crop.shape[0]
    window = window or max(2, size // OCCLUSION_WINDOWS)
    stride = stride or max(1, window // 2)
    fill = crop.reshape(-1, 3).mean(axis=0).round().astype(crop.dtype)
    positions = [(y, x) for y in window_starts(size, window, stride) for x in window_starts(size, window, stride)]
    base = float(logits(preprocessing.to_tensor(crop[None]))[0])
    drops = np.empty(len(positions))
    for start in range(0, len(positions), batch_size):
        batch = []
        for y, x in positions[start:start + batch_size]:
            occluded = crop.copy()
            occluded[y:y + window, x:x + window] = fill
            batch.append(occluded)
        drops[start:start + len(batch)] = base - logits(preprocessing.to_tensor(np.stack(batch)))
    total, covered = np.zeros(crop.shape[:2]), np.zeros(crop.shape[:2])
    for (y, x), drop in zip(positions, drops):
        total[y:y + window, x:x + window] += drop
        covered[y:y + window, x:x + window] += 1
    return total / covered


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    """(x, y) of the map's highest value, in crop pixels."""
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(x), int(y)


def overlay(crop: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The crop with the positive part of the map over it (jet colours, scaled to the map's maximum)."""
    positive = np.clip(heatmap, 0.0, None)
    scaled = positive / positive.max() if positive.max() > 0 else positive
    colours = colormaps["jet"](scaled)[..., :3] * 255.0
    weight = OVERLAY_ALPHA * scaled[..., None]
    return np.clip(crop * (1.0 - weight) + colours * weight, 0, 255).astype(np.uint8)


def write_heatmap_png(crop: np.ndarray, heatmap: np.ndarray, path: str | Path) -> Path:
    """One PNG: the crop on the left, the heatmap over it on the right."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([crop, overlay(crop, heatmap)], axis=1)).save(path)
    return path
