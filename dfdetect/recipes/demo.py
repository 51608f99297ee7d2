"""`dfdetect demo` / `make demo`: the toolkit at work, with nothing to download.

By default it scans the bundled sample folder — real faces of people the starter model never saw in
training, self-blended and identity-swapped fakes of them, each also as a short H.264 video, and one
corrupt upload — with the shipped starter model, prints a table and the summary, and writes
`results.jsonl` and a self-contained `report.html`.

`--train` instead runs every stage from scratch on the bundled faces: make fakes, index, extract,
fine-tune an ImageNet-pretrained EfficientNet-Lite0 for a few CPU minutes, export, scan.
"""

from __future__ import annotations

import argparse
import html
import json
import time
from pathlib import Path

import numpy as np
from scipy.special import logit

from dfdetect.datasets import build_index
from dfdetect.datasets.checks import summarize
from dfdetect.evaluate.plots import histogram_figure, roc_figure
from dfdetect.evaluate.report import STYLE, embedded_png, fmt, html_table
from dfdetect.export import export_checkpoint
from dfdetect.extract import extract
from dfdetect.media.provenance import evidence_summary
from dfdetect.metrics import rates_at_threshold, roc_auc
from dfdetect.model.crops import ExtractOptions
from dfdetect.model.resources import default_model, recipe_path
from dfdetect.recipes.labelled_faces import build_labelled_faces
from dfdetect.records import INDEX_COLUMNS, write_rows
from dfdetect.results import read_jsonl
from dfdetect.review.queue import export_queue
from dfdetect.sample_data import SAMPLE_DIR, london_identity, london_images
from dfdetect.scan.pipeline import scan_paths
from dfdetect.train.cli import run_lightning

DEMO_SCAN_DIR = SAMPLE_DIR / "demo_scan"
TRAIN_CONFIG = recipe_path("demo_cpu")
TRAIN_PEOPLE = 70
HELD_OUT_PEOPLE = 6


def truth_of(path: Path, scan_dir: Path) -> str:
    """'real' / 'fake' from the folder a sample sits in, '-' for files outside both."""
    parts = path.relative_to(scan_dir).parts
    return parts[0] if len(parts) > 1 and parts[0] in ("real", "fake") else "-"


def run_demo(out: Path, model: Path | None = None, scan_dir: Path = DEMO_SCAN_DIR) -> dict:
    """Scan `scan_dir` with the starter model (or `model`) and report."""
    started = time.time()
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    model = model or default_model()
    results_path = out / "results.jsonl"
    results_path.unlink(missing_ok=True)
    print(f"scanning {scan_dir} with {model}")
    scan_paths([scan_dir], model, results_path)
    return report(results_path, scan_dir, model, out / "report.html", time.time() - started)


def report(results_path: Path, scan_dir: Path, model: Path, html_path: Path, seconds: float) -> dict:
    """Print the per-file table and the summary; write the HTML report beside the results."""
    records = sorted(read_jsonl(results_path), key=lambda r: r["path"])
    rows = []
    for record in records:
        path = Path(record["path"])
        truth = truth_of(path, scan_dir)
        if record["status"] == "ok":
            call = "FAKE" if record["decision"] else "real"
            rows.append((path.name, truth, record["status"], record["probability"], call, record["faces_scored"],
                         evidence_summary(record.get("provenance"))))
        else:
            rows.append((path.name, truth, record["status"], None, record.get("error_code") or "-",
                         record["faces_scored"], ""))
    print(f"\n{'file':<30} {'truth':<5} {'status':<8} {'p(fake)':>8}  {'decision':<16} faces")
    for name, truth, status, probability, call, faces, _evidence in rows:
        shown = f"{probability:8.3f}" if probability is not None else f"{'-':>8}"
        print(f"{name:<30} {truth:<5} {status:<8} {shown}  {call:<16} {faces}")

    scored = [(r[1], r[3], r[4]) for r in rows if r[3] is not None and r[1] in ("real", "fake")]
    labels = np.array([truth == "fake" for truth, _, _ in scored], int)
    probs = np.array([p for _, p, _ in scored], float)
    threshold = next((r["threshold"] for r in records if r.get("threshold") is not None), 0.5)
    threshold_name = next((r["threshold_name"] for r in records if r.get("threshold_name")), "default")
    rates = rates_at_threshold(labels, probs, threshold) if len(scored) else {}
    auc = roc_auc(labels, probs) if len(set(labels.tolist())) == 2 else None
    counts = {status: sum(r[2] == status for r in rows) for status in ("ok", "no_face", "error")}
    flagged = sum(r[4] == "FAKE" for r in rows)
    summary = {"files": len(rows), **counts, "flagged": flagged, "auc": auc, "accuracy": rates.get("acc"),
               "tpr": rates.get("tpr"), "fpr": rates.get("fpr"), "threshold": threshold,
               "threshold_name": threshold_name, "seconds": round(seconds, 1), "results": str(results_path),
               "report": str(html_path)}
    auc_text = f"{auc:.3f}" if auc is not None else "n/a"
    print(f"\n{len(rows)} files: {counts['ok']} ok, {counts['no_face']} without a face, {counts['error']} errors, "
          f"{flagged} flagged as fake at {threshold_name} = {threshold:.3f}")
    if rates:
        print(f"on the labelled samples: AUC {auc_text}, accuracy {rates['acc']:.0%}, "
              f"fakes caught {rates['tpr']:.0%}, reals flagged {rates['fpr']:.0%}")
    print(f"{seconds:.0f} s in all\nresults: {results_path}\nreport:  {html_path}")
    html_path.write_text(render_report(rows, summary, model, labels, probs))
    queue = export_queue(results_path, html_path.parent / "review")
    summary["review_queue"] = str(html_path.parent / "review" / "index.html")
    print(f"review:  {summary['review_queue']} ({len(queue)} files for a person to check, most uncertain first)")
    return summary


def render_report(rows: list[tuple], summary: dict, model: Path, labels: np.ndarray, probs: np.ndarray) -> str:
    figures = {}
    if len(set(labels.tolist())) == 2:
        figures["ROC (all labelled samples)"] = roc_figure({"demo": (labels, probs)}, "ROC")
        figures["scores of reals and fakes"] = histogram_figure(
            {"demo": (labels, np.array([logit(p) for p in probs]))}, float(logit(summary["threshold"])), "scores")
    headline = [[summary["files"], summary["ok"], summary["no_face"], summary["error"], summary["flagged"],
                 summary["auc"], summary["accuracy"], summary["tpr"], summary["fpr"]]]
    parts = [
        "<h1>dfdetect demo scan</h1>",
        f"<p class='note'>model {html.escape(str(model))}; decision threshold "
        f"{html.escape(summary['threshold_name'])} = {summary['threshold']:.4f}; {summary['seconds']} s.</p>",
        html_table(("files", "ok", "no face", "errors", "flagged", "AUC", "accuracy", "fakes caught", "reals flagged"),
                   headline),
        "<h2>Files</h2>",
        "<p class='note'>Provenance: what the file itself declares (C2PA manifest, invisible watermark), read "
        "beside the detector's score and never merged into it.</p>",
        html_table(("file", "truth", "status", "p(fake)", "decision", "faces", "provenance"),
                   [[name, truth, status, fmt(p), call, faces, evidence]
                    for name, truth, status, p, call, faces, evidence in rows]),
        *(f"<h2>{html.escape(caption)}</h2>{embedded_png(png, caption)}" for caption, png in figures.items()),
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>dfdetect demo</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def run_training_demo(out: Path, train_people: int = TRAIN_PEOPLE, held_out_people: int = HELD_OUT_PEOPLE) -> dict:
    """Every stage from scratch on the bundled faces, then a scan of held-out people."""
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
    print(f"[4/6] fine-tuning EfficientNet-Lite0 ({TRAIN_CONFIG.name})")
    checkpoint = run_lightning(["fit", "--config", str(TRAIN_CONFIG), "--data.crops", str(out / "crops"),
                                "--trainer.default_root_dir", str(out / "fit")])
    if checkpoint is None:
        raise RuntimeError(f"training wrote no checkpoint under {out / 'fit'}")
    print(f"[5/6] exporting {checkpoint.name} to ONNX")
    export_checkpoint(checkpoint, out / "model.onnx", crops=out / "crops")
    print(f"[6/6] scanning {len(held_out_ids)} held-out people (images, videos, one corrupt file)")
    scan_dir = out / "scan_input"
    build_labelled_faces(scan_dir, held_out_ids, seed=1, videos=True)
    (scan_dir / "corrupt_upload.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated upload")
    results_path = out / "results.jsonl"
    results_path.unlink(missing_ok=True)
    scan_paths([scan_dir], out / "model.onnx", results_path)
    return report(results_path, scan_dir, out / "model.onnx", out / "report.html", time.time() - started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="folder for the results and the report")
    parser.add_argument("--model", default=None, help="ONNX model to scan with (default: the starter model)")
    parser.add_argument("--train", action="store_true",
                        help="run every stage from scratch instead (make fakes, index, extract, fit, export, scan)")


def run(args: argparse.Namespace) -> None:
    if args.train:
        summary = run_training_demo(Path(args.out))
    else:
        summary = run_demo(Path(args.out), Path(args.model) if args.model else None)
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
