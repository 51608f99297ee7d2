"""Real faces bundled with the package (see london_faces/ATTRIBUTION.md: CC BY 4.0, attribution
travels with every copy). Tests, the demo and the starter model build their fakes from these."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np

LONDON_DIR = Path(__file__).parent / "london_faces"


def london_images(expression: str = "neutral") -> list[Path]:
    """Paths of the bundled London faces, sorted by face id; expression is 'neutral' or 'smiling'."""
    return sorted((LONDON_DIR / expression).glob("*.jpg"))


def london_identity(path: str | Path) -> str:
    """The face id (first three digits of the file name) that names the person."""
    return Path(path).name[:3]


@cache
def london_landmarks() -> dict[str, np.ndarray]:
    """189 WebMorph points (189, 2) of each neutral image, keyed by face id, in 256 px coordinates."""
    points = {}
    with open(LONDON_DIR / "landmarks_189.csv") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            points[london_identity(row[0])] = np.asarray(row[2:], np.float32).reshape(-1, 2)
    return points
