"""`dfdetect evaluate`: a model measured on crop sets (`--crops`, the evaluate stage's
`dfdetect.evaluate.evaluation.evaluate`) or on labelled media files (`--media`, scanned by the scan stage
and measured by `dfdetect.evaluate.media`: `recipes.media_evaluation`). The verb lives with the recipes
because its `--media` form chains two stages, which a stage may not do."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.evaluation import DEFAULT_AGGREGATIONS, evaluate
from dfdetect.evaluate.fairness import GroupsRequest, parse_bins
from dfdetect.evaluate.report import disparity_text, interval
from dfdetect.model.scoring import ALL_SPLITS
from dfdetect.recipes.media_evaluation import evaluate_media
from dfdetect.records import SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model.onnx from `dfdetect export` or a .ckpt from `dfdetect fit`")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--crops", nargs="+", help="one or more crops directories (`dfdetect extract`)")
    source.add_argument("--media", default=None,
                        help="labelled media CSV (columns path,label and optional group,dataset,pair): the files are "
                             "scanned as `dfdetect scan` would (the scan is kept in OUT/scan.jsonl and resumed)")
    parser.add_argument("--name", nargs="+", default=None, help="a name per crops directory (default: its datasets)")
    parser.add_argument("--index", nargs="+", default=None,
                        help="index.parquet per crops directory (or one for all): adds the per-compression breakdown")
    parser.add_argument("--out", required=True,
                        help="output directory (scores.parquet or scores.csv, metrics.json, report.html)")
    parser.add_argument("--frames", type=int, default=None,
                        help="--media: frames sampled per video (default: the model contract's)")
    parser.add_argument("--split", default="test", choices=[*SPLITS, ALL_SPLITS],
                        help="rows to evaluate (default test)")
    parser.add_argument("--aggregations", default=",".join(DEFAULT_AGGREGATIONS),
                        help="video aggregation rules to compare, comma-separated (e.g. mean,topk_mean:k=5)")
    parser.add_argument("--robustness", action="store_true",
                        help="also score the crops under JPEG, blur, noise and downscaling at 4 levels each")
    parser.add_argument("--calibration", default=None,
                        help="calibration.json to apply instead of the calibration and thresholds in the model")
    parser.add_argument("--model-card", action="store_true", help="also write model_card.md")
    parser.add_argument("--groups", default=None,
                        help="fairness report: CSV of attributes per person (one row each, matched to the crops' "
                             "group), e.g. dfdetect/sample_data/london_faces/attributes.csv")
    parser.add_argument("--by", nargs="+", default=None,
                        help="attribute column(s) to compare groups by; COL,COL compares their combinations "
                             "(e.g. --by face_gender face_eth face_gender,face_eth)")
    parser.add_argument("--groups-key", default=None, help="the person column of --groups (default: its first)")
    parser.add_argument("--bins", nargs="+", default=[],
                        help="band a numeric attribute at these edges, e.g. face_age=30,40 (<30, 30–39, ≥40)")


def run(args: argparse.Namespace) -> None:
    if args.media:
        run_media(args)
        return
    aggregations = [rule.strip() for rule in args.aggregations.split(",") if rule.strip()]
    if bool(args.groups) != bool(args.by):
        raise DfdetectError("bad_config", "--groups and --by go together", None,
                            "give the attributes file and the column(s) to compare, e.g. --by face_gender")
    groups = (GroupsRequest(Path(args.groups), tuple(args.by), args.groups_key, parse_bins(args.bins))
              if args.groups else None)
    metrics = evaluate(args.model, args.crops, args.out, names=args.name, split=args.split, aggregations=aggregations,
                       with_robustness=args.robustness, calibration=args.calibration, indexes=args.index,
                       write_model_card=args.model_card, groups=groups)
    print(f"evaluated {metrics['model']['name']} on split {args.split!r} "
          f"(temperature {metrics['calibration']['temperature']:.4g}, bias {metrics['calibration']['bias']:+.4g} "
          f"from {metrics['calibration']['source']})")
    print(f"{'set':24}{'frames':>8}{'frame AUC':>11}{'videos':>8}{'video AUC':>11}{'95 % CI':>15}{'video EER':>11}")
    for name, result in metrics["sets"].items():
        frame, video = result["frame"], result["video"]
        print(f"{name:24}{frame['n']:>8}{_cell(frame['auc']):>11}{video['n']:>8}{_cell(video['auc']):>11}"
              f"{interval(video['auc_ci95']):>15}{_cell(video['eer']):>11}")
    for name, result in metrics["sets"].items():
        if result["video"].get("auc_ci95_note"):
            print(f"{name}: video AUC interval {result['video']['auc_ci95_note']}")
    if "fairness" in metrics:
        print_fairness(metrics["fairness"])
    if metrics["skipped_crops"]:
        print(f"{metrics['skipped_crops']} unreadable crops skipped")
    print(f"wrote {Path(args.out) / 'report.html'}")


def run_media(args: argparse.Namespace) -> None:
    if not args.model.endswith(".onnx"):
        raise DfdetectError("bad_config", "--media scans with an ONNX model", args.model,
                            "export the checkpoint first: dfdetect export --checkpoint CKPT --out model.onnx")
    metrics = evaluate_media(args.media, args.model, args.out, frames=args.frames)
    print(f"evaluated {metrics['model']['name']} on {metrics['files']} labelled files "
          f"({metrics['scored']} scored; unscored: {metrics['unscored'] or 'none'})")
    print(f"{'part':28}{'files':>7}{'fake':>6}{'real':>6}{'AUC':>8}{'95 % CI (groups)':>18}  note")
    parts = {"all": metrics["overall"], **{f"dataset {k}": v for k, v in metrics["per_dataset"].items()}}
    for name, block in parts.items():
        print(f"{name:28}{block['n']:>7}{block['n_fake']:>6}{block['n_real']:>6}{_cell(block['auc']):>8}"
              f"{interval(block['auc_ci95']):>18}  {block['note']}")
    for name, block in metrics["pairs"].items():
        print(f"fakes above their real ({name}): {block['fake_above_real']:.2f} of {block['pairs']}")
    print(f"wrote {Path(args.out) / 'report.html'}")


def print_fairness(fairness: dict) -> None:
    print(f"\nfairness at {fairness['threshold_name']} = {fairness['threshold']:.4f} (95 % intervals resample people)")
    for set_name, reports in fairness["sets"].items():
        for report in reports:
            print(f"{set_name} by {' × '.join(report['by'])}:")
            print(f"  {'group':28}{'people':>7}{'reals':>7}{'fakes':>7}{'AUC':>7}{'FPR':>7}{'95 % CI':>13}"
                  f"{'FNR':>7}{'95 % CI':>13}")
            for row in report["groups"]:
                flag = "  (too small)" if row["too_small"] else ""
                print(f"  {row['group']:28}{row['people']:>7}{row['n_real']:>7}{row['n_fake']:>7}"
                      f"{_cell(row['auc']):>7}{_cell(row['fpr']):>7}{interval(row['fpr_ci95']):>13}"
                      f"{_cell(row['fnr']):>7}{interval(row['fnr_ci95']):>13}{flag}")
            print(f"  largest ratio — {disparity_text(report)}")
            for warning in report["warnings"]:
                print(f"  warning: {warning}")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
