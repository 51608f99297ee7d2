"""From per-crop logits to the numbers in metrics.json: per set, per video, per subgroup, per
aggregation rule, across datasets and under degradation.

A "video" here is a source file: every crop of one source_path is combined by an aggregation rule
from `dfdetect.model.aggregate`, after the calibration map (temperature, bias), exactly as the scanner does, so
a video metric is what a user of `dfdetect scan` would measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.robustness import Sweep, condition_name
from dfdetect.metrics import (
    ECE_BINS,
    as_binary_arrays,
    auc_interval,
    average_precision,
    brier,
    class_counts,
    eer,
    expected_calibration_error,
    log_loss,
    rates_at_threshold,
    reliability_bins,
    roc_auc,
)
from dfdetect.model.aggregate import aggregate
from dfdetect.model.contract import LogitScaling
from dfdetect.model.scoring import CLEAN
from dfdetect.records import FAKE, REAL

IDENTITY_SCALING = LogitScaling()  # the raw sigmoid
GROUP_COLUMNS = ("set", "dataset", "method", "compression")
SUMMARY_KEYS = ("n", "n_real", "n_fake", "auc", "average_precision", "eer", "eer_threshold", "log_loss", "brier",
                "ece")


def binary_metrics(labels: ArrayLike, logits: ArrayLike, thresholds: dict[str, float],
                   scaling: LogitScaling = IDENTITY_SCALING, bins: int = ECE_BINS) -> dict:
    """Every metric of `dfdetect.metrics` for one set of logits, as a JSON-able dict.

    Probabilities are sigmoid(logit / temperature + bias), the same transform scan applies, so `thresholds`
    are read in probability space. A metric that the data cannot define (AUC on one class) is None
    and `undefined` says why, so an evaluation of e.g. a reals-only set still reports what it can.
    """
    y, z = as_binary_arrays(labels, logits)
    p = scaling.probability(z)
    n_fake, n_real = class_counts(y)
    undefined: dict[str, str] = {}
    result: dict = {"n": int(y.size), "n_fake": n_fake, "n_real": n_real, "temperature": scaling.temperature,
                    "bias": scaling.bias}

    if n_fake and n_real:
        result["auc"] = roc_auc(y, p)
        result["eer"], result["eer_threshold"] = eer(y, p)
    else:
        reason = f"needs both classes, got {n_real} real and {n_fake} fake"
        result["auc"] = result["eer"] = result["eer_threshold"] = None
        undefined.update(auc=reason, eer=reason)
    if n_fake:
        result["average_precision"] = average_precision(y, p)
    else:
        result["average_precision"] = None
        undefined["average_precision"] = "needs at least one fake"

    result["log_loss"] = log_loss(y, p)
    result["brier"] = brier(y, p)
    result["ece"] = expected_calibration_error(y, p, bins)
    result["reliability"] = reliability_bins(y, p, bins)
    result["at_threshold"] = {name: {"threshold": float(t), **rates_at_threshold(y, p, t)}
                              for name, t in thresholds.items()}
    result["undefined"] = undefined
    return result


def source_logits(crops: pd.DataFrame, rule: str, scaling: LogitScaling, logit_column: str = "logit") -> pd.DataFrame:
    """One row per source: its aggregated logit on the raw scale (raw(rule(calibrated(logits)))) and label.

    Aggregating after calibrating matters only for rules with probability cut-offs (`confident`),
    and is what scan does; mapping back keeps the result a raw logit, so the same scaling turns it
    into the scanner's probability.
    """
    mixed = crops.groupby("source_path")["label"].nunique()
    if (mixed > 1).any():
        raise DfdetectError("bad_input", f"{int((mixed > 1).sum())} sources carry both labels, e.g. "
                            f"{mixed[mixed > 1].index[0]}", hint="every crop of one source must have its label")
    scaled = scaling.calibrated(crops[logit_column].to_numpy(np.float64))
    grouped = pd.Series(scaled, index=crops.index).groupby(crops["source_path"], sort=True)
    carried = (*GROUP_COLUMNS, "label", "group")
    first = crops.groupby("source_path", sort=True)[[c for c in crops.columns if c in carried]]
    units = first.first()
    units["logit"] = grouped.apply(lambda values: float(scaling.raw(aggregate(values.to_numpy(), rule))))
    units["crops"] = grouped.size()
    return units.reset_index()


def summarise(metrics: dict) -> dict:
    """The headline numbers of a binary_metrics result, without the bins and per-threshold tables."""
    return {key: metrics[key] for key in SUMMARY_KEYS}


def set_metrics(crops: pd.DataFrame, rule: str, scaling: LogitScaling, thresholds: dict[str, float],
                with_interval: bool = False) -> dict:
    """Frame (crop) and video (source) metrics of one set of crops; `with_interval` adds the video
    AUC's 95 % bootstrap interval (see video_auc_interval)."""
    units = source_logits(crops, rule, scaling)
    video = binary_metrics(units["label"].to_numpy(), units["logit"].to_numpy(), thresholds, scaling)
    if with_interval:
        video["auc_ci95"], video["auc_ci95_note"] = video_auc_interval(units)
    return {
        "frame": binary_metrics(crops["label"].to_numpy(), crops["logit"].to_numpy(), thresholds, scaling),
        "video": video,
    }


def video_auc_interval(units: pd.DataFrame) -> tuple[list[float] | None, str]:
    """95 % interval of the AUC over source_logits units, resampling by `group` (the identity, or the
    real video a fake came from: what the index's leakage unit is) where the crops carry one and by
    source otherwise; (None, why) where it is undefined: one class, or one group to resample."""
    if units["label"].nunique() < 2:
        return None, "undefined: one class only"
    groups = units["source_path"].astype(str)
    if "group" in units.columns:
        named = units["group"].fillna("").astype(str)
        groups = groups.where(named == "", named)
    if groups.nunique() < 2:
        return None, "undefined: one group (person or source video), nothing to resample"
    return list(auc_interval(units["label"].to_numpy(), units["logit"].to_numpy(), groups.to_numpy())), ""


def _subsets(crops: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """Subgroups for the breakdown. A manipulation method is judged against all reals of its set, as
    in the FF++ per-method tables: its fakes alone would have no AUC."""
    reals = crops[crops["label"] == REAL]
    fakes = crops[crops["label"] == FAKE]
    groups: dict[str, dict[str, pd.DataFrame]] = {
        "dataset": {str(name): rows for name, rows in crops.groupby("dataset")},
        "method": {(str(name) or "unknown"): pd.concat([reals, rows]) for name, rows in fakes.groupby("method")},
    }
    if "compression" in crops.columns and (crops["compression"] != "").any():
        groups["compression"] = {(str(name) or "unknown"): rows for name, rows in crops.groupby("compression")}
    return groups


def breakdown(crops: pd.DataFrame, rule: str, scaling: LogitScaling) -> dict:
    """Headline frame and video numbers per dataset, per method and (when known) per compression."""
    def headline(rows: pd.DataFrame) -> dict:
        return {level: summarise(values) for level, values in set_metrics(rows, rule, scaling, {}).items()}

    return {kind: {name: headline(rows) for name, rows in subsets.items()} for kind, subsets in _subsets(crops).items()}


def compare_aggregations(crops: pd.DataFrame, rules: Sequence[str], scaling: LogitScaling,
                         thresholds: dict[str, float], default_threshold: str) -> dict:
    """Video metrics of every rule on the same crops, plus accuracy at the default threshold."""
    compared = {}
    for rule in rules:
        units = source_logits(crops, rule, scaling)
        metrics = binary_metrics(units["label"].to_numpy(), units["logit"].to_numpy(), thresholds, scaling)
        default = metrics["at_threshold"].get(default_threshold, {})
        compared[rule] = {**summarise(metrics), "acc_at_default": default.get("acc"),
                          "tpr_at_default": default.get("tpr"), "fpr_at_default": default.get("fpr")}
    return compared


def _auc_or_none(labels: np.ndarray, logits: np.ndarray) -> float | None:
    finite = np.isfinite(logits)
    labels, logits = labels[finite], logits[finite]
    if len(np.unique(labels)) < 2:
        return None
    return roc_auc(labels, logits)


def cross_dataset_matrix(train_sets: Sequence[str], per_set: dict[str, dict]) -> dict:
    """Train set(s) × test sets: frame and video AUC in one table, with in-domain cells marked.

    One model gives one row, named after the datasets it was trained on (the contract's
    training_data); the cross-dataset question is then how far the off-diagonal cells fall.
    """
    train_name = "+".join(train_sets) if train_sets else "unknown"
    test_sets = list(per_set)
    return {
        "rows": [train_name],
        "columns": test_sets,
        "frame_auc": [[per_set[name]["frame"]["auc"] for name in test_sets]],
        "video_auc": [[per_set[name]["video"]["auc"] for name in test_sets]],
        "in_domain": [[bool(set(name.split("+")) & set(train_sets)) for name in test_sets]],
    }


def robustness(crops: pd.DataFrame, scores: pd.DataFrame, sweeps: dict[str, Sweep], rule: str,
               scaling: LogitScaling) -> dict:
    """Frame and video AUC of each set at every level of every sweep, the clean score as level 0.

    `scores` holds one raw-logit column per condition ('clean', 'jpeg@50', …), aligned with `crops`.
    """
    result: dict = {}
    for set_name, rows in crops.groupby("set", sort=False):
        def aucs(column: str, rows: pd.DataFrame = rows) -> dict[str, float | None]:
            scored = rows.assign(logit=scores.loc[rows.index, column])
            scored = scored[np.isfinite(scored["logit"])]
            units = source_logits(scored, rule, scaling)
            return {"frame_auc": _auc_or_none(scored["label"].to_numpy(), scored["logit"].to_numpy()),
                    "video_auc": _auc_or_none(units["label"].to_numpy(), units["logit"].to_numpy())}

        clean = aucs(CLEAN)
        result[set_name] = {"clean": clean, **{
            sweep.name: [{"level": level, **aucs(condition_name(sweep.name, level))} for level in sweep.levels]
            for sweep in sweeps.values()}}
    return result
