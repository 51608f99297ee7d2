"""`evaluate()`: score crop sets with a model and write scores.parquet, metrics.json and report.html.

Probabilities use the calibration (temperature, bias) and thresholds the model will ship with: those of
`--calibration` when given (to judge a calibration before exporting it), else the model contract's.
Every number is computed from raw logits in float64, on the same units the scanner reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from dfdetect import __version__
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.fairness import GroupsRequest, fairness_section
from dfdetect.evaluate.plots import (
    fairness_figure,
    histogram_figure,
    reliability_figure,
    robustness_figure,
    roc_figure,
)
from dfdetect.evaluate.report import model_card, render_html
from dfdetect.evaluate.robustness import SWEEPS, degradations
from dfdetect.evaluate.summary import (
    breakdown,
    compare_aggregations,
    cross_dataset_matrix,
    robustness,
    set_metrics,
    source_logits,
)
from dfdetect.metrics import expected_calibration_error, log_loss, reliability_bins
from dfdetect.model.aggregate import AGGREGATIONS, parse_rule
from dfdetect.model.calibration import read_calibration
from dfdetect.model.contract import LogitScaling
from dfdetect.model.scoring import CLEAN, ScoringModel, load_crop_sets, load_scoring_model, score_crops

DEFAULT_AGGREGATIONS = ("mean", "median", "max", "topk_mean", "confident")


def decision_rules(model: ScoringModel, calibration_path: str | Path | None) -> dict:
    """Temperature, bias, thresholds and the default threshold's name, and where they came from."""
    if calibration_path is not None:
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
    for set_name, reports in metrics.get("fairness", {}).get("sets", {}).items():
        for report in reports:
            figures[f"Fairness: {set_name} by {' × '.join(report['by'])}"] = fairness_figure(report)
    return figures


def evaluate(model_path: str | Path, crops_dirs: Sequence[str | Path], out: str | Path,
             names: Sequence[str] | None = None, split: str = "test",
             aggregations: Sequence[str] = DEFAULT_AGGREGATIONS, with_robustness: bool = False,
             calibration: str | Path | None = None, indexes: Sequence[str | Path] | None = None,
             write_model_card: bool = False, groups: GroupsRequest | None = None) -> dict:
    """Run the whole evaluation into `out` and return the metrics it wrote; `groups` adds the fairness
    report (per-group rates at the default threshold)."""
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
    if groups is not None:
        default = rules["default_threshold"]
        metrics["fairness"] = fairness_section(crops, model.contract.aggregation, rules_scaling(rules), default,
                                               float(rules["thresholds"][default]), groups)

    out.mkdir(parents=True, exist_ok=True)
    table = crops.assign(probability=rules_scaling(rules).probability(crops["logit"]), model_sha256=model.sha256)
    table.to_parquet(out / "scores.parquet", index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.html").write_text(render_html(metrics, build_figures(crops, metrics)))
    if write_model_card:
        (out / "model_card.md").write_text(model_card(model.contract, metrics))
    return metrics
