"""`dfdetect scan PATH... --model model.onnx --out results.jsonl`: the CLI face of scan_paths."""

from __future__ import annotations

import argparse
import logging
import sys

from dfdetect.faces import DETECTORS
from dfdetect.media.io import DEFAULT_MAX_PIXELS
from dfdetect.model.resources import STARTER_NOTICE, default_model
from dfdetect.model.session import PRECISIONS
from dfdetect.scan.pipeline import DETECT_BATCH, DETECT_EVERY, ENGINES, ScanSummary, scan_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+",
                        help="image/video files, directories (recursive), glob patterns (quote them), or manifests: "
                             ".txt with one path per line, .csv with a 'path' column")
    parser.add_argument("--model", default=None,
                        help="ONNX model from `dfdetect export` (default: the starter model shipped in the package)")
    parser.add_argument("--out", required=True,
                        help="results: .jsonl (appended record by record), .csv or .parquet (written from a "
                             "<out>.journal.jsonl when the scan ends); a run manifest goes to <out>.manifest.json")
    parser.add_argument("--flag", default=None, metavar="THRESHOLD",
                        help="named threshold of the model (e.g. fpr@0.01) at or above which a file is decided "
                             "'fake' (default: the contract's default threshold)")
    parser.add_argument("--clear", default=None, metavar="THRESHOLD",
                        help="named threshold (e.g. fpr@0.05) below which a file is decided 'real'; files between "
                             "the two are decided 'review', for a person (default: the contract's, else --flag)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where ONNX Runtime runs (default: the best available)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="which of the model's files to run: fp32 (--model), fp16 or int8 (model.fp16.onnx, "
                             "model.int8.onnx beside it, from `dfdetect export`); auto: fp16 on a GPU, int8 on a "
                             "CPU, when the file exists, else fp32. The manifest records which ran")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="face crops per inference batch, mixing files (default: 32 on a GPU, 8 on a CPU)")
    parser.add_argument("--detect-batch", type=int, default=DETECT_BATCH,
                        help="frames per face-detection batch, gathered across files")
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY, metavar="K",
                        help="run the face detector on every K-th sampled frame of a video (and its last); the "
                             f"frames between take the faces tracked between those (default {DETECT_EVERY})")
    parser.add_argument("--detector", default=None, choices=sorted(DETECTORS),
                        help="face detector (default: the one named in the model contract)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames sampled per video (default: the contract's frames_per_video)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes (default: 0 on up to 2 cores, where decoding runs in a thread of "
                             "the scan, measured faster; else cores - 1, at most 8)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images and video frames larger than this many pixels, from the header, "
                             "before decoding")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one file may take to decode before it is recorded as a timeout (> 0)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an existing --out, skipping files already recorded (same path, size, mtime; "
                             "with --hash same path and sha256)")
    parser.add_argument("--hash", action="store_true", dest="hash_files",
                        help="identify files by path and sha256 for --resume (survives touches; reads every file)")
    parser.add_argument("--details", action="store_true", help="also record every face's score (frame_scores)")
    parser.add_argument("--all-faces", action="store_true",
                        help="score every face of a video, not only its main track (the person seen in the most "
                             "frames); images always score every face")
    parser.add_argument("--explain", action="store_true",
                        help="write an occlusion heatmap PNG per top face into <out>.explain/ (top_faces[i].heatmap; "
                             "about 200 extra inferences per face)")
    parser.add_argument("--provenance", action=argparse.BooleanOptionalAction, default=True,
                        help="record each file's C2PA manifest and invisible-watermark evidence (default: on)")
    parser.add_argument("--engine", default="local", choices=ENGINES,
                        help="local: this machine; ray: a Ray cluster (Ray Data actor pool)")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join (e.g. auto on a cluster node); default: start a local Ray")
    parser.add_argument("--ray-actors", type=int, default=1, help="Ray actors, each with one model session")
    parser.add_argument("--ray-actor-cpus", type=float, default=1.0, help="CPUs reserved per Ray actor (may be < 1)")
    parser.add_argument("--ray-actor-gpus", type=float, default=0.0, help="GPUs reserved per Ray actor")


def summary_table(summary: ScanSummary) -> str:
    """The end-of-scan counts as a small aligned table."""
    rows = [("ok", summary.ok), ("no face", summary.no_face), ("error", summary.error),
            ("flagged (fake)", summary.flagged), ("review (a person decides)", summary.review),
            ("skipped (resume)", summary.skipped)]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {count:>8}" for name, count in rows)


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = args.model or default_model()
    if args.model is None:
        print(STARTER_NOTICE, file=sys.stderr)
    summary = scan_paths(args.paths, model, args.out, device=args.device, batch_size=args.batch_size,
                         detector=args.detector, frames=args.frames, resume=args.resume, details=args.details,
                         workers=args.workers, max_pixels=args.max_pixels, timeout=args.timeout,
                         hash_files=args.hash_files, engine=args.engine, precision=args.precision,
                         detect_batch=args.detect_batch, ray_address=args.ray_address, ray_actors=args.ray_actors,
                         ray_actor_cpus=args.ray_actor_cpus, ray_actor_gpus=args.ray_actor_gpus,
                         flag=args.flag, clear=args.clear, detect_every=args.detect_every,
                         provenance=args.provenance, explain=args.explain, all_faces=args.all_faces)
    faces_per_second = summary.faces / summary.seconds if summary.seconds > 0 else 0.0
    print(f"scanned {summary.scanned} files in {summary.seconds:.1f} s ({summary.files_per_second:.2f} files/s, "
          f"{faces_per_second:.1f} faces/s) on {summary.providers[0]}: {summary.ok} ok, {summary.no_face} no face, "
          f"{summary.error} errors, {summary.flagged} flagged as fake → {summary.out}")
    print(summary_table(summary))
    print(f"run manifest: {summary.manifest}")
