"""Greedy IoU tracking: gives each face a track id that follows the same person across the
sampled frames of one video, so training can sample per face and scanning can score per person."""

from __future__ import annotations

import numpy as np

from dfdetect.faces.base import Face, box_iou

MAX_SHIFT_SIDES = 2.0  # how far (in face widths) a face may move between two detected frames and be followed
MAX_SIZE_RATIO = 1.5  # how much its width may change


class IouTracker:
    def __init__(self, iou_threshold: float = 0.3):
        self.iou_threshold = iou_threshold
        self._last_boxes: dict[int, tuple[float, float, float, float]] = {}

    def assign(self, faces: list[Face]) -> list[int]:
        """Track ids for one frame's faces: each matched to the unclaimed track whose last box
        overlaps it most (above the threshold), largest faces first; the rest start new tracks."""
        ids: list[int] = []
        claimed: set[int] = set()
        track_ids = list(self._last_boxes)
        overlaps = (box_iou(np.array([f.box for f in faces]), np.array([self._last_boxes[t] for t in track_ids]))
                    if faces and track_ids else np.zeros((len(faces), 0)))
        for i, face in enumerate(faces):
            best, best_iou = None, self.iou_threshold
            for j, track in enumerate(track_ids):
                if track not in claimed and overlaps[i, j] > best_iou:
                    best, best_iou = track, overlaps[i, j]
            if best is None:
                best = len(self._last_boxes)
                while best in self._last_boxes:
                    best += 1
            claimed.add(best)
            self._last_boxes[best] = face.box
            ids.append(best)
        return ids


def _between(a: Face, b: Face, fraction: float) -> Face:
    """The face `fraction` of the way from `a` to `b` on a straight line (box, score, landmarks)."""
    box = tuple(float(x + fraction * (y - x)) for x, y in zip(a.box, b.box))
    landmarks = None
    if a.landmarks is not None and b.landmarks is not None and np.shape(a.landmarks) == np.shape(b.landmarks):
        landmarks = np.asarray(a.landmarks) + fraction * (np.asarray(b.landmarks) - np.asarray(a.landmarks))
    return Face(box=box, score=float(a.score + fraction * (b.score - a.score)), landmarks=landmarks)


def _pairs(before: list[Face], after: list[Face]) -> list[tuple[int, int]]:
    """(i, j) pairs of the same face in two detected frames: the IouTracker's matches (any overlap),
    then, among the faces left, nearest centres first, for faces of similar size that moved at most
    MAX_SHIFT_SIDES of their width (sampled frames can be a second apart: a face may have moved
    further than its own width, but it does not jump across the frame)."""
    tracker = IouTracker(iou_threshold=0.0)
    before_ids, after_ids = tracker.assign(before), tracker.assign(after)
    pairs = [(i, after_ids.index(track)) for i, track in enumerate(before_ids) if track in after_ids]
    left_before = [i for i in range(len(before)) if i not in {p[0] for p in pairs}]
    left_after = [j for j in range(len(after)) if j not in {p[1] for p in pairs}]
    candidates = []
    for i in left_before:
        for j in left_after:
            a, b = np.asarray(before[i].box), np.asarray(after[j].box)
            side_a, side_b = max(a[2] - a[0], 1e-6), max(b[2] - b[0], 1e-6)
            shift = np.hypot(*((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2))
            if max(side_a, side_b) / min(side_a, side_b) <= MAX_SIZE_RATIO and shift <= MAX_SHIFT_SIDES * side_a:
                candidates.append((shift, i, j))
    for _, i, j in sorted(candidates):
        if i in left_before and j in left_after:
            pairs.append((i, j))
            left_before.remove(i)
            left_after.remove(j)
    return pairs


def faces_linked(before: list[Face], after: list[Face]) -> bool:
    """Whether every face of two detected frames is paired with one of the other (`_pairs`), so that
    the frames between can take faces carried from them."""
    return len(before) == len(after) == len(_pairs(before, after))


def faces_between(before: list[Face], after: list[Face], fraction: float) -> list[Face]:
    """Faces for a frame that was not run through the detector, `fraction` (0..1) of the way from the
    detected frame before it to the detected frame after it. A face found in both (`_pairs`) moves on
    the straight line between its two boxes; a face seen in only one of the two is held where it was
    seen, in that frame's half of the gap. Largest first."""
    pairs = _pairs(before, after)
    faces = [_between(before[i], after[j], fraction) for i, j in pairs]
    if fraction < 0.5:
        faces += [face for i, face in enumerate(before) if i not in {p[0] for p in pairs}]
    else:
        faces += [face for j, face in enumerate(after) if j not in {p[1] for p in pairs}]
    return sorted(faces, key=lambda face: face.area, reverse=True)


def track_ids(frames: list[list[Face]]) -> list[list[int]]:
    """A track id for every face of a video's sampled frames, in frame order: a face continues the
    track of the face `_pairs` matches it with in the last frame that had faces (overlap first, then
    the nearest face of similar size within MAX_SHIFT_SIDES widths: sampled frames can be a second
    apart), else it starts a new track."""
    ids: list[list[int]] = []
    previous: list[Face] = []
    previous_ids: list[int] = []
    next_id = 0
    for faces in frames:
        continued = {j: previous_ids[i] for i, j in _pairs(previous, faces)} if previous else {}
        current = []
        for j in range(len(faces)):
            if j not in continued:
                continued[j], next_id = next_id, next_id + 1
            current.append(continued[j])
        ids.append(current)
        if faces:
            previous, previous_ids = faces, current
    return ids


def main_track_mask(frames: list[list[Face]]) -> list[list[bool]]:
    """Which faces belong to the video's main track: the one seen in the most frames, ties broken by the
    largest mean box. Taking the largest face of each frame instead switches to a bystander whenever
    one comes nearer the camera (3–7 track ids per FF++ actor clip), mixing people into one score."""
    ids = track_ids(frames)
    seen: dict[int, list[float]] = {}
    for faces, frame_ids in zip(frames, ids):
        for face, track in zip(faces, frame_ids):
            seen.setdefault(track, []).append(face.area)
    if not seen:
        return [[] for _ in frames]
    main = max(seen, key=lambda track: (len(seen[track]), float(np.mean(seen[track]))))
    return [[track == main for track in frame_ids] for frame_ids in ids]
