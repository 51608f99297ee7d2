"""How a model does on labelled media files: the numbers behind `dfdetect evaluate --media`.

The crop-set evaluation (`dfdetect evaluate --crops`) judges a model on faces cut by `extract`; this one
judges it on the files themselves, scored by the scanner exactly as users will run it, so a model is
measured on real benchmark videos the way it will be deployed. Everything here is a pure function of
a labels table and the scanner's records; the scanning itself is done by the caller.

The labels file is a CSV with columns `path,label` (label `real`/`fake` or 0/1) and optionally
`group` (the leakage unit the confidence interval resamples: a person, or a real video with the fakes
made from it; default one group per file), `dataset` (reported separately) and `pair` (files sharing
a pair value are a real and the fakes made from it: the share of fakes scoring above their real is
reported). Relative paths are taken from the CSV's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.report import fmt, html_table, interval
from dfdetect.metrics import auc_interval, rates_at_threshold, roc_auc
from dfdetect.records import LABELS

MEDIA_LABEL_COLUMNS = ("path", "label")
MEDIA_OPTIONAL_COLUMNS = ("group", "dataset", "pair")
# fewer groups than this on either side and a bootstrap interval says little: it is left out, with why
MIN_INTERVAL_GROUPS = 3


def read_media_labels(path: str | Path) -> pd.DataFrame:
    """The labels CSV as a table with absolute `path`, integer `label` and every optional column filled."""
    path = Path(path)
    if not path.is_file():
        raise DfdetectError("missing_path", "labels CSV not found", path, "give a CSV with columns path,label")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DfdetectError("bad_input", f"not a readable CSV ({exc.__class__.__name__})", path,
                            "save it as UTF-8 CSV with a header row path,label") from exc
    missing = [c for c in MEDIA_LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise DfdetectError("bad_input", f"labels CSV lacks columns {missing}", path,
                            "add a header row with at least path,label")
    if table.empty:
        raise DfdetectError("empty_dataset", "labels CSV has no rows", path, "add one row per media file")
    names = table["label"].str.strip().str.lower()
    labels = names.map(lambda name: LABELS.get(name, {"0": 0, "1": 1}.get(name)))
    bad = labels.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DfdetectError("bad_input", f"{int(bad.sum())} rows have a label other than real/fake/0/1 "
                            f"(first: row {row + 2}, {table['label'].iloc[row]!r})", path, "use real or fake")
    files = [Path(os.path.abspath(path.parent / p)) for p in table["path"]]
    absent = [f for f in files if not f.exists()]
    if absent:
        raise DfdetectError("missing_path", f"{len(absent)} of {len(files)} listed files do not exist "
                            f"(first: {absent[0]})", path, "fix the paths (relative ones start at the CSV's folder)")
    table = table.assign(path=[str(f) for f in files], label=labels.astype(int))
    for column in MEDIA_OPTIONAL_COLUMNS:
        if column not in table.columns or (table[column] == "").all():
            table[column] = table["path"] if column == "group" else ""
        elif column == "group":
            table[column] = table[column].where(table[column] != "", table["path"])
    if table["path"].duplicated().any():
        raise DfdetectError("bad_input", f"{int(table['path'].duplicated().sum())} files are listed twice "
                            f"(first: {table.loc[table['path'].duplicated(), 'path'].iloc[0]})", path,
                            "list each file once")
    return table


def labelled_scores(labels: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The labels table joined with the scanner's `status`, `probability` and `media_type` per file (by path)."""
    scored = records.drop_duplicates("path", keep="last").set_index("path")[["status", "probability", "media_type"]]
    table = labels.join(scored, on="path")
    unscanned = table["status"].isna()
    if unscanned.any():
        raise DfdetectError("bad_input", f"{int(unscanned.sum())} labelled files have no scan record "
                            f"(first: {table.loc[unscanned, 'path'].iloc[0]})", None, "re-run with --resume")
    return table


def _auc_block(table: pd.DataFrame) -> dict:
    """AUC with its group-bootstrap interval, or None with the reason it is undefined."""
    labels, probs = table["label"].to_numpy(), table["probability"].to_numpy(np.float64)
    block: dict = {"n": len(table), "n_fake": int(labels.sum()), "n_real": int((labels == 0).sum()),
                   "groups": int(table["group"].nunique()), "auc": None, "auc_ci95": None, "note": ""}
    if block["n_fake"] == 0 or block["n_real"] == 0:
        block["note"] = "undefined: one class only"
        return block
    block["auc"] = roc_auc(labels, probs)
    groups_per_class = table.groupby("label")["group"].nunique()
    if groups_per_class.min() < MIN_INTERVAL_GROUPS:
        scarce = "fake" if groups_per_class[1] < MIN_INTERVAL_GROUPS else "real"
        block["note"] = f"no interval: fewer than {MIN_INTERVAL_GROUPS} groups hold a {scarce}"
    else:
        block["auc_ci95"] = list(auc_interval(labels, probs, table["group"].to_numpy()))
    return block


def pair_wins(table: pd.DataFrame) -> dict:
    """Share of fakes scoring above the real of their pair (ties count half), overall and per dataset.

    The pair comparison holds the person, scene and encoding fixed, so it isolates the manipulation:
    a detector reading quality or identity rather than the manipulation scores near 0.5 here however
    its AUC looks."""
    outcomes: list[tuple[str, float]] = []
    for _, rows in table[table["pair"] != ""].groupby("pair"):
        reals = rows.loc[rows["label"] == 0, "probability"].to_numpy(np.float64)
        if reals.size:
            outcomes += [(fake.dataset, float(np.mean((fake.probability > reals) + 0.5 * (fake.probability == reals))))
                         for fake in rows[rows["label"] == 1].itertuples()]
    if not outcomes:
        return {}
    parts = {"all": [won for _, won in outcomes]}
    for dataset, won in outcomes:
        if dataset:
            parts.setdefault(dataset, []).append(won)
    return {name: {"pairs": len(values), "fake_above_real": float(np.mean(values))} for name, values in parts.items()}


def media_metrics(table: pd.DataFrame, thresholds: dict[str, float], default_threshold: str) -> dict:
    """metrics.json's content for labelled files joined with their scan records.

    Files the scanner could not score (no face, unreadable) are left out of every rate and counted per
    label, since a score invented for them would move the AUC by a rule of our choosing."""
    scored = table[table["status"] == "ok"].copy()
    unscored = table[table["status"] != "ok"]
    metrics: dict = {
        "files": len(table),
        "scored": len(scored),
        "unscored": {f"{status}_{('real', 'fake')[int(label)]}": int(count)
                     for (status, label), count in unscored.groupby(["status", "label"]).size().items()},
        "overall": _auc_block(scored),
        "per_dataset": {name or "(none)": _auc_block(rows) for name, rows in scored.groupby("dataset")},
        "per_media_type": {name: _auc_block(rows) for name, rows in scored.groupby("media_type")},
        "thresholds": {},
        "default_threshold": default_threshold,
        "pairs": pair_wins(scored),
    }
    labels, probs = scored["label"].to_numpy(), scored["probability"].to_numpy(np.float64)
    for name, value in thresholds.items():
        rates = rates_at_threshold(labels, probs, value) if len(scored) else {}
        metrics["thresholds"][name] = {"threshold": value, "fpr": rates.get("fpr"), "fnr": rates.get("fnr"),
                                       "tp": rates.get("tp"), "fp": rates.get("fp"), "tn": rates.get("tn"),
                                       "fn": rates.get("fn")}
    return metrics


def _auc_row(name: str, block: dict) -> list[object]:
    return [name, block["n"], block["n_fake"], block["n_real"], block["groups"], fmt(block["auc"]),
            interval(block["auc_ci95"]), block["note"]]


def render_media_html(metrics: dict) -> str:
    """A self-contained report.html: AUCs with intervals, rates at the thresholds, the pair test."""
    auc_header = ["part", "files", "fake", "real", "groups", "AUC", "95 % CI (groups)", "note"]
    auc_rows = [_auc_row("all", metrics["overall"])]
    auc_rows += [_auc_row(f"dataset {name}", block) for name, block in metrics["per_dataset"].items()]
    auc_rows += [_auc_row(f"{name} files", block) for name, block in metrics["per_media_type"].items()]
    threshold_rows = [[name + (" (default)" if name == metrics["default_threshold"] else ""), fmt(t["threshold"]),
                       fmt(t["fpr"]), fmt(t["fnr"])] for name, t in metrics["thresholds"].items()]
    pair_rows = [[name, block["pairs"], fmt(block["fake_above_real"])] for name, block in metrics["pairs"].items()]
    model = metrics.get("model", {})
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'><title>dfdetect media evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
        "<h1>Media evaluation</h1>",
        f"<p>model {model.get('name', '')} (sha256 {model.get('sha256', '')[:12]}), {metrics['files']} files, "
        f"{metrics['scored']} scored; unscored: {metrics['unscored'] or 'none'}</p>",
        "<h2>AUC</h2>", html_table(auc_header, auc_rows),
        "<h2>Error rates at the model's thresholds</h2>", html_table(["threshold", "p", "FPR", "FNR"], threshold_rows),
        "<h2>Fakes scoring above their own real</h2>",
        html_table(["part", "fakes in pairs", "share above real"], pair_rows) if pair_rows else "<p>no pairs</p>",
        "</body></html>",
    ])

