"""The report's figures as PNG bytes, so the HTML can embed them and stay one self-contained file.

matplotlib runs on the Agg backend: evaluation often runs on headless machines.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from dfdetect.metrics import roc_auc
from dfdetect.model.contract import LogitScaling

DPI = 100


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def roc_figure(sets: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """ROC curve of each set, from (labels, scores); sets with one class are left out of the plot."""
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for name, (labels, scores) in sets.items():
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(labels, scores):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="false-positive rate (reals flagged)", ylabel="true-positive rate (fakes caught)", title=title,
             xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right", fontsize="small")
    return _png(figure)


def histogram_figure(sets: dict[str, tuple[np.ndarray, np.ndarray]], threshold_logit: float | None,
                     title: str) -> bytes:
    """Calibrated logits of reals and fakes per set; logits rather than probabilities, since
    confident scores pile up at 0 and 1 in probability and hide how far apart the classes are."""
    figure, grid = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.5), squeeze=False)
    for axes, (name, (labels, logits)) in zip(grid[0], sets.items()):
        edges = np.histogram_bin_edges(logits, bins=30)
        for value, colour, text in ((0, "tab:blue", "real"), (1, "tab:red", "fake")):
            axes.hist(logits[labels == value], bins=edges, alpha=0.55, color=colour, label=text)
        if threshold_logit is not None:
            axes.axvline(threshold_logit, color="black", linestyle="--", linewidth=1, label="default threshold")
        axes.set(xlabel="calibrated logit (logit / T + bias)", ylabel="count", title=f"{title}: {name}")
        axes.legend(fontsize="small")
    return _png(figure)


def reliability_figure(before: list[dict], after: list[dict], scaling: LogitScaling) -> bytes:
    """Observed fake rate against predicted P(fake) per bin, of the raw sigmoid and after calibration."""
    figure, axes = plt.subplots(figsize=(5, 4.5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    after_text = f"after (T = {scaling.temperature:.3g}, bias {scaling.bias:+.3g})"
    for bins, style, text in ((before, "o-", "before (T = 1)"), (after, "s-", after_text)):
        filled = [b for b in bins if b["count"]]
        axes.plot([b["mean_prob"] for b in filled], [b["frac_fake"] for b in filled], style, label=text)
    axes.set(xlabel="predicted P(fake)", ylabel="observed fraction fake", title="reliability (videos)",
             xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left", fontsize="small")
    return _png(figure)


def robustness_figure(results: dict[str, dict], sweeps: dict) -> bytes:
    """Frame AUC against degradation strength, one panel per sweep, one line per set; the clean AUC
    is the dotted line each curve starts from."""
    figure, grid = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.5), squeeze=False)
    for axes, sweep in zip(grid[0], sweeps.values()):
        for set_name, result in results.items():
            points = [(p["level"], p["frame_auc"]) for p in result[sweep.name] if p["frame_auc"] is not None]
            line = axes.plot([level for level, _ in points], [auc for _, auc in points], "o-", label=set_name)
            if result["clean"]["frame_auc"] is not None:
                axes.axhline(result["clean"]["frame_auc"], color=line[0].get_color(), linestyle=":", linewidth=1)
        if sweep.levels[0] > sweep.levels[-1]:
            axes.invert_xaxis()  # harsher to the right, whatever way the level runs
        axes.set(xlabel=sweep.label, ylabel="frame AUC", title=sweep.name, ylim=(0, 1.02))
        axes.legend(fontsize="small")
    return _png(figure)


def fairness_figure(report: dict) -> bytes:
    """AUC, FPR and FNR per group with their people-resampled 95 % intervals; a group too small to
    judge is drawn hatched, so its bar is not read as a finding."""
    groups = report["groups"]
    names = [row["group"] for row in groups]
    figure, grid = plt.subplots(1, 3, figsize=(max(9.0, 1.1 * len(names) * 3), 3.6), squeeze=False)
    for axes, (metric, title) in zip(grid[0], (("auc", "AUC"), ("fpr", "FPR: reals flagged"),
                                               ("fnr", "FNR: fakes missed"))):
        values = [row[metric] if row[metric] is not None else np.nan for row in groups]
        intervals = [row[f"{metric}_ci95"] or [np.nan, np.nan] for row in groups]
        errors = np.array([[max(0.0, v - low), max(0.0, high - v)] if np.isfinite(v) else [0.0, 0.0]
                           for v, (low, high) in zip(values, intervals)]).T
        bars = axes.bar(range(len(names)), np.nan_to_num(values), yerr=errors, capsize=3, color="tab:blue", alpha=0.75)
        for bar, row in zip(bars, groups):
            if row["too_small"]:
                bar.set_hatch("//")
                bar.set_alpha(0.35)
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
        axes.set(title=title, ylim=(0, 1.02))
    figure.suptitle(f"by {' × '.join(report['by'])} at threshold {report['threshold']:.3f} (hatched: too few people)",
                    fontsize="medium")
    return _png(figure)
