"""report.html and the model card, rendered from metrics.json's content and the model contract.

The HTML is one file with its figures embedded as base64 PNGs: it is mailed, attached to tickets and
archived next to a model, where linked images would be lost. The model card is markdown so that it
can live in a model registry or a repository beside the ONNX file it describes.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence

from dfdetect.model.contract import ModelContract

MISSING = "–"


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: numbers rounded, booleans as yes/no, absent values as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def interval(bounds: list[float] | None) -> str:
    return MISSING if bounds is None else f"{bounds[0]:.3f}–{bounds[1]:.3f}"


def embedded_png(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


HEADLINE = ("set", "frame AUC", "frame AP", "frame EER", "video AUC", "video AUC 95 % CI", "video AP", "video EER",
            "video log-loss", "video Brier", "video ECE", "videos", "crops")


def headline_rows(metrics: dict) -> list[list[object]]:
    rows = []
    for name, result in metrics["sets"].items():
        frame, video = result["frame"], result["video"]
        rows.append([name, frame["auc"], frame["average_precision"], frame["eer"], video["auc"],
                     interval(video.get("auc_ci95")), video["average_precision"], video["eer"], video["log_loss"],
                     video["brier"], video["ece"], video["n"], frame["n"]])
    return rows


def threshold_rows(metrics: dict) -> list[list[object]]:
    rows = []
    for name, result in metrics["sets"].items():
        for level in ("frame", "video"):
            for rule, rates in result[level]["at_threshold"].items():
                rows.append([name, level, rule, rates["threshold"], rates["acc"], rates["tpr"], rates["fpr"]])
    return rows


def breakdown_rows(metrics: dict) -> list[list[object]]:
    return [[name, kind, group, values["frame"]["auc"], values["video"]["auc"], values["video"]["n_real"],
             values["video"]["n_fake"]]
            for name, result in metrics["sets"].items()
            for kind, groups in result["breakdown"].items()
            for group, values in groups.items()]


def aggregation_rows(metrics: dict) -> list[list[object]]:
    return [[name, rule, values["auc"], values["average_precision"], values["eer"], values["log_loss"],
             values["acc_at_default"]]
            for name, result in metrics["sets"].items() for rule, values in result["aggregations"].items()]


def matrix_rows(matrix: dict, key: str) -> list[list[object]]:
    return [[row, *cells] for row, cells in zip(matrix["rows"], matrix[key])]


def robustness_rows(robustness: dict) -> list[list[object]]:
    rows = []
    for name, result in robustness.items():
        rows.append([name, "clean", MISSING, result["clean"]["frame_auc"], result["clean"]["video_auc"]])
        for sweep, points in result.items():
            if sweep != "clean":
                rows += [[name, sweep, fmt(p["level"], 2), p["frame_auc"], p["video_auc"]] for p in points]
    return rows


FAIRNESS_HEADER = ("group", "people", "reals", "fakes", "AUC", "AUC 95 % CI", "FPR", "FPR 95 % CI", "FNR",
                   "FNR 95 % CI", "too small")


def fairness_rows(report: dict) -> list[list[object]]:
    return [[row["group"], row["people"], row["n_real"], row["n_fake"], row["auc"], interval(row["auc_ci95"]),
             row["fpr"], interval(row["fpr_ci95"]), row["fnr"], interval(row["fnr_ci95"]), row["too_small"]]
            for row in report["groups"]]


def disparity_text(report: dict) -> str:
    """'FNR: 6.25× (male / female; 95 % CI 1.25–∞), …' — the largest ratio between the groups large
    enough to judge, per metric."""
    parts = []
    for metric, disparity in report["largest_ratio"].items():
        if disparity["highest"] is None:
            parts.append(f"{metric.upper()}: fewer than two groups large enough to judge")
        elif disparity["ratio"] is None:
            parts.append(f"{metric.upper()}: no ratio, {disparity['lowest']} is at 0 (difference "
                         f"{fmt(disparity['difference'])})")
        else:
            low, high = disparity["ratio_ci95"] or (None, None)
            bounds = f"{fmt(low, 2)}–{'∞' if high is None else fmt(high, 2)}"
            parts.append(f"{metric.upper()}: {disparity['ratio']:.2f}× ({disparity['highest']} / "
                         f"{disparity['lowest']}; 95 % CI {bounds})")
    return "; ".join(parts)


def fairness_html(fairness: dict) -> list[str]:
    parts = ["<h2>Fairness</h2>",
             f"<p class='note'>Per group of people ({html.escape(fairness['attributes'])}): AUC, and FPR / FNR at the "
             f"default threshold {html.escape(fairness['threshold_name'])} = {fairness['threshold']:.4f}, per source "
             "file. 95 % intervals resample people. Largest ratio = highest group over lowest.</p>"]
    for set_name, reports in fairness["sets"].items():
        for report in reports:
            parts += [f"<h3>{html.escape(set_name)} by {html.escape(' × '.join(report['by']))} "
                      f"({report['people']} people, {report['units']} files)</h3>",
                      html_table(FAIRNESS_HEADER, fairness_rows(report)),
                      f"<p>Largest ratio between groups — {html.escape(disparity_text(report))}.</p>"]
            parts += [f"<p class='note'>Warning: {html.escape(warning)}</p>" for warning in report["warnings"]]
    return parts


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; margin: 0.5em 0; } .note { color: #555; font-size: 0.9em; }
"""


def render_html(metrics: dict, figures: dict[str, bytes]) -> str:
    """The whole report as one HTML string; `figures` maps a caption to PNG bytes."""
    model, calibration = metrics["model"], metrics["calibration"]
    parts = [
        f"<h1>dfdetect evaluation: {html.escape(model['name'])}</h1>",
        f"<p class='note'>{html.escape(model['kind'])} model, backbone {html.escape(model['backbone'])}, sha256 "
        f"{html.escape(model['sha256'][:16])}…; split <b>{html.escape(metrics['split'])}</b>; videos aggregated with "
        f"<b>{html.escape(metrics['aggregation'])}</b>; temperature {calibration['temperature']:.4g}, bias "
        f"{calibration['bias']:+.4g} and thresholds "
        f"from {html.escape(calibration['source'])}; toolkit {html.escape(metrics['toolkit_version'])}.</p>",
        "<h2>Headline metrics</h2>", html_table(HEADLINE, headline_rows(metrics)),
        "<h2>Cross-dataset AUC (train × test)</h2>",
        "<p class='note'>Rows: the model's training data (from its contract).</p>",
        *(html_table([f"{unit} AUC: train \\ test", *metrics["cross_dataset"]["columns"]],
                     matrix_rows(metrics["cross_dataset"], f"{unit}_auc")) for unit in ("video", "frame")),
        "<h2>Named thresholds</h2>",
        "<p class='note'>A sample is called fake when its calibrated P(fake) ≥ the threshold.</p>",
        html_table(("set", "unit", "rule", "threshold", "accuracy", "TPR", "FPR"), threshold_rows(metrics)),
        "<h2>Video aggregation rules</h2>",
        html_table(("set", "rule", "AUC", "AP", "EER", "log-loss", "acc @ default"), aggregation_rows(metrics)),
        "<h2>Breakdown</h2>",
        "<p class='note'>A method's row scores its fakes against every real of the set.</p>",
        html_table(("set", "by", "group", "frame AUC", "video AUC", "real videos", "fake videos"),
                   breakdown_rows(metrics)),
        "<h2>Calibration</h2>",
        f"<p>Video ECE {fmt(calibration['ece_before'])} at T = 1, {fmt(calibration['ece_after'])} at T = "
        f"{calibration['temperature']:.4g}, bias {calibration['bias']:+.4g}; "
        f"log-loss {fmt(calibration['log_loss_before'])} → "
        f"{fmt(calibration['log_loss_after'])}.</p>",
    ]
    if metrics.get("robustness"):
        parts += ["<h2>Robustness</h2>",
                  html_table(("set", "degradation", "level", "frame AUC", "video AUC"),
                             robustness_rows(metrics["robustness"]))]
    if metrics.get("fairness"):
        parts += fairness_html(metrics["fairness"])
    parts += ["<h2>Figures</h2>"]
    parts += [f"<h3>{html.escape(caption)}</h3>{embedded_png(png, caption)}" for caption, png in figures.items()]
    if metrics.get("skipped_crops"):
        parts.append(f"<p class='note'>{metrics['skipped_crops']} crops could not be read and were left out.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>dfdetect evaluation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def model_card(contract: ModelContract, metrics: dict | None = None) -> str:
    """A markdown model card: what the model is, how to feed it, how far to trust it."""
    prep = contract.preprocessing
    name, threshold = contract.decision_threshold()
    training = contract.training_data
    lines = [
        f"# Model card: dfdetect {contract.backbone or 'detector'}",
        "",
        "Binary deepfake detector on face crops: P(fake) per face, aggregated per video.",
        "",
        "## Model",
        "",
        markdown_table(("field", "value"), [
            ("backbone", contract.backbone), ("input", f"{prep.input_size}×{prep.input_size} {prep.color_order}"),
            ("normalisation", f"mean {list(prep.mean)}, std {list(prep.std)}"),
            ("face crop", f"margin {prep.crop_margin}, alignment {prep.alignment}, detector {contract.detector}"),
            ("video", f"{contract.frames_per_video} frames, aggregation {contract.aggregation}"),
            ("temperature", contract.temperature), ("logit bias", contract.logit_bias),
            ("decision threshold", f"{name} = {threshold:.6g} on P(fake)"),
            ("toolkit", contract.toolkit_version), ("created", contract.created_at),
            ("checkpoint sha256", contract.checkpoint_sha256 or MISSING),
        ]),
        "",
        "## Training data",
        "",
        markdown_table(("field", "value"), sorted((k, str(v)) for k, v in training.items())) if training
        else "Not recorded in the contract.",
        "",
        "## Thresholds",
        "",
        markdown_table(("rule", "P(fake) ≥"), sorted(contract.thresholds.items())),
    ]
    if contract.val_metrics:
        lines += ["", "## Validation metrics", "", "```json",
                  *json.dumps(contract.val_metrics, indent=2, sort_keys=True).splitlines(), "```"]
    if metrics:
        lines += ["", f"## Evaluation (split `{metrics['split']}`)", "",
                  markdown_table(HEADLINE, headline_rows(metrics)), "", "### Cross-dataset video AUC", "",
                  markdown_table(["train \\ test", *metrics["cross_dataset"]["columns"]],
                                 matrix_rows(metrics["cross_dataset"], "video_auc"))]
        if metrics.get("robustness"):
            lines += ["", "### Robustness (frame AUC)", "",
                      markdown_table(("set", "degradation", "level", "frame AUC", "video AUC"),
                                     robustness_rows(metrics["robustness"]))]
    lines += ["", "## Limitations", "",
              "- Scores are only as good as the face crop: use the same detector, margin and alignment.",
              "- Detectors trained on one generator family lose accuracy on others; read the cross-dataset table.",
              "- A threshold fitted for a false-positive rate holds only on data like the calibration set.", ""]
    return "\n".join(lines)

