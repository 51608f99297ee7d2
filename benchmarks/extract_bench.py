"""Videos per minute of `dfdetect extract` against a naive extractor, on generated 1080p H.264 clips.

The clips: ~10 s at 30 fps, 1920×1080, a bundled London portrait (240 px; the face in it ~90 px, 5 % of
the frame width, often too small for BlazeFace's whole-frame pass) drifting
over a textured background, encoded with PyAV's libx264 (preset veryfast, CRF 23, default GOP).

Ours: `dfdetect.extract.extract` with 32 frames per video: decodes in order, skipping pictures no
other picture refers to unless chosen, converts only the chosen frames to RGB (seeking where the gap
is long), detects in batches, crops, writes JPEGs and parquet parts. Run twice: with one worker
process (the baseline's process count) and with the CLI's default of one worker per core.
Baseline: decodes AND converts every frame to RGB, and runs the same detector on each chosen frame
one at a time as it streams past (no crops written, so the baseline is if anything flattered).

    WANDB_MODE=offline .venv/bin/python benchmarks/extract_bench.py --clips 12 --detector blazeface

Prints one line per method and the ratio; append it to BENCHMARKS.md with the date and the load.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from dfdetect.extract import extract
from dfdetect.faces import create_detector
from dfdetect.media import read_image, sample_indices
from dfdetect.media.io import available_cores
from dfdetect.model.crops import ExtractOptions
from dfdetect.records import INDEX_COLUMNS, IndexRow, write_rows
from dfdetect.sample_data import london_images

WIDTH, HEIGHT, FPS = 1920, 1080, 30


def make_clip(path: Path, face: np.ndarray, seconds: float, seed: int) -> Path:
    """A 1080p clip of `face` drifting across a still, textured background."""
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.integers(40, 200, (HEIGHT // 24, WIDTH // 24, 3), dtype=np.uint8), (WIDTH, HEIGHT),
                         interpolation=cv2.INTER_CUBIC)
    frames = int(seconds * FPS)
    start = rng.uniform([100, 100], [WIDTH - 700, HEIGHT - 500])
    velocity = rng.uniform(-1, 1, 2) * 12
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(frames):
            x, y = (start + velocity * i).astype(int)
            x, y = int(np.clip(x, 0, WIDTH - face.shape[1])), int(np.clip(y, 0, HEIGHT - face.shape[0]))
            image = texture.copy()
            image[y : y + face.shape[0], x : x + face.shape[1]] = face
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def baseline(paths: list[Path], detector_name: str, frames: int) -> int:
    """Decode and convert every frame, detect each chosen one on its own; returns frames with a face.

    Frames stream through (only the chosen are kept), so the baseline pays for conversion, not for
    holding 300 1080p frames in memory."""
    detector = create_detector(detector_name, num_threads=1)
    found = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            chosen = set(sample_indices(stream.frames, frames))
            for index, frame in enumerate(container.decode(stream)):
                image = frame.to_ndarray(format="rgb24")
                if index in chosen:
                    found += bool(detector.detect([image])[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="more clips amortise the workers' start-up")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--workdir", default=None, help="keep the clips here (default: a temp folder)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="extract_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    faces = [cv2.resize(read_image(p), (240, 240)) for p in london_images()[: args.clips]]
    paths = []
    started = time.time()
    for i, face in enumerate(faces):
        path = workdir / f"clip_{i}.mp4"
        paths.append(path if path.exists() else make_clip(path, face, args.seconds, seed=i))
    print(f"clips: {len(paths)} × {args.seconds:.0f} s 1080p30 H.264 ready in {time.time() - started:.0f} s")

    rows = [IndexRow(path=str(p), media_type="video", label=0, dataset="bench", split="test", group=p.stem)
            for p in paths]
    index = write_rows(rows, workdir / "index.parquet", INDEX_COLUMNS)
    load_before = os.getloadavg()[0]
    per_min = 60 * len(paths)
    ours = {}
    for workers in sorted({1, available_cores()}):
        out = Path(tempfile.mkdtemp(prefix="crops_", dir=workdir))
        started = time.time()
        summary = extract(index, out, ExtractOptions(frames=args.frames, detector=args.detector), workers=workers)
        ours[workers] = time.time() - started
        print(f"ours, {workers} worker(s): {per_min / ours[workers]:6.2f} videos/min ({ours[workers]:.1f} s, "
              f"{summary['faces']} faces in {summary['frames']} frames)")
    started = time.time()
    found = baseline(paths, args.detector, args.frames)
    naive = time.time() - started
    load_after = os.getloadavg()[0]
    print(f"baseline:          {per_min / naive:6.2f} videos/min ({naive:.1f} s, faces in {found} frames)")
    machine = platform.processor() or platform.machine()
    ratios = ", ".join(f"{workers} worker(s) {naive / seconds:.2f}×" for workers, seconds in ours.items())
    print(f"ratio: {ratios}  (detector {args.detector}, {args.frames} frames/video; "
          f"{os.cpu_count()} CPUs, load {load_before:.1f}→{load_after:.1f}, {machine})")


if __name__ == "__main__":
    main()
