"""Scanner benchmark: `dfdetect scan` against the DFDC winner's own inference code on the same videos,
the scan against its model-only ceiling, peak memory for 10 vs 1000 inputs, and kill-and-resume trials.

    .venv/bin/python benchmarks/scan_bench.py --peer-src /work/peers/dfdc_winner --videos runs/devset_4 \
        [--clips 6] [--input-sizes 224 380] [--scan-args "--workers 1"] [--throughput-only]

The videos: `--clips` synthetic 10 s clips (benchmarks/make_clips.py, one moving face, 720p and 1080p
in turn) plus every video in `--videos`. Both scanners get the same videos, 32 frames each, and the
same network: a timm `tf_efficientnet_b0` with random weights (nothing is downloaded; speed does not
depend on the weights), exported with `dfdetect.export.export_onnx` for the scan and built as the
winner's `DeepFakeClassifier` for the peer (benchmarks/peers/dfdc_winner.py says what was adapted).
`dfdetect scan` runs as a user runs it, in its own process, with default options (plus `--scan-args`);
its seconds are the manifest's (model load to last record), the peer's are counted as its
predict_folder.py counts them (after the model is built). The model-only ceiling is a session opened
here as the scanner opens it, fed random crops at the scanner's batch size for 8 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.scan.corpus: the media generators and kill helper the tests use

from benchmarks.make_clips import make_clips  # noqa: E402
from benchmarks.peers.dfdc_winner import how_to_get  # noqa: E402
from dfdetect.model.contract import ModelContract, Preprocessing  # noqa: E402
from dfdetect.model.session import OnnxModel  # noqa: E402
from dfdetect.results import read_jsonl  # noqa: E402
from dfdetect.scan.pipeline import scan_paths  # noqa: E402
from tests.scan.corpus import comparable, copy_london_faces, good_clip, kill_scan, spawned_children  # noqa: E402

SAMPLED_FRAMES = 32
BACKBONE = "tf_efficientnet_b0"
PEER = REPO / "benchmarks" / "peers" / "dfdc_winner.py"
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
RSS_CHILD = """
import json, sys
from pathlib import Path
from dfdetect.scan.pipeline import scan_paths
summary = scan_paths([sys.argv[1]], sys.argv[2], sys.argv[3], device="cpu", progress=False)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"main_kb": int(status["VmHWM"].split()[0]), "files": summary.scanned}))
"""


def export_random(folder: Path, input_size: int = 224, backbone: str = BACKBONE, fp16: bool = False) -> Path:
    """A timm backbone with random weights exported with its contract (and its fp16 sibling)."""
    import timm
    import torch

    from dfdetect.export import export_onnx, london_parity_crops
    from dfdetect.model.session import precision_sibling

    contract = ModelContract(preprocessing=Preprocessing(input_size=input_size), backbone=backbone,
                             frames_per_video=SAMPLED_FRAMES, aggregation="mean")
    torch.manual_seed(0)
    network = timm.create_model(backbone, pretrained=False, num_classes=1)
    out = folder / f"{backbone}_{input_size}.onnx"
    sample = london_parity_crops(contract, limit=4)
    export_onnx(network, contract, out, sample=sample)
    if fp16:
        export_onnx(network, contract, precision_sibling(out, "fp16"), fp16=True, sample=sample)
    return out


def model_ceiling(model: OnnxModel, batch_size: int, seconds: float = 8.0) -> tuple[float, float]:
    """Crops per second and per CPU second of the session alone on fixed-size batches (no decoding,
    detection or cropping)."""
    size = model.contract.preprocessing.input_size
    batch = model.contract.preprocessing.to_tensor(
        np.random.default_rng(0).integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8))
    model.logits(batch)  # warm-up
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        model.logits(batch)
        done += batch_size
    return done / (time.perf_counter() - started), done / (time.process_time() - cpu_started)


@dataclass
class Measured:
    """A finished command: its stdout, peak memory and the CPU time it and its children used."""

    stdout: str
    peak_rss_kb: int  # its own high-water mark (VmHWM) plus its children's RSS, sampled every 50 ms
    cpu_seconds: float  # user + system, its own and its waited-for children's (decode workers)


def run_measured(command: list[str]) -> Measured:
    """Run a command to the end and measure it. CPU seconds are the figure that survives a busy
    machine: wall time there measures the other jobs as much as this one."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errors:  # pipes could fill and block
        child = subprocess.Popen(command, stdout=out, stderr=errors, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        peak_kb = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, status_kb(child.pid, "VmHWM") + sum(status_kb(p, "VmRSS")
                                                                        for p in spawned_children(child.pid)))
            time.sleep(0.05)
        out.seek(0)
        errors.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{shlex.join(command)} failed with exit code {os.waitstatus_to_exitcode(status)}:\n"
                             f"{errors.read()[-3000:]}")
        return Measured(out.read(), peak_kb, usage.ru_utime + usage.ru_stime)


def scan_cli(videos: list[Path], model_path: Path, out: Path, extra: list[str]) -> dict:
    """`dfdetect scan` in its own process: videos/s and faces/s from its manifest, its peak RSS and CPU time."""
    command = [sys.executable, "-m", "dfdetect", "scan", *map(str, videos), "--model", str(model_path),
               "--out", str(out), *extra]
    measured = run_measured(command)
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    seconds = manifest["seconds"]
    return {"seconds": seconds, "videos_per_second": manifest["counts"]["scanned"] / seconds,
            "faces_per_second": manifest["counts"]["faces"] / seconds, "peak_rss_kb": measured.peak_rss_kb,
            "cpu_seconds": measured.cpu_seconds, "batch_size": manifest["arguments"]["batch_size"],
            "model_file": Path(manifest["model"]["path"]).name, "counts": manifest["counts"]}


def peer_run(peer_src: Path, videos: list[Path], input_size: int) -> dict:
    measured = run_measured([sys.executable, str(PEER), "--peer-src", str(peer_src), "--input-size", str(input_size),
                             *map(str, videos)])
    return {**json.loads(measured.stdout.strip().splitlines()[-1]), "peak_rss_kb": measured.peak_rss_kb,
            "cpu_seconds": measured.cpu_seconds}


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def status_kb(pid: int, key: str) -> int:
    """A kB field (VmRSS, VmHWM) of /proc/<pid>/status; 0 once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(key + ":")), 0)


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
        total_kb = max(total_kb, status_kb(child.pid, "VmRSS") + sum(status_kb(pid, "VmRSS")
                                                                      for pid in spawned_children(child.pid)))
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


def bench_videos(folder: Path, clips: int, clips_dir: Path | None, videos_dir: Path | None) -> list[Path]:
    """The synthetic clips (made once in `clips_dir`, or in the run's folder) and the real videos."""
    videos = make_clips(clips_dir or folder / "clips", clips, seconds=10.0) if clips else []
    if videos_dir is not None:
        videos += sorted(p for p in videos_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise SystemExit("no videos: pass --clips N and/or --videos DIR")
    return videos


def compare(folder: Path, videos: list[Path], input_size: int, peer_src: Path | None, scan_args: list[str]) -> None:
    """One input size: the scan, its model-only ceiling, then the peer, each with the load beside it.
    Beside wall-clock rates, rates per CPU second: on a busy machine they still say how much work each
    video costs (the scan's share of the ceiling per CPU second is the share of its CPU time spent in
    the model)."""
    model_path = export_random(folder, input_size)
    loads = [load()]
    scan = scan_cli(videos, model_path, folder / f"scan_{input_size}.jsonl", scan_args)
    loads.append(load())
    ceiling, ceiling_cpu = model_ceiling(OnnxModel(model_path, device="cpu"), scan["batch_size"])
    loads.append(load())
    faces = scan["counts"]["faces"]
    print(f"@{input_size}: dfdetect scan {shlex.join(scan_args) or '(defaults)'}: {scan['videos_per_second']:.3f} "
          f"videos/s ({scan['faces_per_second']:.1f} faces/s, {scan['seconds']:.1f} s, {faces} faces, "
          f"{scan['model_file']}), {scan['cpu_seconds']:.0f} CPU s ({faces / scan['cpu_seconds']:.1f} faces per "
          f"CPU s), peak RSS {scan['peak_rss_kb'] / 2**20:.2f} GiB", flush=True)
    print(f"@{input_size}: model-only ceiling at batch {scan['batch_size']}: {ceiling:.1f} crops/s, {ceiling_cpu:.1f} "
          f"crops per CPU s; end to end {scan['faces_per_second'] / ceiling:.0%} of it per second, "
          f"{faces / scan['cpu_seconds'] / ceiling_cpu:.0%} per CPU second", flush=True)
    if peer_src is None:
        print(f"@{input_size}: DFDC winner's code not run (no --peer-src); get it with: {how_to_get()}", flush=True)
    else:
        peer = peer_run(peer_src, videos, input_size)
        loads.append(load())
        print(f"@{input_size}: DFDC winner's code: {peer['videos_per_second']:.3f} videos/s ({peer['seconds']:.1f} s), "
              f"{peer['cpu_seconds']:.0f} CPU s for its whole process, peak RSS {peer['peak_rss_kb'] / 2**20:.2f} GiB; "
              f"dfdetect scan / winner = {scan['videos_per_second'] / peer['videos_per_second']:.2f}x per second, "
              f"{peer['cpu_seconds'] / scan['cpu_seconds']:.2f}x per CPU second (whole processes)", flush=True)
    print(f"@{input_size}: 1-min load average before, between and after the parts: {' → '.join(loads)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-src", type=Path, default=None,
                        help="checkout of selimsef/dfdc_deepfake_challenge (without it the peer is skipped)")
    parser.add_argument("--clips", type=int, default=6, help="synthetic 10 s clips with one moving face")
    parser.add_argument("--clips-dir", type=Path, default=None, help="where the clips are made once and reused")
    parser.add_argument("--videos", type=Path, default=None, help="a folder of real videos to add")
    parser.add_argument("--input-sizes", type=int, nargs="+", default=(224, 380))
    parser.add_argument("--scan-args", default="", help="options added to `dfdetect scan`, e.g. '--workers 1'")
    parser.add_argument("--trials", type=int, default=10, help="kill-and-resume trials")
    parser.add_argument("--rss-counts", type=int, nargs=2, default=(10, 1000))
    parser.add_argument("--throughput-only", action="store_true", help="skip the memory and kill-and-resume parts")
    parser.add_argument("--keep", action="store_true", help="keep the generated media and results")
    args = parser.parse_args()
    if args.peer_src is not None and not (args.peer_src / "kernel_utils.py").exists():
        raise SystemExit(f"--peer-src {args.peer_src} has no kernel_utils.py; get it with: {how_to_get()}")
    folder = Path(tempfile.mkdtemp(prefix="scan_bench_"))
    try:
        print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} on {machine()}, load {load()}", flush=True)
        videos = bench_videos(folder, args.clips, args.clips_dir, args.videos)
        print(f"{len(videos)} videos, {SAMPLED_FRAMES} frames each: {', '.join(v.name for v in videos)}", flush=True)
        for input_size in args.input_sizes:
            compare(folder, videos, input_size, args.peer_src, shlex.split(args.scan_args))
        if args.throughput_only:
            return
        model_path = folder / f"{BACKBONE}_{args.input_sizes[0]}.onnx"
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
        print(f"load average at the end {load()} (1 min)")
        if args.keep:
            print(f"media and results kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
