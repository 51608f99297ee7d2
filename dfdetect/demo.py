"""`dfdetect demo` / `make demo`: the whole pipeline on the bundled London faces, end to end.

Every stage is the real one, called the way its CLI verb calls it: fakes are made from consented
real faces (self-blended images and identity swaps), indexed, cropped by the face detector, used to
fine-tune an ImageNet-pretrained EfficientNet-Lite0 for a few CPU minutes, exported to ONNX with its
contract, and a folder of held-out people (images, short H.264 videos and one corrupt file) is
scanned. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dfdetect.records import INDEX_COLUMNS, write_rows

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo_cpu.yaml"
TRAIN_PEOPLE = 70
HELD_OUT_PEOPLE = 6


def _best_checkpoint(fit_dir: Path) -> Path:
    candidates = [p for p in fit_dir.rglob("*.ckpt") if p.name != "last.ckpt"]
    if not candidates:
        raise RuntimeError(f"training wrote no checkpoint under {fit_dir}")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def run_demo(out: Path, train_people: int = TRAIN_PEOPLE, held_out_people: int = HELD_OUT_PEOPLE,
             extra_fit_args: list[str] | None = None) -> dict:
    from dfdetect.datasets import build_index
    from dfdetect.datasets.checks import summarize
    from dfdetect.export import export_checkpoint
    from dfdetect.extract import ExtractOptions, extract
    from dfdetect.sample_data import london_identity, london_images
    from dfdetect.sample_data.build import build_labelled_faces
    from dfdetect.scan.pipeline import scan_paths
    from dfdetect.train.cli import run_lightning

    started = time.time()
    out = out.absolute()  # scan records hold absolute paths
    out.mkdir(parents=True, exist_ok=True)
    people = [london_identity(p) for p in london_images()]
    train_ids, held_out_ids = people[:train_people], people[-held_out_people:]

    print(f"[1/6] making real and fake faces of {len(train_ids)} people")
    build_labelled_faces(out / "faces", train_ids, seed=0)
    print("[2/6] indexing")
    index = build_index("folder", out / "faces")
    write_rows(index.rows, out / "index.parquet", INDEX_COLUMNS)
    print(summarize(index.rows))
    print("[3/6] extracting face crops")
    summary = extract(out / "index.parquet", out / "crops", ExtractOptions(size=128), workers=1)
    print(f"      {summary['faces']} crops, {summary['no_face_frames']} images without a face")
    print(f"[4/6] fine-tuning EfficientNet-Lite0 ({CONFIG.name})")
    run_lightning(["fit", "--config", str(CONFIG), "--data.crops", str(out / "crops"),
                   "--trainer.default_root_dir", str(out / "fit"), *(extra_fit_args or [])])
    checkpoint = _best_checkpoint(out / "fit")
    print(f"[5/6] exporting {checkpoint.name} to ONNX")
    export_checkpoint(checkpoint, out / "model.onnx", crops=out / "crops")
    print(f"[6/6] scanning {len(held_out_ids)} held-out people (images, videos, one corrupt file)")
    scan_dir = out / "scan_input"
    build_labelled_faces(scan_dir, held_out_ids, seed=1, videos=True)
    (scan_dir / "corrupt_upload.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated upload")
    results_path = out / "results.jsonl"
    results_path.unlink(missing_ok=True)
    scan_paths([scan_dir], out / "model.onnx", results_path)
    return _report(results_path, scan_dir, time.time() - started)


def _report(results_path: Path, scan_dir: Path, seconds: float) -> dict:
    records = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    print(f"\n{'file':<34} {'truth':<5} {'status':<8} {'p(fake)':>8}  decision")
    correct = scored = 0
    for record in sorted(records, key=lambda r: r["path"]):
        relative = Path(record["path"]).relative_to(scan_dir)
        truth = relative.parts[0] if len(relative.parts) > 1 else "-"
        probability = record.get("probability")
        if record["status"] == "ok":
            decision = "FAKE" if record["decision"] else "real"
            scored += 1
            correct += (decision == "FAKE") == (truth == "fake")
            shown = f"{probability:8.3f}  {decision}"
        else:
            shown = f"{'-':>8}  {record.get('error_code') or record['status']}"
        print(f"{relative.name:<34} {truth:<5} {record['status']:<8} {shown}")
    accuracy = correct / scored if scored else 0.0
    print(f"\n{scored} files scored, {correct} correct ({accuracy:.0%}) at the model's default threshold; "
          f"{len(records) - scored} not scored. {seconds:.0f} s in all.\nresults: {results_path}")
    return {"records": len(records), "scored": scored, "accuracy": accuracy, "seconds": seconds}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="folder for everything the demo makes")


def run(args: argparse.Namespace) -> None:
    run_demo(Path(args.out))
