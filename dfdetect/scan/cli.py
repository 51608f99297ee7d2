"""`dfdetect scan PATH... --model model.onnx --out results.jsonl`: the CLI face of scan_paths."""

from __future__ import annotations

import argparse
import logging

from dfdetect.scan.pipeline import scan_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="image/video files or directories (searched recursively)")
    parser.add_argument("--model", required=True, help="ONNX model from `dfdetect export`")
    parser.add_argument("--out", required=True, help="results file (JSON Lines, one record per input file)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where ONNX Runtime runs (default: the best available)")
    parser.add_argument("--batch-size", type=int, default=32, help="face crops per inference batch (default 32)")
    parser.add_argument("--detector", default=None, help="face detector (default: the one named in the model contract)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames sampled per video (default: the contract's frames_per_video)")
    parser.add_argument("--resume", action="store_true",
                        help="append to an existing --out, skipping files already recorded (same path, size, mtime)")
    parser.add_argument("--details", action="store_true", help="also record every face's score (frame_scores)")


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = scan_paths(args.paths, args.model, args.out, device=args.device, batch_size=args.batch_size,
                         detector=args.detector, frames=args.frames, resume=args.resume, details=args.details)
    skipped = f", {summary.skipped} skipped (already recorded)" if summary.skipped else ""
    print(f"scanned {summary.scanned} files in {summary.seconds:.1f} s ({summary.files_per_second:.2f} files/s) "
          f"on {summary.providers[0]}: {summary.ok} ok, {summary.no_face} no face, {summary.error} errors, "
          f"{summary.flagged} flagged as fake{skipped} → {summary.out}")
