"""Fairness report: does the detector treat groups of people alike?

Each evaluated unit (a source file: a video or an image, scored as the scanner scores it) belongs to
one person, the crops' `group`; a table of attributes per person (gender, ethnicity, age…) puts each
person in a group. Per group we report AUC, and FPR (reals flagged) and FNR (fakes missed) at the
model's default threshold — the two errors that cost the people in the picture — with the counts and
the largest ratio between any two groups large enough to judge (a group of two people is shown, with a
warning, but not compared). Fairlearn's `MetricFrame` computes the per-group values.

The 95 % intervals resample people, not units: the images of one person rise and fall together, and a
test set of a few dozen people is far less certain than its few hundred images suggest. A resample
redraws people from the whole set, so group sizes vary as they would in another draw of the
population, and the ratio between two groups gets its own interval. MetricFrame costs about 60 ms a
call, too much for a thousand resamples per report, so the resamples apply the same metric functions to
each group's weights directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.summary import source_logits
from dfdetect.metrics import group_resample_weights, percentile_interval, weighted_auc
from dfdetect.model.contract import LogitScaling

METRICS = ("auc", "fpr", "fnr")
# below this many people, or this many real or fake units, a group's numbers are reported but flagged:
# one person more or less moves a rate by several points, so a difference between groups means little
MIN_GROUP_PEOPLE = 10
MIN_GROUP_UNITS = 10
RESAMPLES = 1000
UNKNOWN = "unknown"


def group_auc(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """AUC of P(fake); NaN when the (weighted) units hold one class only, as a small group may."""
    weights = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    y_true = np.asarray(y_true)
    if not (weights[y_true == 1].sum() > 0 and weights[y_true == 0].sum() > 0):
        return float("nan")
    return weighted_auc(y_true, np.asarray(y_pred, np.float64), weights)


def rate_metrics(threshold: float) -> dict:
    """AUC, FPR and FNR of P(fake) ≥ threshold as metric functions of (labels, probabilities, weights) —
    the signature MetricFrame calls, and cheap enough for the bootstrap to call a thousand times (Fairlearn's
    own rate functions validate their input on every call: 30 ms a resample). NaN where the group has no
    units of the class a rate is about."""
    def rate(about: int):
        def metric(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
            weights = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, np.float64)
            of_class = np.asarray(y_true) == about
            total = weights[of_class].sum()
            if not total > 0:
                return float("nan")
            flagged = np.asarray(y_pred) >= threshold
            wrong = flagged if about == 0 else ~flagged  # a real flagged, or a fake let through
            return float(weights[of_class & wrong].sum() / total)
        return metric

    return {"auc": group_auc, "fpr": rate(0), "fnr": rate(1)}


def read_attributes(path: str | Path, key: str | None = None) -> pd.DataFrame:
    """The attributes table indexed by person (`key` column, default the first), every cell a string so
    a face id such as 001 keeps its zeros."""
    path = Path(path)
    if not path.is_file():
        raise DfdetectError("missing_path", "attributes file not found", path,
                            "pass a CSV with one row per person, e.g. face_id,face_gender,face_eth")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    key = key or table.columns[0]
    if key not in table.columns:
        raise DfdetectError("bad_config", f"no column {key!r} in the attributes (columns: {list(table.columns)})",
                            path, "name the person column with --groups-key")
    if table[key].duplicated().any():
        raise DfdetectError("bad_input", f"person {table[key][table[key].duplicated()].iloc[0]!r} has two rows",
                            path, "give one row per person")
    return table.set_index(key)


def parse_bins(specs: Sequence[str]) -> dict[str, list[float]]:
    """`face_age=30,40` → {"face_age": [30.0, 40.0]}: cut a numeric attribute at these edges."""
    bins = {}
    for spec in specs:
        column, _, edges = spec.partition("=")
        try:
            bins[column] = sorted(float(edge) for edge in edges.split(","))
        except ValueError as exc:
            raise DfdetectError("bad_config", f"cannot read bins {spec!r}", None,
                                "write COLUMN=EDGE[,EDGE], e.g. face_age=30,40") from exc
    return bins


def band(value: str, edges: list[float]) -> str:
    """The band a number falls in, named by its whole-number bounds: '<30', '30–39', '≥40' for edges 30, 40."""
    try:
        number = float(value)
    except ValueError:
        return UNKNOWN
    labels = [f"<{edges[0]:g}", *(f"{low:g}–{high - 1:g}" for low, high in pairwise(edges)), f"≥{edges[-1]:g}"]
    return labels[int(np.searchsorted(edges, number, side="right"))]


def units_with_attributes(units: pd.DataFrame, attributes: pd.DataFrame, columns: Sequence[str],
                          bins: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """`units` (one row per source with `group` = the person) with each attribute column joined on the
    person; a person missing from the table gets 'unknown', a binned column its band."""
    missing = [c for c in columns if c not in attributes.columns]
    if missing:
        raise DfdetectError("bad_config", f"no attribute column(s) {missing} (columns: {list(attributes.columns)})",
                            hint="choose --by columns from the attributes file")
    people = units["group"].astype(str)
    joined = units.copy()
    for column in columns:
        values = people.map(attributes[column]).fillna(UNKNOWN).replace("", UNKNOWN)
        if bins and column in bins:
            values = values.map(lambda v, edges=bins[column]: band(v, edges))
        joined[column] = values
    return joined


def group_report(units: pd.DataFrame, by: Sequence[str], threshold: float, resamples: int = RESAMPLES,
                 seed: int = 0) -> dict:
    """Per-group AUC / FPR / FNR at `threshold` with people-resampled 95 % intervals, counts, and the
    largest ratio between groups, for units carrying `label`, `probability`, `group` (the person) and
    the `by` columns (their combination is the group)."""
    labels = units["label"].to_numpy(np.int64)
    probabilities = units["probability"].to_numpy(np.float64)
    people = units["group"].astype(str).to_numpy()
    names = units[list(by)].astype(str).agg(" · ".join, axis=1).to_numpy()
    metrics = rate_metrics(threshold)
    frame = MetricFrame(metrics=metrics, y_true=labels, y_pred=probabilities,
                        sensitive_features=pd.Series(names, name=" · ".join(by)))
    by_group = frame.by_group
    group_names = [str(name) for name in by_group.index]
    masks = {name: names == name for name in group_names}

    draws: dict[str, dict[str, list[float]]] = {name: {m: [] for m in METRICS} for name in group_names}
    for weights in group_resample_weights(people, resamples, seed):
        for name, mask in masks.items():
            for metric, fn in metrics.items():
                draws[name][metric].append(fn(labels[mask], probabilities[mask], weights[mask]))

    groups = []
    for name in group_names:
        mask = masks[name]
        n_people = len(set(people[mask]))
        n_real, n_fake = int((labels[mask] == 0).sum()), int((labels[mask] == 1).sum())
        row = {"group": name, "people": n_people, "n_real": n_real, "n_fake": n_fake,
               "too_small": n_people < MIN_GROUP_PEOPLE or min(n_real, n_fake) < MIN_GROUP_UNITS}
        for metric in METRICS:
            row[metric] = _finite_or_none(by_group.loc[name, metric])
            row[f"{metric}_ci95"] = _interval(draws[name][metric])
        groups.append(row)
    disparity = {metric: disparity_between(groups, draws, metric) for metric in METRICS}
    small = [row["group"] for row in groups if row["too_small"]]
    warnings = ([f"too small to judge (fewer than {MIN_GROUP_PEOPLE} people or {MIN_GROUP_UNITS} real or fake "
                 f"units): {', '.join(small)}"] if small else [])
    return {"by": list(by), "threshold": threshold, "people": len(set(people)), "units": len(units),
            "resamples": resamples, "groups": groups, "largest_ratio": disparity, "warnings": warnings}


def disparity_between(groups: list[dict], draws: dict[str, dict[str, list[float]]], metric: str) -> dict:
    """The largest ratio of `metric` between groups large enough to judge (highest over lowest), its
    difference, and a 95 % interval for the ratio of those same two groups over the people resamples.
    Fixing the pair keeps the interval able to fall below 1 — "no difference" stays visible — where the
    largest ratio of each resample would always be at least 1. A resample in which the lower group's
    rate is 0 gives an infinite ratio; an interval reaching it has no upper bound (None)."""
    judged = {row["group"]: row[metric] for row in groups if not row["too_small"] and row[metric] is not None}
    if len(judged) < 2:
        return {"ratio": None, "ratio_ci95": None, "difference": None, "highest": None, "lowest": None,
                "compared": sorted(judged)}
    highest, lowest = max(judged, key=judged.get), min(judged, key=judged.get)
    high, low = np.asarray(draws[highest][metric]), np.asarray(draws[lowest][metric])
    defined = np.isfinite(high) & np.isfinite(low) & ((high > 0) | (low > 0))
    with np.errstate(divide="ignore"):
        ratios = high[defined] / low[defined]
    bounds = np.quantile(ratios, [0.025, 0.975], method="inverted_cdf") if len(ratios) else None
    return {"ratio": largest_ratio(list(judged.values())),
            "ratio_ci95": None if bounds is None else [_finite_or_none(b) for b in bounds],
            "difference": judged[highest] - judged[lowest], "highest": highest, "lowest": lowest,
            "compared": sorted(judged)}


def largest_ratio(values: Sequence[float]) -> float | None:
    """Highest over lowest defined value; None with fewer than two groups, or when the lowest is 0 (a
    group with no errors of a kind makes every ratio infinite: read the difference then)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if len(finite) < 2 or min(finite) <= 0:
        return None
    return float(max(finite) / min(finite))


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _interval(values: list[float]) -> list[float] | None:
    finite = [v for v in values if np.isfinite(v)]
    return list(percentile_interval(finite)) if finite else None


def fairness_reports(units: pd.DataFrame, attributes: pd.DataFrame, by_specs: Sequence[str], threshold: float,
                     bins: dict[str, list[float]] | None = None, resamples: int = RESAMPLES) -> list[dict]:
    """One group report per `--by` spec ('face_gender' or 'face_gender,face_eth' for their combination)."""
    reports = []
    for spec in by_specs:
        by = [column.strip() for column in spec.split(",") if column.strip()]
        joined = units_with_attributes(units, attributes, by, bins)
        unmatched = int((joined[by] == UNKNOWN).all(axis=1).sum())
        report = group_report(joined, by, threshold, resamples)
        if unmatched:
            report["warnings"].insert(0, f"{unmatched} of {len(joined)} units have no attributes (group '{UNKNOWN}')")
        reports.append(report)
    return reports


@dataclass(frozen=True)
class GroupsRequest:
    """`evaluate --groups ATTRS.csv --by COL[,COL] …`: whom to compare, and how a numeric column is banded."""

    attributes: Path
    by: tuple[str, ...]
    key: str | None = None  # the person column of the attributes (default: the first)
    bins: dict[str, list[float]] = field(default_factory=dict)


def fairness_section(crops: pd.DataFrame, rule: str, scaling: LogitScaling, threshold_name: str, threshold: float,
                     request: GroupsRequest, resamples: int = RESAMPLES) -> dict:
    """metrics.json's `fairness`: per crop set, one group report per `--by` spec, on the units the rest of
    the evaluation scores (sources aggregated by the model's rule, calibrated as the scanner does)."""
    attributes = read_attributes(request.attributes, request.key)
    sets = {}
    for name, rows in crops.groupby("set", sort=False):
        units = source_logits(rows, rule, scaling)
        units["probability"] = scaling.probability(units["logit"])
        sets[str(name)] = fairness_reports(units, attributes, request.by, threshold, request.bins, resamples)
    return {"attributes": str(request.attributes), "threshold_name": threshold_name, "threshold": threshold,
            "sets": sets}
