"""`dfdetect evaluate`: score crop sets with a model and write scores.parquet, metrics.json and report.html.

Probabilities use the calibration (temperature, bias) and thresholds the model will ship with: those of
`--calibration` when given (to judge a calibration before exporting it), else the model contract's.
Every number is computed from raw logits in float64, on the same units the scanner reports.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from dfdetect import __version__
from dfdetect.contract import LogitScaling
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.metrics import expected_calibration_error, log_loss, reliability_bins
from dfdetect.evaluate.plots import histogram_figure, reliability_figure, robustness_figure, roc_figure
from dfdetect.evaluate.report import interval, model_card, render_html
from dfdetect.evaluate.robustness import SWEEPS, degradations
from dfdetect.evaluate.scoring import ALL_SPLITS, CLEAN, ScoringModel, load_crop_sets, load_scoring_model, score_crops
from dfdetect.evaluate.summary import (
    breakdown,
    compare_aggregations,
    cross_dataset_matrix,
    robustness,
    set_metrics,
    source_logits,
)
from dfdetect.records import SPLITS
from dfdetect.scan.aggregate import AGGREGATIONS, parse_rule

DEFAULT_AGGREGATIONS = ("mean", "median", "max", "topk_mean", "confident")


def decision_rules(model: ScoringModel, calibration_path: str | Path | None) -> dict:
    """Temperature, bias, thresholds and the default threshold's name, and where they came from."""
    if calibration_path is not None:
        from dfdetect.calibrate import read_calibration

        calibration = read_calibration(calibration_path)
        return {"temperature": calibration.temperature, "bias": calibration.bias,
                "thresholds": dict(calibration.thresholds), "default_threshold": calibration.default_threshold,
                "source": str(calibration_path)}
    contract = model.contract
    return {"temperature": contract.temperature, "bias": contract.logit_bias, "thresholds": dict(contract.thresholds),
            "default_threshold": contract.default_threshold, "source": "model contract"}


def rules_scaling(rules: dict) -> LogitScaling:
    return LogitScaling(rules["temperature"], rules["bias"])


def calibration_effect(crops: pd.DataFrame, rule: str, scaling: LogitScaling) -> dict:
    """Video-level reliability of the raw sigmoid and of the model's calibration, on the evaluated
    data: whether a calibration fitted on validation still holds on this split."""
    units = source_logits(crops, rule, scaling)
    labels, logits = units["label"].to_numpy(), units["logit"].to_numpy(np.float64)
    before, after = expit(logits), scaling.probability(logits)
    return {
        "ece_before": expected_calibration_error(labels, before),
        "ece_after": expected_calibration_error(labels, after),
        "log_loss_before": log_loss(labels, before),
        "log_loss_after": log_loss(labels, after),
        "reliability_before": reliability_bins(labels, before),
        "reliability_after": reliability_bins(labels, after),
    }


def compute_metrics(model: ScoringModel, crops: pd.DataFrame, rules: dict, split: str, aggregations: Sequence[str],
                    scores: pd.DataFrame | None = None) -> dict:
    """metrics.json's content. `crops` holds a finite `logit` per row; `scores`, when given, holds the
    robustness conditions' logits aligned with it."""
    contract = model.contract
    scaling, thresholds = rules_scaling(rules), rules["thresholds"]
    primary = contract.aggregation
    per_set = {}
    for name, rows in crops.groupby("set", sort=False):
        per_set[name] = {**set_metrics(rows, primary, scaling, thresholds, with_interval=True),
                         "breakdown": breakdown(rows, primary, scaling),
                         "aggregations": compare_aggregations(rows, aggregations, scaling, thresholds,
                                                              rules["default_threshold"])}
    return {
        "toolkit_version": __version__,
        "model": {"name": model.path.name, "path": str(model.path.resolve()), "kind": model.kind,
                  "sha256": model.sha256, "backbone": contract.backbone, "training_data": contract.training_data},
        "split": split,
        "aggregation": primary,
        "calibration": {**rules, **calibration_effect(crops, primary, scaling)},
        "sets": per_set,
        "cross_dataset": cross_dataset_matrix(contract.training_data.get("datasets", []), per_set),
        "robustness": robustness(crops, scores, SWEEPS, primary, scaling) if scores is not None else {},
    }


def build_figures(crops: pd.DataFrame, metrics: dict) -> dict[str, bytes]:
    scaling, primary = rules_scaling(metrics["calibration"]), metrics["aggregation"]
    frames, videos = {}, {}
    for name, rows in crops.groupby("set", sort=False):
        units = source_logits(rows, primary, scaling)
        frames[name] = (rows["label"].to_numpy(), scaling.calibrated(rows["logit"].to_numpy()))
        videos[name] = (units["label"].to_numpy(), scaling.calibrated(units["logit"].to_numpy()))
    rules = metrics["calibration"]
    default_p = rules["thresholds"].get(rules["default_threshold"])
    threshold_logit = float(logit(default_p)) if default_p is not None and 0.0 < default_p < 1.0 else None
    figures = {
        "ROC per set (videos)": roc_figure(videos, f"videos ({primary})"),
        "ROC per set (frames)": roc_figure(frames, "frames"),
        "Score histograms, real vs fake (videos)": histogram_figure(videos, threshold_logit, "videos"),
        "Reliability before / after calibration": reliability_figure(
            rules["reliability_before"], rules["reliability_after"], scaling),
    }
    if metrics["robustness"]:
        figures["Robustness curves"] = robustness_figure(metrics["robustness"], SWEEPS)
    return figures


def evaluate(model_path: str | Path, crops_dirs: Sequence[str | Path], out: str | Path,
             names: Sequence[str] | None = None, split: str = "test",
             aggregations: Sequence[str] = DEFAULT_AGGREGATIONS, with_robustness: bool = False,
             calibration: str | Path | None = None, indexes: Sequence[str | Path] | None = None,
             write_model_card: bool = False) -> dict:
    """Run the whole evaluation into `out` and return the metrics it wrote."""
    unknown = [rule for rule in aggregations if parse_rule(rule)[0] not in AGGREGATIONS]
    if unknown:
        raise DfdetectError("bad_config", f"unknown aggregation rule(s) {unknown}", None,
                            f"choose from {sorted(AGGREGATIONS)}")
    out = Path(out)
    model = load_scoring_model(model_path)
    rules = decision_rules(model, calibration)
    crops = load_crop_sets(crops_dirs, names, split, indexes)
    scores = score_crops(model, crops, degradations(SWEEPS) if with_robustness else None)
    finite = np.isfinite(scores[CLEAN].to_numpy())
    crops, scores = crops[finite].assign(logit=scores.loc[finite, CLEAN]), scores[finite]
    if crops.empty:
        raise DfdetectError("empty_dataset", "no crop could be read", crops_dirs[0], "re-run `dfdetect extract`")
    aggregations = list(dict.fromkeys([model.contract.aggregation, *aggregations]))
    metrics = compute_metrics(model, crops, rules, split, aggregations, scores if with_robustness else None)
    metrics["skipped_crops"] = int((~finite).sum())

    out.mkdir(parents=True, exist_ok=True)
    table = crops.assign(probability=rules_scaling(rules).probability(crops["logit"]), model_sha256=model.sha256)
    table.to_parquet(out / "scores.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.html").write_text(render_html(metrics, build_figures(crops, metrics)))
    if write_model_card:
        (out / "model_card.md").write_text(model_card(model.contract, metrics))
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model.onnx from `dfdetect export` or a .ckpt from `dfdetect fit`")
    parser.add_argument("--crops", required=True, nargs="+", help="one or more crops directories (`dfdetect extract`)")
    parser.add_argument("--name", nargs="+", default=None, help="a name per crops directory (default: its datasets)")
    parser.add_argument("--index", nargs="+", default=None,
                        help="index.parquet per crops directory (or one for all): adds the per-compression breakdown")
    parser.add_argument("--out", required=True, help="output directory (scores.parquet, metrics.json, report.html)")
    parser.add_argument("--split", default="test", choices=[*SPLITS, ALL_SPLITS],
                        help="rows to evaluate (default test)")
    parser.add_argument("--aggregations", default=",".join(DEFAULT_AGGREGATIONS),
                        help="video aggregation rules to compare, comma-separated (e.g. mean,topk_mean:k=5)")
    parser.add_argument("--robustness", action="store_true",
                        help="also score the crops under JPEG, blur, noise and downscaling at 4 levels each")
    parser.add_argument("--calibration", default=None,
                        help="calibration.json to apply instead of the calibration and thresholds in the model")
    parser.add_argument("--model-card", action="store_true", help="also write model_card.md")


def run(args: argparse.Namespace) -> None:
    aggregations = [rule.strip() for rule in args.aggregations.split(",") if rule.strip()]
    metrics = evaluate(args.model, args.crops, args.out, names=args.name, split=args.split, aggregations=aggregations,
                       with_robustness=args.robustness, calibration=args.calibration, indexes=args.index,
                       write_model_card=args.model_card)
    print(f"evaluated {metrics['model']['name']} on split {args.split!r} "
          f"(temperature {metrics['calibration']['temperature']:.4g}, bias {metrics['calibration']['bias']:+.4g} "
          f"from {metrics['calibration']['source']})")
    print(f"{'set':24}{'frames':>8}{'frame AUC':>11}{'videos':>8}{'video AUC':>11}{'95 % CI':>15}{'video EER':>11}")
    for name, result in metrics["sets"].items():
        frame, video = result["frame"], result["video"]
        print(f"{name:24}{frame['n']:>8}{_cell(frame['auc']):>11}{video['n']:>8}{_cell(video['auc']):>11}"
              f"{interval(video['auc_ci95']):>15}{_cell(video['eer']):>11}")
    if metrics["skipped_crops"]:
        print(f"{metrics['skipped_crops']} unreadable crops skipped")
    print(f"wrote {Path(args.out) / 'report.html'}")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
