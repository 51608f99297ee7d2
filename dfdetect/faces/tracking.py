"""Greedy IoU tracking: gives each face a track id that follows the same person across the
sampled frames of one video, so training can sample per face and scanning can score per person."""

from __future__ import annotations

import numpy as np

from dfdetect.faces.base import Face, box_iou


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
