"""Real faces bundled with the package, each set with its licence and attribution beside it
(`<set>/ATTRIBUTION.md`; CC BY 4.0 sets require the credit to travel with every copy). Tests, the
demo and the starter model build their fakes from these."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).parent
LONDON_DIR = SAMPLE_DIR / "london_faces"
FACE_SETS = ("london", "canada", "variation", "orl")


@dataclass(frozen=True)
class BundledFace:
    path: Path
    dataset: str  # one of FACE_SETS
    identity: str  # "<set>:<person>", unique across sets


def bundled_faces(sets: tuple[str, ...] = FACE_SETS) -> list[BundledFace]:
    """Every bundled real face image of the chosen sets with the person it shows, so splits can
    be made identity-disjoint across all sets at once."""
    faces = []
    for name in sets:
        if name == "london":
            faces += [BundledFace(p, name, f"london:{london_identity(p)}")
                      for expression in ("neutral", "smiling") for p in london_images(expression)]
        elif name == "canada":
            paths = sorted((SAMPLE_DIR / "canada_faces").glob("*.jpg"))
            faces += [BundledFace(p, name, f"canada:{p.stem}") for p in paths]
        elif name == "variation":  # one person throughout
            paths = sorted((SAMPLE_DIR / "variation_faces").glob("*.jpg"))
            faces += [BundledFace(p, name, "variation:lisa") for p in paths]
        elif name == "orl":
            paths = sorted((SAMPLE_DIR / "orl_faces").glob("s*/*.png"))
            faces += [BundledFace(p, name, f"orl:{p.parent.name}") for p in paths]
        else:
            raise ValueError(f"unknown face set {name!r}; choose from {FACE_SETS}")
    return faces


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
