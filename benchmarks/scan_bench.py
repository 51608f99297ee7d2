"""Scanner benchmark: end-to-end videos/s against a sequential baseline, the model-only ceiling, peak
memory for 10 vs 1000 inputs, and kill-and-resume trials.

    .venv/bin/python benchmarks/scan_bench.py [--clips 8] [--clip-frames 64] [--trials 10]

The baseline follows the DFDC winner's predictor: read every frame of the video, run the face detector
on each sampled frame one at a time, and the classifier on each face one at a time. It uses the same
BlazeFace detector, the same ONNX session and the same sampling as the scanner, so the ratio measures
the pipeline (parallel decoding, batched detection, fixed-size mixed inference batches), nothing else.
The model is a timm EfficientNet-B0 at 224 px with random weights (nothing is downloaded; speed does
not depend on the weights), exported with `dfdetect.export.export_onnx`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.scan.corpus: the media generators and kill helper the tests use

from dfdetect.contract import ModelContract, Preprocessing  # noqa: E402
from dfdetect.faces import create_detector, crop_face  # noqa: E402
from dfdetect.media.io import sample_indices, video_frame_count  # noqa: E402
from dfdetect.scan.aggregate import aggregate  # noqa: E402
from dfdetect.scan.pipeline import default_batch_size, scan_paths  # noqa: E402
from dfdetect.scan.session import OnnxModel  # noqa: E402
from dfdetect.scan.writers import read_jsonl  # noqa: E402
from tests.scan.corpus import (  # noqa: E402
    comparable,
    copy_london_faces,
    good_clip,
    h264_clip,
    kill_scan,
    london_face,
    spawned_children,
)

SAMPLED_FRAMES = 32
HD = (720, 1280)
RSS_CHILD = """
import json, sys
from pathlib import Path
from dfdetect.scan.pipeline import scan_paths
summary = scan_paths([sys.argv[1]], sys.argv[2], sys.argv[3], device="cpu", progress=False)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"main_kb": int(status["VmHWM"].split()[0]), "files": summary.scanned}))
"""


def hd_clip(path: Path, frames: int, face_index: int, size: tuple[int, int] = HD) -> Path:
    """An H.264 clip with one face (upscaled London face) drifting over a textured background."""
    rng = np.random.default_rng(face_index)
    background = cv2.GaussianBlur(rng.integers(40, 200, (*size, 3), dtype=np.uint8), (0, 0), 6)
    face = cv2.resize(london_face(face_index), (size[0] // 2, size[0] // 2), interpolation=cv2.INTER_CUBIC)
    side = face.shape[0]

    def frame(i: int) -> np.ndarray:
        image = background.copy()
        x = size[1] // 3 + int(60 * np.sin(i / 9))
        y = size[0] // 5 + int(20 * np.cos(i / 7))
        image[y : y + side, x : x + side] = face
        return image

    return h264_clip((frame(i) for i in range(frames)), path, fps=25)


def export_b0(folder: Path, input_size: int = 224) -> Path:
    import timm
    import torch

    from dfdetect.export import export_onnx, london_parity_crops

    contract = ModelContract(preprocessing=Preprocessing(input_size=input_size), backbone="efficientnet_b0",
                             frames_per_video=SAMPLED_FRAMES, aggregation="mean")
    torch.manual_seed(0)
    network = timm.create_model("efficientnet_b0", pretrained=False, num_classes=1)
    out = folder / f"b0_{input_size}.onnx"
    export_onnx(network, contract, out, sample=london_parity_crops(contract, limit=4))
    return out


def baseline_scan(clips: list[Path], model: OnnxModel) -> tuple[float, int, list[float]]:
    """DFDC-predictor style: every frame decoded, sampled frames detected one by one, faces
    classified one by one. Returns seconds, faces scored, per-clip probabilities."""
    detector = create_detector(model.contract.detector)
    prep = model.contract.preprocessing
    started = time.perf_counter()
    faces, logits_per_clip = 0, []
    for clip in clips:
        chosen = set(sample_indices(video_frame_count(clip), SAMPLED_FRAMES))
        frames = []
        with av.open(str(clip)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in chosen:
                    frames.append(frame.to_ndarray(format="rgb24"))
        logits = []
        for image in frames:
            for face in detector.detect([image])[0]:
                crop = crop_face(image, face, size=prep.input_size, margin=prep.crop_margin)[0]
                logits.append(float(model.logits(prep.to_tensor(crop))[0]))
        faces += len(logits)
        logits_per_clip.append(aggregate(np.asarray(logits) / model.contract.temperature, model.contract.aggregation))
    return time.perf_counter() - started, faces, logits_per_clip


def model_ceiling(model: OnnxModel, batch_size: int, seconds: float = 8.0) -> float:
    """Crops/s of the session alone on fixed-size batches (no decoding, detection or cropping)."""
    size = model.contract.preprocessing.input_size
    batch = model.contract.preprocessing.to_tensor(
        np.random.default_rng(0).integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8))
    model.logits(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.logits(batch)
        done += batch_size
    return done / (time.perf_counter() - started)


def rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def peak_rss(folder: Path, model_path: Path, count: int) -> dict:
    """Peak resident memory of a fresh scanner process over `count` small images: its own high-water
    mark (VmHWM: getrusage's ru_maxrss would include the benchmark it was forked from), and the
    largest sum over it and its decode workers, sampled every 50 ms."""
    inputs = folder / f"rss_{count}"
    faces = copy_london_faces(inputs / "src", 102)
    for i in range(count):
        shutil.copy(faces[i % len(faces)], inputs / f"{i:05d}.jpg")
    shutil.rmtree(inputs / "src")
    out = folder / f"rss_{count}.jsonl"
    child = subprocess.Popen([sys.executable, "-c", RSS_CHILD, str(inputs), str(model_path), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "TQDM_DISABLE": "1"})
    total_kb = 0
    while child.poll() is None:
        total_kb = max(total_kb, rss_kb(child.pid) + sum(rss_kb(pid) for pid in spawned_children(child.pid)))
        time.sleep(0.05)
    result = json.loads(child.stdout.read().strip().splitlines()[-1])
    return {**result, "total_kb": total_kb}


def kill_resume_trials(folder: Path, model_path: Path, trials: int) -> tuple[int, int]:
    """(trials whose final record set equalled the uninterrupted run, trials killed mid-scan)."""
    inputs = folder / "kill_inputs"
    copy_london_faces(inputs, 30, start=40)
    good_clip(inputs / "a.mp4", frames=12, index=70)
    good_clip(inputs / "b.mp4", frames=12, index=71)
    options = ["--device", "cpu", "--frames", "4", "--batch-size", "8", "--workers", "2"]
    scan_paths([inputs], model_path, folder / "reference.jsonl", device="cpu", frames=4, batch_size=8, workers=2,
               progress=False)
    reference = comparable(list(read_jsonl(folder / "reference.jsonl")))
    rng = random.Random(10)
    equal = killed = 0
    for trial in range(trials):
        out = folder / f"kill_{trial}.jsonl"
        command = [sys.executable, "-m", "dfdetect", "scan", str(inputs), "--model", str(model_path), "--out",
                   str(out), *options]
        killed += kill_scan(command, out, rng.randrange(0, len(reference)), rng)
        scan_paths([inputs], model_path, out, device="cpu", frames=4, batch_size=8, workers=2, resume=True,
                   progress=False)
        records = list(read_jsonl(out))
        equal += comparable(records) == reference and len({r["path"] for r in records}) == len(records)
    return equal, killed


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{platform.node()}: {os.cpu_count()} × {cpu}, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="720p clips for the videos/s comparison")
    parser.add_argument("--clip-frames", type=int, default=64, help="frames per clip (32 are sampled)")
    parser.add_argument("--trials", type=int, default=10, help="kill-and-resume trials")
    parser.add_argument("--input-size", type=int, default=224,
                        help="model input size (224 as specified; a small one shows the pipeline when the model "
                             "is not the bottleneck, as on a GPU)")
    parser.add_argument("--rss-counts", type=int, nargs=2, default=(10, 1000))
    parser.add_argument("--throughput-only", action="store_true", help="skip the memory and kill-and-resume parts")
    parser.add_argument("--keep", action="store_true", help="keep the generated media")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="scan_bench_"))
    load_before = os.getloadavg()
    try:
        print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} on {machine()}", flush=True)
        model_path = export_b0(folder, args.input_size)
        clips = [hd_clip(folder / f"clip{i:02d}.mp4", args.clip_frames, face_index=i) for i in range(args.clips)]
        model = OnnxModel(model_path, device="cpu")

        out = folder / "pipeline.jsonl"
        summary = scan_paths(clips, model_path, out, device="cpu", frames=SAMPLED_FRAMES, progress=False)
        pipeline_records = {r["path"]: r for r in read_jsonl(out)}
        base_seconds, base_faces, base_logits = baseline_scan(clips, model)
        agree = max(abs(pipeline_records[str(c)]["logit"] - logit) for c, logit in zip(clips, base_logits))
        ceilings = {batch: model_ceiling(model, batch) for batch in (1, 8, 32)}
        ceiling = max(ceilings.values())
        pipeline_vps, base_vps = summary.scanned / summary.seconds, len(clips) / base_seconds
        print(f"end to end ({args.clips} clips 1280x720 H.264, {args.clip_frames} frames, {SAMPLED_FRAMES} sampled): "
              f"pipeline {pipeline_vps:.3f} videos/s ({summary.faces / summary.seconds:.1f} faces/s, "
              f"{summary.seconds:.1f} s), baseline {base_vps:.3f} videos/s ({base_faces / base_seconds:.1f} faces/s, "
              f"{base_seconds:.1f} s): ratio {pipeline_vps / base_vps:.2f}x; max |Δlogit| pipeline vs baseline "
              f"{agree:.2e}", flush=True)
        print("model-only ceiling: " + ", ".join(f"batch {b}: {c:.1f}" for b, c in ceilings.items())
              + f" crops/s; the pipeline (batch {default_batch_size(False)}) reaches "
              f"{summary.faces / summary.seconds / ceiling:.0%} of the best end to end", flush=True)

        if args.throughput_only:
            return
        small, large = (peak_rss(folder, model_path, n) for n in args.rss_counts)
        few, many = args.rss_counts
        print(f"peak RSS of the scanner process: {few} inputs {small['main_kb'] / 1024:.0f} MiB, {many} inputs "
              f"{large['main_kb'] / 1024:.0f} MiB: ratio {large['main_kb'] / small['main_kb']:.2f}x; with its decode "
              f"workers (sampled): {small['total_kb'] / 1024:.0f} MiB vs {large['total_kb'] / 1024:.0f} MiB: "
              f"ratio {large['total_kb'] / max(1, small['total_kb']):.2f}x", flush=True)

        equal, killed = kill_resume_trials(folder, model_path, args.trials)
        print(f"kill -9 and resume: {equal}/{args.trials} trials equal to the uninterrupted run "
              f"({killed} killed mid-scan)", flush=True)
    finally:
        print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
        if args.keep:
            print(f"media kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
