"""Recall and speed of each face detector on real, consented face photographs.

Every image in these sets holds exactly one face, so recall = images where the detector returns at
least one face / images. For the pasted set a London face is resized to 200 px (about a tenth of the
frame width) and pasted at a random place in a 1920×1080 noise frame; it counts as found only when the
largest detection's centre lies inside the pasted square.

    .venv/bin/python benchmarks/detector_recall.py --data /work/shared/data

Sets: london (the 204 bundled 256 px images), london_512 (the same photographs at 512 px), pasted_1080p,
canada_faces (40), variation_faces (8: sizes, positions, in-plane rotations, distances), orl_faces
(400 greyscale 92×112). Speed: ms per frame at 1920×1080 and 256×256, batches of 8 and one by one.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from dfdetect.faces import create_detector
from dfdetect.media import read_image
from dfdetect.records import IMAGE_EXTENSIONS
from dfdetect.sample_data import london_images


def image_sets(data: Path) -> dict[str, list[Path]]:
    def listing(folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)

    sets = {"london": london_images("neutral") + london_images("smiling")}
    for name, folder in (("london_512", data / "london_faces"), ("canada_faces", data / "canada_faces"),
                         ("variation_faces", data / "variation_faces"), ("orl_faces", data / "orl_faces")):
        if folder.is_dir():
            sets[name] = listing(folder)
        else:
            print(f"skipping {name}: {folder} not found")
    return sets


def pasted_frames(count: int, seed: int = 0) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    rng = np.random.default_rng(seed)
    frames = []
    for path in (london_images("neutral") + london_images("smiling"))[:count]:
        frame = rng.integers(60, 140, (1080, 1920, 3), dtype=np.uint8)
        x, y = int(rng.integers(0, 1720)), int(rng.integers(0, 880))
        frame[y : y + 200, x : x + 200] = cv2.resize(read_image(path), (200, 200), interpolation=cv2.INTER_AREA)
        frames.append((frame, (x, y, x + 200, y + 200)))
    return frames


def recall(detector, images: list[np.ndarray], batch: int = 8) -> int:
    found = 0
    for start in range(0, len(images), batch):
        found += sum(bool(faces) for faces in detector.detect(images[start : start + batch]))
    return found


def pasted_recall(detector, frames) -> int:
    found = 0
    for start in range(0, len(frames), 8):
        chunk = frames[start : start + 8]
        for (_, (x0, y0, x1, y1)), faces in zip(chunk, detector.detect([f for f, _ in chunk])):
            if faces:
                cx, cy = (faces[0].box[0] + faces[0].box[2]) / 2, (faces[0].box[1] + faces[0].box[3]) / 2
                found += x0 <= cx <= x1 and y0 <= cy <= y1
    return found


def ms_per_frame(detector, image: np.ndarray, batch: int, repeats: int) -> float:
    detector.detect([image] * batch)  # warm-up: allocations, kernel selection
    started = time.perf_counter()
    for _ in range(repeats):
        detector.detect([image] * batch)
    return 1000 * (time.perf_counter() - started) / (repeats * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/shared/data", help="folder with canada_faces/, orl_faces/, ...")
    parser.add_argument("--detectors", default="blazeface,mtcnn")
    parser.add_argument("--pasted", type=int, default=100, help="how many pasted 1080p frames")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    sets = {name: [read_image(p) for p in paths] for name, paths in image_sets(Path(args.data)).items()}
    frames = pasted_frames(args.pasted)
    big, small = frames[0][0], sets["london"][0]
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = ["detector", *[f"{k} ({len(v)})" for k, v in sets.items()], f"pasted_1080p ({len(frames)})",
              "ms/frame 1080p b8", "ms/frame 1080p b1", "ms/frame 256 b8", "ms/frame 256 b1"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in args.detectors.split(","):
        detector = create_detector(name, num_threads=args.threads)
        cells = [name]
        for images in sets.values():
            cells.append(f"{100 * recall(detector, images) / len(images):.1f} %")
        cells.append(f"{100 * pasted_recall(detector, frames) / len(frames):.1f} %")
        for image, batch, repeats in ((big, 8, 2), (big, 1, 8), (small, 8, 4), (small, 1, 16)):
            cells.append(f"{ms_per_frame(detector, image, batch, repeats):.1f}")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
