"""BlazeFace (MediaPipe's face detector) run through LiteRT, with anchors, box decoding and
weighted NMS written here: the .tflite graphs end at raw regressor/classifier tensors.

The model files ship inside the package (dfdetect/faces/models, Apache-2.0, see NOTICE there), so
nothing is downloaded at run time. Two variants: `full` (192 px input, one anchor per 4-px cell,
made for faces far from the camera: video frames) and `short` (128 px, for selfie-distance faces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from dfdetect.faces.base import Face, box_iou, register_detector

MODEL_DIR = Path(__file__).parent / "models"


@dataclass(frozen=True)
class BlazeFaceVariant:
    model_file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # aspect ratio 1.0, plus the interpolated scale when 2
    score_threshold: float


VARIANTS = {
    "short": BlazeFaceVariant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": BlazeFaceVariant("face_detection_full_range.tflite", 192, (4,), 1, 0.5),
}


def make_anchors(variant: BlazeFaceVariant) -> list[np.ndarray]:
    """Anchor centres in [0,1], one (A_i, 2) array per feature map, in the order of the model's
    outputs: layers that share a stride are merged into one map with their anchors interleaved."""
    centres = []
    layer = 0
    strides = variant.strides
    while layer < len(strides):
        stride = strides[layer]
        repeats = 0
        while layer < len(strides) and strides[layer] == stride:
            repeats += 1
            layer += 1
        cells = int(np.ceil(variant.input_size / stride))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)
        centres.append(np.repeat(grid, repeats * variant.anchors_per_layer, axis=0))
    return [c.astype(np.float32) for c in centres]


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = 0.3) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's blending NMS: each kept detection is the score-weighted mean of the boxes and
    keypoints it suppresses, which steadies boxes across video frames."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    remaining = np.ones(len(scores), bool)
    kept = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = box_iou(boxes[i : i + 1], boxes)[0]
        members = remaining & (overlap > iou_threshold)
        members[i] = True
        weights = scores[members][:, None]
        box = (boxes[members] * weights).sum(0) / weights.sum()
        kps = (keypoints[members] * weights[:, :, None]).sum(0) / weights.sum()
        kept.append((box, float(scores[i]), kps))
        remaining &= ~members
    return kept


class BlazeFaceDetector:
    """Batched BlazeFace. Images are letterboxed to the model's square input so faces keep their
    shape; boxes and the 6 keypoints come back in the original image's pixels."""

    def __init__(self, variant: str = "full", score_threshold: float | None = None,
                 min_face_fraction: float = 0.0, tiling: str = "auto", num_threads: int = 2):
        self.variant = VARIANTS[variant]
        self.name = "blazeface" if variant == "full" else f"blazeface_{variant}"
        self.score_threshold = score_threshold if score_threshold is not None else self.variant.score_threshold
        self.min_face_fraction = min_face_fraction
        if tiling not in ("auto", "always", "never"):
            raise ValueError(f"tiling must be auto, always or never, not {tiling!r}")
        self.tiling = tiling
        self._anchor_maps = make_anchors(self.variant)
        self.anchors = np.concatenate(self._anchor_maps)
        self._interpreter = Interpreter(model_path=str(MODEL_DIR / self.variant.model_file), num_threads=num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._regressors, self._classifiers = outputs[0]["index"], outputs[1]["index"]
        self._batch = 0
        self._num_threads = num_threads
        self._close_up: BlazeFaceDetector | None = None

    def _close_up_detector(self) -> BlazeFaceDetector:
        if self._close_up is None:
            self._close_up = BlazeFaceDetector("short", tiling="never", num_threads=self._num_threads,
                                               min_face_fraction=self.min_face_fraction)
        return self._close_up

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        size = self.variant.input_size
        h, w = image.shape[:2]
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        pad_y, pad_x = (size - nh) // 2, (size - nw) // 2
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized.astype(np.float32) / 127.5 - 1.0
        return canvas, scale, pad_x, pad_y

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return tuple(self._unbatch(self._interpreter.get_tensor(i), batch.shape[0])
                     for i in (self._regressors, self._classifiers))

    def _unbatch(self, output: np.ndarray, n: int) -> np.ndarray:
        """The graphs end in fixed-shape reshapes + concat, so a resized batch comes back as
        (1, n*A, C) ordered feature map by feature map, each map batch-major: regroup to (n, A, C)."""
        channels = output.shape[-1]
        flat = output.reshape(-1, channels)
        parts, start = [], 0
        for anchors in self._anchor_maps:
            size = n * len(anchors)
            parts.append(flat[start : start + size].reshape(n, len(anchors), channels))
            start += size
        return np.concatenate(parts, axis=1)

    def detect(self, images: Sequence[np.ndarray],
               hints: Sequence[tuple[float, float, float, float] | None] | None = None) -> list[list[Face]]:
        """Whole-image pass for every image, then second chances for the images where it found nothing:

        - a small image goes to the short-range model: a face filling a small picture (ORL's 92×112
          portraits) is too close for the full-range anchors (14/400 found vs 374/400);
        - a large image with a hint (the face's box in the previous frame of a video) is searched in a
          window around the hint, one model call instead of a dozen tiles;
        - a large image still without a face is searched in overlapping tiles (or always, with
          tiling="always"), because a face that is a tenth of a 1080p frame shrinks below the smallest
          anchors when the whole frame is letterboxed.

        Passing `hints` (even all None) says the images are consecutive frames of one video, searched for
        the face being followed: a face found in one large frame is the hint for the next (the caller's
        hint is right only for the first — a face drifting 10 px a frame is ~100 px away one sampled
        frame later), and the next frame is searched in that window *first*; the whole frame is looked
        at when the window is empty, and in the batch's first frame always. A face that appears elsewhere
        while the followed one stays in view is thus seen at the next batch's first frame, not before:
        callers that want every face of every frame pass no hints.
        """
        hints_given = hints is not None
        hints = list(hints) if hints_given else [None] * len(images)
        large = [max(image.shape[:2]) > 3 * self.variant.input_size for image in images]
        window_first = [hints_given and self.tiling != "never" and large[i] and i > 0 for i in range(len(images))]
        results: list[list[Face]] = [[] for _ in images]
        whole = [i for i in range(len(images)) if not window_first[i]]
        for i, faces in zip(whole, self._detect_whole([images[i] for i in whole])):
            results[i] = faces
        if self.variant is VARIANTS["full"]:
            small_missed = [i for i in whole if not results[i] and not large[i]]
            if small_missed:
                close_up = self._close_up_detector().detect([images[i] for i in small_missed])
                for i, faces in zip(small_missed, close_up):
                    results[i] = faces
        if self.tiling == "never":
            return results
        for i, image in enumerate(images):
            if not large[i]:
                continue
            hint = _largest(results[i - 1]).box if hints_given and i > 0 and results[i - 1] else hints[i]
            if not results[i] and hint is not None:
                self._add_found(results, images, [(i, *_window_around(hint, image.shape, self.variant.input_size))])
            if window_first[i] and not results[i]:
                results[i] = self._detect_whole([image])[0]
            if self.tiling == "always" or not results[i]:
                self._add_found(results, images, [(i, x, y, side) for x, y, side in _tile_grid(image.shape)])
        return [_merge_overlaps(faces) if len(faces) > 1 else faces for faces in results]

    def _add_found(self, results: list[list[Face]], images: Sequence[np.ndarray],
                   regions: list[tuple[int, int, int, int]]) -> None:
        """Detect in square regions (image index, x, y, side) and add what is found, in image pixels."""
        if not regions:
            return
        found = self._detect_whole([images[i][y : y + side, x : x + side] for i, x, y, side in regions])
        for (i, x, y, _), faces in zip(regions, found):
            results[i] += [Face(box=(f.box[0] + x, f.box[1] + y, f.box[2] + x, f.box[3] + y), score=f.score,
                                landmarks=f.landmarks + np.float32([x, y])) for f in faces]

    def _detect_whole(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        if len(images) == 0:
            return []
        boxed = [self._letterbox(image) for image in images]
        raw_boxes, raw_scores = self._run(np.stack([b[0] for b in boxed]))
        size = float(self.variant.input_size)
        results = []
        for (_, scale, pad_x, pad_y), regress, logits, image in zip(boxed, raw_boxes, raw_scores, images):
            scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0].astype(np.float64), -100, 100)))
            keep = scores >= self.score_threshold
            if not keep.any():
                results.append([])
                continue
            reg, anchors = regress[keep] / size, self.anchors[keep]
            centre = reg[:, :2] + anchors
            half = reg[:, 2:4] / 2.0
            boxes = np.concatenate([centre - half, centre + half], axis=1) * size
            keypoints = (reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]) * size
            faces = []
            for box, score, kps in weighted_nms(boxes, scores[keep], keypoints):
                box = (box - [pad_x, pad_y, pad_x, pad_y]) / scale
                kps = (kps - [pad_x, pad_y]) / scale
                h, w = image.shape[:2]
                box = np.clip(box, 0, [w, h, w, h])
                face = Face(box=tuple(float(v) for v in box), score=score, landmarks=kps.astype(np.float32))
                if face.area >= self.min_face_fraction * h * w and face.area > 0:
                    faces.append(face)
            faces.sort(key=lambda f: f.area, reverse=True)
            results.append(faces)
        return results


def _largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda face: (face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))


def _window_around(box: tuple[float, float, float, float], shape: tuple[int, ...],
                   min_side: int) -> tuple[int, int, int]:
    """(x, y, side) of a square window three times the box's size around its centre, inside the image."""
    h, w = shape[:2]
    side = int(min(max(3 * max(box[2] - box[0], box[3] - box[1]), min_side), h, w))
    x = int(np.clip((box[0] + box[2]) / 2 - side / 2, 0, w - side))
    y = int(np.clip((box[1] + box[3]) / 2 - side / 2, 0, h - side))
    return x, y, side


def _tile_grid(shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Square tiles of half the short side, overlapping by a quarter, covering the image."""
    h, w = shape[:2]
    side = max(1, min(h, w) // 2)
    step = max(1, int(side * 0.75))
    xs = sorted({*range(0, max(1, w - side), step), max(0, w - side)})
    ys = sorted({*range(0, max(1, h - side), step), max(0, h - side)})
    return [(x, y, side) for y in ys for x in xs]


def _merge_overlaps(faces: list[Face], iou_threshold: float = 0.3) -> list[Face]:
    """Keep the highest-scoring face among overlapping detections from the whole image and tiles."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if not kept or box_iou(np.array([face.box]), np.array([k.box for k in kept])).max() <= iou_threshold:
            kept.append(face)
    return sorted(kept, key=lambda f: f.area, reverse=True)


@register_detector("blazeface")
def blazeface_full(**kwargs) -> BlazeFaceDetector:
    return BlazeFaceDetector(variant="full", **kwargs)


@register_detector("blazeface_short")
def blazeface_short(**kwargs) -> BlazeFaceDetector:
    return BlazeFaceDetector(variant="short", **kwargs)
