"""`dfdetect index`: a dataset layout on disk → index.parquet, with a summary of what was found."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dfdetect.datasets import INDEXERS, build_index
from dfdetect.datasets.checks import describe_missing, split_warnings, summarize, write_missing_list
from dfdetect.errors import DfdetectError
from dfdetect.records import INDEX_COLUMNS, write_rows

# command-line destination → indexer keyword, for the flags whose names differ
_OPTION_NAMES = {"json": "json_path"}
_OPTIONAL_FLAGS = ("label", "compression", "methods", "split", "parts", "label_map", "val_fraction", "test_fraction",
                   "json", "json_splits", "unit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=sorted(INDEXERS), help="the dataset layout")
    parser.add_argument("--root", required=True, type=Path,
                        help="dataset folder (for --dataset csv: the CSV file)")
    parser.add_argument("--out", required=True, type=Path, help="index.parquet to write")
    parser.add_argument("--label", choices=("real", "fake"), help="folder: label every file with this")
    parser.add_argument("--compression", help="ffpp / deepfakebench: raw, c23 (default) or c40")
    parser.add_argument("--methods", nargs="+", help="ffpp: manipulation methods to index (default: all present)")
    parser.add_argument("--split", choices=("official", "identity", "hash"),
                        help="celebdf: official or identity; deepfakebench: official or hash")
    parser.add_argument("--parts", nargs="+", help="dfdc: train part numbers to index (default: all)")
    parser.add_argument("--label-map", dest="label_map",
                        help='deepfakebench: JSON object (or a .json file) of label name → real|fake, e.g. '
                             '\'{"UADFV_Real": "real"}\'')
    parser.add_argument("--val-fraction", dest="val_fraction", type=float, help="share of groups for val (0.1)")
    parser.add_argument("--test-fraction", dest="test_fraction", type=float,
                        help="share of groups for test where no official test set applies (0.1)")
    parser.add_argument("--json", type=Path, help="deepfakebench: the dataset JSON")
    parser.add_argument("--json-splits", dest="json_splits", nargs="+", help="deepfakebench: JSON splits to import")
    parser.add_argument("--unit", choices=("frame", "video"), help="deepfakebench: a row per frame or per video")


def parse_label_map(text: str) -> dict[str, str | int]:
    """Inline JSON, or the path of a JSON file, holding {label name: real|fake|0|1}."""
    source = Path(text)
    try:
        mapping = json.loads(source.read_text(encoding="utf-8") if source.suffix == ".json" else text)
    except (OSError, ValueError) as exc:
        raise DfdetectError("bad_config", f"--label-map is not readable JSON ({exc.__class__.__name__})",
                            hint='pass e.g. \'{"UADFV_Real": "real", "UADFV_Fake": "fake"}\'') from exc
    if not isinstance(mapping, dict):
        raise DfdetectError("bad_config", "--label-map must be a JSON object", hint='e.g. \'{"FF-real": "real"}\'')
    return mapping


def run(args: argparse.Namespace) -> None:
    options = {_OPTION_NAMES.get(flag, flag): getattr(args, flag) for flag in _OPTIONAL_FLAGS
               if getattr(args, flag, None) is not None}
    if "label_map" in options:
        options["label_map"] = parse_label_map(options["label_map"])
    index = build_index(args.dataset, args.root, **options)
    write_rows(index.rows, args.out, INDEX_COLUMNS)
    print(summarize(index.rows))
    for note in index.notes:
        print(f"note: {note}")
    if index.missing:
        print(describe_missing(index.missing, write_missing_list(index.missing, args.out)))
    print(f"leakage check: passed ({len({row.group for row in index.rows})} groups)")
    for warning in split_warnings(index.rows):
        print(f"warning: {warning}")
    print(f"wrote {len(index.rows)} rows to {args.out}")
