"""`dfdetect calibrate`: fit a temperature (and optionally a bias) and named decision thresholds on
held-out scores.

A detector's raw sigmoid is usually over-confident and its 0.5 cut is arbitrary. One temperature
(P = sigmoid(logit / T)) fixes the confidence without changing the ranking, and thresholds chosen
on validation data turn "P(fake)" into decisions with a known error rate. `--method platt` adds a
bias (P = sigmoid(logit / T + b)): needed when training shifted every score one way, e.g. class
re-balancing, label smoothing or a loss that holds degraded reals down, which no temperature can
undo. Both are fitted here on the same unit the detector will be judged on (a video's mean logit,
or a single crop), written to calibration.json, and later embedded by export into the model contract.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from dfdetect.errors import DfdetectError
from dfdetect.metrics import (
    as_binary_arrays,
    average_precision,
    brier,
    class_counts,
    eer,
    expected_calibration_error,
    log_loss,
    operating_points,
    require_both_classes,
    roc_auc,
)
from dfdetect.model.calibration import Calibration, write_calibration
from dfdetect.model.contract import LogitScaling
from dfdetect.model.scoring import CLEAN, load_crop_sets, load_scoring_model, score_crops
from dfdetect.records import file_sha256, read_table

DEFAULT_FPRS = (0.01, 0.05)
# wide enough for any sane detector; a fit that lands on a bound means the scores are degenerate
TEMPERATURE_BOUNDS = (1e-3, 1e3)
SCORE_COLUMNS = ["logit", "label", "source_path", "split"]
AGGREGATIONS = ("mean", "median")
METHODS = ("temperature", "platt")


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The T > 0 that minimises the mean NLL of sigmoid(logit / T).

    The NLL is convex in 1/T, hence unimodal in log T, so a bounded scalar search on log T finds
    the optimum without a starting guess and can never propose T <= 0.
    """
    y, z = as_binary_arrays(labels, logits)

    def mean_nll(log_t: float) -> float:
        scaled = z * math.exp(-log_t)
        return float(np.mean(np.logaddexp(0.0, scaled) - y * scaled))  # -log sigmoid, without overflow

    lower, upper = TEMPERATURE_BOUNDS
    fit = minimize_scalar(mean_nll, bounds=(math.log(lower), math.log(upper)), method="bounded",
                          options={"xatol": 1e-10})
    return float(math.exp(fit.x))


def fit_platt(logits: ArrayLike, labels: ArrayLike) -> LogitScaling:
    """Slope and intercept minimising the mean NLL of sigmoid(a · logit + b), as an unpenalised
    one-feature logistic regression (scikit-learn), returned as T = 1 / a and bias b."""
    y, z = as_binary_arrays(labels, logits)
    fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(z[:, None], y)
    slope = float(fit.coef_[0, 0])
    lower, upper = TEMPERATURE_BOUNDS
    if not 1.0 / upper <= slope <= 1.0 / lower:
        raise DfdetectError("bad_input", f"Platt scaling found slope {slope:g}: the logits do not rank fakes above "
                            "reals", hint="check that the scores belong to these labels, or use --method temperature")
    return LogitScaling(1.0 / slope, float(fit.intercept_[0]))


def fpr_key(target: float) -> str:
    return f"fpr@{target:g}"


def named_thresholds(labels: ArrayLike, probs: ArrayLike, fprs: Sequence[float] = DEFAULT_FPRS,
                     default: str = "eer") -> dict[str, float]:
    """Decision thresholds on P(fake) (fake when P >= t), one per rule, plus `default` = the rule named.

    `fpr@X` is the lowest threshold whose FPR on these reals is still <= X: the largest FPR not over
    the target, and among equal FPRs the one that catches the most fakes. `max_f1` and `youden`
    (max TPR - FPR) are searched over every distinct operating point.
    """
    y, p = as_binary_arrays(labels, probs)
    require_both_classes(y, "threshold fitting")
    thresholds, tpr, fpr = operating_points(y, p)
    n_fake, n_real = class_counts(y)
    false_positives = np.rint(fpr * n_real)
    true_positives = np.rint(tpr * n_fake)

    named = {"eer": eer(y, p)[1]}
    for target in fprs:
        if not 0.0 < target < 1.0:
            raise DfdetectError("bad_config", f"a target FPR must lie strictly between 0 and 1, got {target}")
        # fpr is non-decreasing along the curve and starts at 0, so the admissible points are a prefix
        admissible = int((false_positives <= target * n_real + 1e-9).sum())
        named[fpr_key(target)] = float(thresholds[admissible - 1])
    f1 = 2 * true_positives / (true_positives + false_positives + n_fake)
    named["max_f1"] = float(thresholds[int(np.argmax(f1))])
    named["youden"] = float(thresholds[int(np.argmax(tpr - fpr))])
    if default not in named:
        raise DfdetectError("bad_config", f"unknown default threshold {default!r}",
                            hint=f"choose one of {sorted(named)}")
    named["default"] = named[default]
    return named


def too_few_negatives(n_neg: int, fpr: float) -> bool:
    """With fewer than 1/FPR reals a single false positive already overshoots the target, so the
    threshold can only sit above every real and the FPR it promises is not measured at all."""
    return n_neg < math.ceil(1.0 / fpr - 1e-9)


def video_logits(frame_table: pd.DataFrame, aggregation: str = "mean") -> pd.DataFrame:
    """One row per source_path: the aggregated logit (float64) and the video's label.

    Logits, not probabilities, are averaged, matching scan, so the temperature fitted on the result
    is the one scan's per-video score needs.
    """
    if aggregation not in AGGREGATIONS:
        raise DfdetectError("bad_config", f"unknown aggregation {aggregation!r}", hint=f"choose one of {AGGREGATIONS}")
    table = frame_table.assign(logit=frame_table["logit"].astype(np.float64))
    grouped = table.groupby("source_path", sort=True)
    mixed = grouped["label"].nunique()
    mixed = mixed[mixed > 1]
    if len(mixed):
        raise DfdetectError("bad_input", f"{len(mixed)} sources carry both labels, e.g. {mixed.index[0]}",
                            hint="every crop of one source must have that source's label")
    return pd.DataFrame({"logit": grouped["logit"].agg(aggregation), "label": grouped["label"].first()}).reset_index()


def calibrate_scores(frame_table: pd.DataFrame, by: str = "video", aggregation: str = "mean",
                     default: str = "eer", fprs: Sequence[float] = DEFAULT_FPRS,
                     fitted_on: dict | None = None, method: str = "temperature") -> Calibration:
    """Fit temperature (method "temperature") or temperature and bias (method "platt"), then the
    thresholds, on a per-crop table (columns logit, label, source_path).

    `fitted_on` carries what only the caller knows (scores file, hash, split) into the record.
    """
    if method not in METHODS:
        raise DfdetectError("bad_config", f"unknown calibration method {method!r}", hint=f"choose one of {METHODS}")
    missing = [c for c in ("logit", "label", "source_path") if c not in frame_table.columns]
    if missing:
        raise DfdetectError("bad_input", f"score table lacks columns {missing}",
                            hint="produce it with `dfdetect evaluate`")
    if by == "video":
        units = video_logits(frame_table, aggregation)
    elif by == "frame":
        units = frame_table
    else:
        raise DfdetectError("bad_config", f"unknown calibration unit {by!r}", hint="use --by video or --by frame")
    labels, logits = as_binary_arrays(units["label"].to_numpy(), units["logit"].to_numpy())
    require_both_classes(labels, "calibration")

    warnings: list[str] = []
    if logits[labels == 0].max() <= logits[labels == 1].min():
        # the NLL keeps falling as T -> 0, so no temperature is estimable, and a tiny one would saturate every
        # probability to 0 or 1 and pile all thresholds onto 1.0
        scaling = LogitScaling()
        warnings.append(f"the {by}s are perfectly separated, so no temperature can be estimated and T stays 1; "
                        f"calibrate on a larger or harder set for meaningful probabilities")
    elif method == "platt":
        scaling = fit_platt(logits, labels)
    else:
        scaling = LogitScaling(fit_temperature(logits, labels))
    temperature = scaling.temperature
    if any(math.isclose(temperature, bound, rel_tol=1e-6) for bound in TEMPERATURE_BOUNDS):
        warnings.append(f"temperature {temperature:g} sits on its search bound {TEMPERATURE_BOUNDS}, so the "
                        f"calibrated probabilities are extreme; check that the logits belong to these labels")
    probs_before, probs_after = expit(logits), scaling.probability(logits)
    thresholds = named_thresholds(labels, probs_after, fprs, default)  # also rejects FPR targets outside (0, 1)
    n_fake, n_real = class_counts(labels)
    warnings += [f"{fpr_key(target)}: only {n_real} real {by}s, at least {math.ceil(1 / target - 1e-9)} are needed "
                 f"to measure that FPR; the threshold is not trustworthy"
                 for target in fprs if too_few_negatives(n_real, target)]
    counts = {"units": int(labels.size), "real": n_real, "fake": n_fake, "crops": len(frame_table)}
    after = {"ece": expected_calibration_error(labels, probs_after), "log_loss": log_loss(labels, probs_after)}
    return Calibration(
        temperature=temperature,
        bias=scaling.bias,
        method=method,
        thresholds=thresholds,
        default_threshold=default,
        fitted_on={**(fitted_on or {}), "by": by, "aggregation": aggregation if by == "video" else "none",
                   "counts": counts},
        before={"ece": expected_calibration_error(labels, probs_before), "log_loss": log_loss(labels, probs_before)},
        after=after,
        warnings=warnings,
        metrics={"unit": by, "n": int(labels.size), "auc": roc_auc(labels, probs_after),
                 "average_precision": average_precision(labels, probs_after), "eer": eer(labels, probs_after)[0],
                 "brier": brier(labels, probs_after), **after},
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", type=Path,
                        help="per-crop scores parquet (logit, label, source_path, split) from `dfdetect evaluate`")
    source.add_argument("--model", type=Path,
                        help="score --crops with this model (.onnx or fit .ckpt) first, then fit on those scores")
    parser.add_argument("--crops", nargs="+", type=Path, default=None,
                        help="crops directories (`dfdetect extract`) to score with --model")
    parser.add_argument("--out", required=True, type=Path, help="where to write calibration.json")
    parser.add_argument("--split", default="val", help="rows to fit on (default: val; never fit on test)")
    parser.add_argument("--by", choices=("video", "frame"), default="video",
                        help="calibrate per-video mean logits (default) or per crop")
    parser.add_argument("--method", choices=METHODS, default="temperature",
                        help="temperature: P = sigmoid(logit / T); platt: P = sigmoid(logit / T + bias), for a "
                             "detector whose scores training shifted one way (default: temperature)")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default="mean",
                        help="how crop logits of one source combine in --by video")
    parser.add_argument("--fpr", type=float, nargs="+", default=list(DEFAULT_FPRS),
                        help="target false-positive rates that get a threshold each (default: 0.01 0.05)")
    parser.add_argument("--default", default="eer",
                        help="threshold rule used for decisions: eer, youden, max_f1 or fpr@X (default: eer)")


def scores_from_file(scores_path: Path, split: str) -> tuple[pd.DataFrame, dict]:
    """The rows of `split` in a scores parquet, and the record of what they were."""

    table = read_table(scores_path, SCORE_COLUMNS, "scores file", "dfdetect evaluate")
    subset = table[table["split"] == split]
    if subset.empty:
        raise DfdetectError("empty_dataset", f"no rows with split {split!r}", scores_path,
                            f"splits present: {sorted(map(str, table['split'].unique()))}; choose one with --split")
    return subset, {"scores": str(scores_path.resolve()), "scores_sha256": file_sha256(scores_path), "split": split}


def scores_from_model(model_path: Path, crops_dirs: list[Path], split: str) -> tuple[pd.DataFrame, dict]:
    """Score the `split` crops with the model's raw logits; the record names the model and the
    crops.parquet files by hash, so a calibration can be traced to the exact data it saw."""
    model = load_scoring_model(model_path)
    crops = load_crop_sets(crops_dirs, split=split)
    crops = crops.assign(logit=score_crops(model, crops)[CLEAN])
    fitted_on = {"model": str(model_path.resolve()), "model_sha256": model.sha256, "split": split,
                 "crops": {str(d.resolve()): file_sha256(d / "crops.parquet" if d.is_dir() else d) for d in crops_dirs}}
    return crops, fitted_on


def run(args: argparse.Namespace) -> None:
    if args.model is not None and not args.crops:
        raise DfdetectError("bad_config", "--model needs --crops", None, "pass the crops directories to score")
    if args.model is None:
        subset, fitted_on = scores_from_file(Path(args.scores), args.split)
    else:
        subset, fitted_on = scores_from_model(Path(args.model), list(args.crops), args.split)
    scores_path = Path(args.scores) if args.scores is not None else None
    finite = np.isfinite(subset["logit"].astype(np.float64))
    if not finite.all():
        print(f"warning: skipping {int((~finite).sum())} rows with a NaN or infinite logit", file=sys.stderr)
        subset = subset[finite]
    try:
        calibration = calibrate_scores(subset, by=args.by, aggregation=args.aggregation, default=args.default,
                                       fprs=args.fpr, fitted_on=fitted_on, method=args.method)
    except DfdetectError as err:
        data_problem = err.code != "bad_config"  # an option error is not the scores file's fault
        raise DfdetectError(err.code, err.message, err.path or (scores_path if data_problem else None),
                            err.hint) from err
    out = write_calibration(calibration, args.out)

    for warning in calibration.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    counts = calibration.fitted_on["counts"]
    print(f"calibrated on {counts['units']} {args.by}s of split {args.split!r} "
          f"({counts['real']} real, {counts['fake']} fake; {counts['crops']} crops)")
    print(f"temperature {calibration.temperature:.4f}"
          + (f", bias {calibration.bias:+.4f}" if calibration.method == "platt" else ""))
    print(f"{'':8}{'ECE':>10}{'log-loss':>10}")
    for name, values in (("before", calibration.before), ("after", calibration.after)):
        print(f"{name:8}{values['ece']:>10.4f}{values['log_loss']:>10.4f}")
    print("thresholds on P(fake), fake when P >= t:")
    for name, value in calibration.thresholds.items():
        if name != "default":
            marker = "  (default)" if name == calibration.default_threshold else ""
            print(f"  {name:10}{value:.6f}{marker}")
    print(f"wrote {out}")
