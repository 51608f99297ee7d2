"""Synthetic benchmark videos: H.264 clips, each with one bundled London face moving over a
textured background, alternately 1280×720 and 1920×1080.

    .venv/bin/python benchmarks/make_clips.py --out runs/bench_clips [--count 6] [--seconds 10]

Written with PyAV (OpenCV's writer has no H.264 encoder in the wheels used here). The face is a
quarter of the frame height wide and drifts up to a sixth of the frame's width, so a detector run on
a subset of frames has real motion to follow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.scan.corpus: the H.264 writer and faces the tests use

from tests.scan.corpus import h264_clip, london_face  # noqa: E402

SIZES = ((720, 1280), (1080, 1920))  # (height, width), taken in turn
FPS = 25


def moving_face_clip(path: Path, frames: int, face_index: int, size: tuple[int, int]) -> Path:
    """An H.264 clip of `frames` frames at FPS with one face drifting over a blurred-noise background."""
    height, width = size
    rng = np.random.default_rng(face_index)
    background = cv2.GaussianBlur(rng.integers(40, 200, (height, width, 3), dtype=np.uint8), (0, 0), 6)
    side = height // 4
    face = cv2.resize(london_face(face_index), (side, side), interpolation=cv2.INTER_CUBIC)

    def frame(i: int) -> np.ndarray:
        image = background.copy()
        x = width // 3 + int(width / 6 * np.sin(i / 25))
        y = height // 3 + int(height / 10 * np.cos(i / 19))
        image[y : y + side, x : x + side] = face
        return image

    return h264_clip((frame(i) for i in range(frames)), path, fps=FPS)


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` clips in `folder` (kept when already there, so repeated benchmarks reuse them)."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(count):
        size = SIZES[i % len(SIZES)]
        path = folder / f"moving_face_{i:02d}_{size[0]}p.mp4"
        clips.append(path if path.exists() else moving_face_clip(path, int(seconds * FPS), i, size))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the clips")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for path in make_clips(args.out, args.count, args.seconds):
        print(path)


if __name__ == "__main__":
    main()
