"""`dfdetect review export | import`: the human review queue and the verdicts that come back from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfdetect.model.contract import TRIAGES
from dfdetect.review.queue import DEFAULT_INCLUDE, export_queue, scan_model_path
from dfdetect.review.verdicts import import_verdicts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="review_command", metavar="COMMAND", required=True)
    export = sub.add_parser("export", help="write queue.csv and index.html (a self-contained gallery, verdict form)")
    export.add_argument("results", help="results file of `dfdetect scan` (.jsonl/.csv/.parquet)")
    export.add_argument("--out", required=True, help="folder for queue.csv and index.html")
    export.add_argument("--include", nargs="+", default=list(DEFAULT_INCLUDE), choices=TRIAGES,
                        help="decisions to queue (default: review fake)")
    export.add_argument("--limit", type=int, default=None, help="at most this many files, the most uncertain")
    export.add_argument("--explain", action="store_true",
                        help="draw an occlusion heatmap for each queued face the scan drew none for (as scan --explain "
                             "does; about 0.5 s per face for the starter on 2 CPU cores)")
    export.add_argument("--model", default=None,
                        help="with --explain: the model.onnx to explain (default: the one the scan's manifest names)")
    imported = sub.add_parser("import", help="merge verdicts.csv files into a labelled index for extract/fit")
    imported.add_argument("verdicts", nargs="+", help="verdicts.csv saved from the gallery")
    imported.add_argument("--out", required=True,
                          help="labelled index to write or update (e.g. reviewed.parquet); the verdict log goes "
                               "beside it as <name>.verdicts.parquet")
    imported.add_argument("--split", default="train", help="split of the labelled files (default: train)")


def run(args: argparse.Namespace) -> int:
    if args.review_command == "export":
        explain_model = (args.model or scan_model_path(Path(args.results))) if args.explain else None
        items = export_queue(args.results, args.out, include=args.include, limit=args.limit,
                             explain_model=explain_model)
        counts = {t: sum(i.triage == t for i in items) for t in args.include}
        shown = ", ".join(f"{n} {t}" for t, n in counts.items())
        print(f"review queue: {len(items)} files ({shown}), most uncertain first")
        print(f"  open {Path(args.out) / 'index.html'} in a browser; table: {Path(args.out) / 'queue.csv'}")
        return 0
    report = import_verdicts(args.verdicts, args.out, split=args.split)
    print(f"imported {report.new_verdicts} new verdicts ({report.repeated} already in the log {report.log})")
    print(f"labelled index {report.index}: {report.labelled['real']} real, {report.labelled['fake']} fake")
    for conflict in report.conflicts:
        print(f"  conflict, left out of the index until a reviewer revises: {conflict.describe()}")
    for path in report.revised:
        print(f"  revised by its reviewer (the latest verdict counts, the earlier one stays in the log): {path}")
    for path in report.undecided:
        print(f"  only 'unsure' verdicts, not labelled: {path}")
    for path in report.missing:
        print(f"  labelled but no longer readable media, left out: {path}")
    return 1 if report.conflicts else 0
