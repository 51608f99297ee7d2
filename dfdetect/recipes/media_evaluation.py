"""`dfdetect evaluate --media LABELLED.csv`: scan labelled files as `dfdetect scan` would, then measure.

A recipe rather than part of the evaluate stage because it chains two stages: the scanner produces the
scores (same decoding, detector, crop, batching and aggregation as a user's scan, so the number is the
one a user will see) and `dfdetect.evaluate.media` turns them into metrics. The scan's results file is
kept in the output folder and resumed, so an interrupted evaluation of a large set continues.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dfdetect import __version__
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.media import labelled_scores, media_metrics, read_media_labels, render_media_html
from dfdetect.records import file_sha256
from dfdetect.results import read_jsonl
from dfdetect.scan.pipeline import scan_paths

SCAN_RESULTS = "scan.jsonl"
SCANNED_WITH = "scan.model.json"  # which model file (by content) the kept scan is of


def check_resumable(out: Path, model: str | Path) -> None:
    """A kept scan is resumed only with the model file it was made with: a rebuilt model at the same path
    would otherwise be credited with its predecessor's scores. Records the model's sha256 for next time."""
    stamp, sha256 = out / SCANNED_WITH, file_sha256(model)
    if (out / SCAN_RESULTS).exists():
        made_with = json.loads(stamp.read_text())["sha256"] if stamp.exists() else None
        if made_with != sha256:
            raise DfdetectError("bad_config", f"{SCAN_RESULTS} here holds scores of another model "
                                f"(sha256 {str(made_with)[:12]}, not {sha256[:12]})", out,
                                "give a new --out, or delete the folder to start over")
    stamp.write_text(json.dumps({"model": str(model), "sha256": sha256}) + "\n")


def evaluate_media(labels_csv: str | Path, model: str | Path, out: str | Path, *, frames: int | None = None,
                   detector: str | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Scan every file listed in `labels_csv` with `model` into `out/scan.jsonl` (resumed when present and
    made with the same model file),
    write `out/metrics.json` and `out/report.html`, and return the metrics."""
    out = Path(out)
    labels = read_media_labels(labels_csv)
    out.mkdir(parents=True, exist_ok=True)
    results = out / SCAN_RESULTS
    check_resumable(out, model)
    summary = scan_paths(labels["path"].tolist(), model, results, frames=frames, detector=detector, workers=workers,
                         resume=results.exists(), progress=progress)
    records = pd.DataFrame(read_jsonl(results))  # the journal reader: a torn last line is skipped
    table = labelled_scores(labels, records)
    manifest = json.loads(Path(summary.manifest).read_text())
    contract = manifest["model"]["contract"]
    metrics = media_metrics(table, contract["thresholds"], contract["default_threshold"])
    metrics["model"] = {"name": Path(manifest["model"]["path"]).name, "path": manifest["model"]["path"],
                        "sha256": manifest["model"]["sha256"]}
    metrics["labels"] = str(Path(labels_csv).resolve())
    metrics["toolkit_version"] = __version__
    table.to_csv(out / "scores.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.html").write_text(render_media_html(metrics))
    return metrics
