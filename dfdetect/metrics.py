"""Binary detection metrics in float64, shared by `calibrate` (which fits thresholds) and `evaluate`
(which reports them), so both stages compute a rate the same way.

Conventions used throughout: label 1 = fake = the positive class; a higher score means "more likely
fake"; a sample is called fake when its score is >= the threshold. That is the rule behind
sklearn's ROC curve, so a threshold read off the curve reproduces the curve's rates exactly.
Calibration is measured on P(fake) rather than on top-label confidence, because P(fake) is the
number a user reads and thresholds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from dfdetect.errors import DfdetectError

ECE_BINS = 15


def as_binary_arrays(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate once at the edge so every metric below can assume clean int labels and float64 scores."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise DfdetectError("bad_input", f"labels and scores must be 1-D and of equal length, got shapes "
                            f"{y.shape} and {s.shape}")
    if y.size == 0:
        raise DfdetectError("empty_dataset", "no samples to score", hint="check the split or filter that was applied")
    if not np.isin(y, (0, 1)).all():
        raise DfdetectError("bad_input", f"labels must be 0 (real) or 1 (fake), got {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(s).all():
        raise DfdetectError("bad_input", f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite",
                            hint="drop the rows of files that failed before computing metrics")
    return y.astype(np.int64), s


def _as_probabilities(labels: ArrayLike, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, p = as_binary_arrays(labels, probs)
    if p.min() < 0.0 or p.max() > 1.0:
        raise DfdetectError("bad_input", f"probabilities must lie in [0, 1], got range [{p.min():g}, {p.max():g}]",
                            hint="pass sigmoid(logit / temperature), not raw logits")
    return y, p


def class_counts(labels: np.ndarray) -> tuple[int, int]:
    """(n_fake, n_real)."""
    n_fake = int(labels.sum())
    return n_fake, int(labels.size) - n_fake


def require_both_classes(labels: np.ndarray, what: str) -> None:
    n_fake, n_real = class_counts(labels)
    if n_fake == 0 or n_real == 0:
        raise DfdetectError("bad_input", f"{what} needs both real and fake samples, got {n_real} real and "
                            f"{n_fake} fake", hint="use a split that holds both classes")


def operating_points(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct decision point as (thresholds, tpr, fpr), thresholds descending.

    The first point flags nothing; sklearn marks it with an infinite threshold, which JSON cannot
    hold, so it is replaced by the next float above the highest score (same effect on this data).
    """
    y, s = as_binary_arrays(labels, scores)
    require_both_classes(y, "an ROC curve")
    fpr, tpr, thresholds = skm.roc_curve(y, s, drop_intermediate=False)
    thresholds = thresholds.astype(np.float64)
    thresholds[0] = np.nextafter(thresholds[1], np.inf)
    return thresholds, tpr.astype(np.float64), fpr.astype(np.float64)


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    y, s = as_binary_arrays(labels, scores)
    require_both_classes(y, "ROC AUC")
    return float(skm.roc_auc_score(y, s))


def group_resample_weights(groups: ArrayLike, resamples: int = 1000, seed: int = 0) -> Iterator[np.ndarray]:
    """Bootstrap resamples of whole groups (people, or the real video a fake was made from), each as
    one weight per unit: how often its group was drawn. The units of one person rise and fall together,
    so resampling them one by one would make a test set of a few dozen people look far more certain
    than it is."""
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield np.bincount(rng.integers(n_groups, size=n_groups), minlength=n_groups)[codes].astype(np.float64)


def percentile_interval(values: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(np.asarray(values, np.float64), [tail, 100.0 - tail])
    return float(low), float(high)


def auc_interval(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike, level: float = 0.95,
                 resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC over group resamples; resamples left with one
    class are skipped. Undefined (an error) with fewer than two groups: every resample would then be
    the whole set, and the interval a point ("1.000–1.000") that looks certain and is not."""
    y, s = as_binary_arrays(labels, scores)
    require_both_classes(y, "an AUC interval")
    n_groups = len(np.unique(np.asarray(groups).astype(str)))
    if n_groups < 2:
        raise DfdetectError("bad_input", f"an AUC interval needs at least 2 groups to resample, got {n_groups}",
                            hint="evaluate on more people or source videos")
    values = [weighted_auc(y, s, weights) for weights in group_resample_weights(groups, resamples, seed)
              if weights[y == 1].any() and weights[y == 0].any()]
    if not values:
        raise DfdetectError("bad_input", "no bootstrap resample held both classes", hint="use more groups")
    return percentile_interval(values, level)


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC with a weight per sample (the Mann-Whitney statistic, ties counted ½), equal to
    sklearn's roc_auc_score with sample_weight but without its per-call overhead, which a thousand
    bootstrap resamples would pay a thousand times."""
    _, level = np.unique(scores, return_inverse=True)
    fake = labels == 1
    real_at = np.bincount(level, weights=np.where(fake, 0.0, weights), minlength=int(level.max()) + 1)
    real_below = np.cumsum(real_at) - real_at
    fake_weights = np.where(fake, weights, 0.0)
    wins = float(fake_weights @ (real_below[level] + 0.5 * real_at[level]))
    return wins / (float(fake_weights.sum()) * float(real_at.sum()))


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Defined whenever there is at least one fake; with no reals it is trivially 1."""
    y, s = as_binary_arrays(labels, scores)
    if class_counts(y)[0] == 0:
        raise DfdetectError("bad_input", "average precision needs at least one fake sample",
                            hint="use a split that holds fakes")
    return float(skm.average_precision_score(y, s))


def eer(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Equal error rate and the threshold closest to it.

    FNR - FPR falls from 1 to -1 along the ROC curve; the rate is interpolated linearly on the
    segment where it crosses zero, and the returned threshold is whichever end of that segment has
    the smaller gap, so the rate is exact for the curve and the threshold is one a detector can use.
    """
    thresholds, tpr, fpr = operating_points(labels, scores)
    gap = (1.0 - tpr) - fpr
    after = int(np.argmax(gap <= 0.0))  # gap[0] = 1 and gap[-1] = -1, so 1 <= after < len(gap)
    before = after - 1
    weight = gap[before] / (gap[before] - gap[after])
    rate = fpr[before] + weight * (fpr[after] - fpr[before])
    nearest = after if -gap[after] <= gap[before] else before
    return float(rate), float(thresholds[nearest])


def rates_at_threshold(labels: ArrayLike, probs: ArrayLike, threshold: float) -> dict[str, float | int | None]:
    """Confusion counts and rates when `probs >= threshold` is called fake; a rate whose denominator
    is zero (e.g. TPR with no fakes) is None rather than NaN, so the result stays valid JSON."""
    y, p = as_binary_arrays(labels, probs)
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    fn = int((~flagged & (y == 1)).sum())
    tn = int((~flagged & (y == 0)).sum())

    def ratio(numerator: int, denominator: int) -> float | None:
        return numerator / denominator if denominator else None

    return {
        "acc": (tp + tn) / y.size,
        "tpr": ratio(tp, tp + fn),
        "fpr": ratio(fp, fp + tn),
        "tnr": ratio(tn, fp + tn),
        "fnr": ratio(fn, tp + fn),
        "precision": ratio(tp, tp + fp),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def log_loss(labels: ArrayLike, probs: ArrayLike) -> float:
    """scikit-learn's log-loss (probabilities clipped at machine epsilon), defined for one class too."""
    y, p = _as_probabilities(labels, probs)
    return float(skm.log_loss(y, p, labels=[0, 1]))


def brier(labels: ArrayLike, probs: ArrayLike) -> float:
    y, p = _as_probabilities(labels, probs)
    return float(skm.brier_score_loss(y, p, labels=[0, 1]))


def _bin_sums(labels: np.ndarray, probs: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin on [0, 1]: count, sum of P(fake), number of fakes. P = 1 joins the last bin."""
    if bins < 1:
        raise DfdetectError("bad_config", f"need at least one calibration bin, got {bins}")
    index = np.minimum((probs * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    prob_sums = np.bincount(index, weights=probs, minlength=bins)
    fake_sums = np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
    return counts, prob_sums, fake_sums


def reliability_bins(labels: ArrayLike, probs: ArrayLike, bins: int = ECE_BINS) -> list[dict[str, float | int | None]]:
    """Rows of a reliability diagram: for each probability bin, how many samples fell in it, their
    mean P(fake) and the fraction that really were fake (None for an empty bin)."""
    y, p = _as_probabilities(labels, probs)
    counts, prob_sums, fake_sums = _bin_sums(y, p, bins)
    rows = []
    for b in range(bins):
        n = int(counts[b])
        rows.append({
            "lower": b / bins,
            "upper": (b + 1) / bins,
            "count": n,
            "mean_prob": float(prob_sums[b] / n) if n else None,
            "frac_fake": float(fake_sums[b] / n) if n else None,
        })
    return rows


def expected_calibration_error(labels: ArrayLike, probs: ArrayLike, bins: int = ECE_BINS) -> float:
    """Sample-weighted mean gap between predicted P(fake) and observed fake rate over equal-width bins."""
    y, p = _as_probabilities(labels, probs)
    _, prob_sums, fake_sums = _bin_sums(y, p, bins)
    return float(np.abs(prob_sums - fake_sums).sum() / y.size)


def ece_noise_floor(probs: ArrayLike, bins: int = ECE_BINS, draws: int = 1000, seed: int = 0) -> float:
    """The median ECE a perfectly calibrated model would show on these many units: labels drawn from
    the probabilities themselves (consistency resampling, Bröcker & Smith 2007). On a small test set the
    binned ECE is mostly this sampling noise (the starter model's 130-unit test sets, 15 bins: 0.06–0.10),
    so a measured ECE means little until it is compared with its floor."""
    p = np.asarray(probs, np.float64).ravel()
    rng = np.random.default_rng(seed)
    return float(np.median([expected_calibration_error(rng.random(p.size) < p, p, bins) for _ in range(draws)]))


def auc_with_ties(labels: ArrayLike, scores: ArrayLike, tie: float) -> float:
    """ROC AUC where a (fake, real) pair whose scores differ by at most `tie` counts as a tie (½).

    Two runtimes that agree within `tie` can order such pairs either way, so this is the ranking
    quality both are guaranteed to share; with tie = 0 it is the ordinary AUC. Pairwise, O(n_fake ×
    n_real): meant for parity samples, not whole test sets.
    """
    y, s = as_binary_arrays(labels, scores)
    require_both_classes(y, "ROC AUC")
    gaps = s[y == 1][:, None] - s[y == 0][None, :]
    return float(np.mean(np.where(np.abs(gaps) <= tie, 0.5, (gaps > 0).astype(np.float64))))
