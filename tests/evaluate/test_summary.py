"""Per-video aggregation, subgroup breakdowns and the cross-dataset matrix on hand-made tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.summary import (
    binary_metrics,
    breakdown,
    compare_aggregations,
    cross_dataset_matrix,
    source_logits,
)
from dfdetect.metrics import eer, roc_auc
from dfdetect.model.contract import LogitScaling


def crops_table(rows: list[tuple[str, int, float, str]], dataset: str = "d") -> pd.DataFrame:
    return pd.DataFrame([{"source_path": s, "label": y, "logit": z, "method": m, "dataset": dataset, "set": dataset}
                         for s, y, z, m in rows])


def test_confident_rule_is_applied_after_the_calibration_like_the_scanner():
    # at T = 1 two of the three faces are confidently fake (p > 0.8 ⇔ logit > 1.386) → mean of those;
    # at T = 4 none is (3/4 < 1.386), nor confidently real → plain mean, times T back on the raw scale;
    # at T = 4 with bias +1 the calibrated logits are 1.75, 1.5, 0.75: two are confident again → 2.5 raw
    table = crops_table([("v", 1, 3.0, "m"), ("v", 1, 2.0, "m"), ("v", 1, -1.0, "m")])
    assert source_logits(table, "confident", LogitScaling(1.0))["logit"].item() == pytest.approx(2.5)
    assert source_logits(table, "confident", LogitScaling(4.0))["logit"].item() == pytest.approx(4.0 / 3)
    assert source_logits(table, "confident", LogitScaling(4.0, 1.0))["logit"].item() == pytest.approx(2.5)
    assert source_logits(table, "topk_mean:k=2", LogitScaling(2.0, -0.5))["logit"].item() == pytest.approx(2.5)
    assert source_logits(table, "median", LogitScaling())["crops"].item() == 3


def test_a_source_with_two_labels_is_rejected():
    with pytest.raises(DfdetectError, match="both labels"):
        source_logits(crops_table([("v", 1, 1.0, "m"), ("v", 0, 0.0, "")]), "mean", LogitScaling())


def test_method_breakdown_scores_each_methods_fakes_against_all_reals():
    table = crops_table([("r1", 0, -2.0, ""), ("r2", 0, 0.5, ""), ("a1", 1, 1.0, "a"), ("a2", 1, 2.0, "a"),
                         ("b1", 1, 0.0, "b"), ("b2", 1, -3.0, "b")])
    table["compression"] = ["c23", "c40", "c23", "c40", "c23", "c40"]
    result = breakdown(table, "mean", LogitScaling())
    assert result["method"]["a"]["video"]["auc"] == 1.0  # both a-fakes above both reals
    assert result["method"]["b"]["video"]["auc"] == pytest.approx(0.25)  # one of four pairs ranked right
    assert result["method"]["a"]["video"]["n_real"] == 2 and result["method"]["a"]["video"]["n_fake"] == 2
    assert set(result["compression"]) == {"c23", "c40"}
    assert result["compression"]["c23"]["frame"]["n"] == 3
    assert set(result["dataset"]) == {"d"}


def test_aggregation_rules_are_compared_on_the_same_videos():
    table = crops_table([("r", 0, -1.0, ""), ("r", 0, 2.5, ""), ("f", 1, 0.5, "m"), ("f", 1, 0.6, "m"),
                         ("g", 1, 3.0, "m"), ("g", 1, -4.0, "m")])
    compared = compare_aggregations(table, ["mean", "max"], LogitScaling(), {"default": 0.5}, "default")
    # mean: r 0.75, f 0.55, g -0.5 → r outranks both fakes; max: r 2.5, f 0.6, g 3.0 → g above r
    assert compared["mean"]["auc"] == 0.0 and compared["max"]["auc"] == 0.5
    assert compared["mean"]["acc_at_default"] == pytest.approx(1 / 3)
    assert math.isclose(compared["max"]["fpr_at_default"], 1.0)


def test_cross_dataset_matrix_marks_in_domain_cells():
    per_set = {name: {"frame": {"auc": auc}, "video": {"auc": auc + 0.01}}
               for name, auc in (("ffpp", 0.9), ("celebdf", 0.7), ("ffpp+dfdc", 0.8))}
    matrix = cross_dataset_matrix(["ffpp"], per_set)
    assert matrix["rows"] == ["ffpp"] and matrix["columns"] == ["ffpp", "celebdf", "ffpp+dfdc"]
    assert matrix["in_domain"] == [[True, False, True]]
    assert matrix["frame_auc"] == [[0.9, 0.7, 0.8]]
    assert cross_dataset_matrix([], per_set)["rows"] == ["unknown"]


def test_binary_metrics_two_classes_is_json_and_consistent():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(200, int), np.ones(150, int)]
    logits = np.r_[rng.normal(0.0, 1.0, 200), rng.normal(2.0, 1.0, 150)]
    result = binary_metrics(labels, logits, {"default": 0.5, "strict": 0.9}, LogitScaling(2.0, -0.3))
    json.dumps(result, allow_nan=False)
    probs = 1 / (1 + np.exp(-(logits / 2.0 - 0.3)))
    assert result["n"] == 350 and result["n_fake"] == 150 and result["n_real"] == 200
    assert result["auc"] == pytest.approx(roc_auc(labels, logits))  # ranking is unchanged by T
    assert result["eer"] == pytest.approx(eer(labels, probs)[0])
    assert result["at_threshold"]["strict"]["threshold"] == 0.9
    assert result["at_threshold"]["strict"]["fp"] == int(((probs >= 0.9) & (labels == 0)).sum())
    assert result["at_threshold"]["strict"]["fpr"] < result["at_threshold"]["default"]["fpr"]
    assert len(result["reliability"]) == 15
    assert result["undefined"] == {}


@pytest.mark.parametrize("label", [0, 1])
def test_binary_metrics_single_class_reports_none_with_reason(label):
    labels = np.full(20, label)
    logits = np.linspace(-3, 3, 20)
    result = binary_metrics(labels, logits, {"default": 0.5})
    json.dumps(result, allow_nan=False)
    assert result["auc"] is None and result["eer"] is None and result["eer_threshold"] is None
    assert "both classes" in result["undefined"]["auc"]
    assert np.isfinite(result["log_loss"]) and np.isfinite(result["ece"])
    rates = result["at_threshold"]["default"]
    assert rates["acc"] == 0.5  # half the logits are >= 0
    if label == 0:
        assert result["average_precision"] is None and rates["tpr"] is None and rates["fpr"] == 0.5
    else:
        assert result["average_precision"] == pytest.approx(1.0) and rates["fpr"] is None and rates["tpr"] == 0.5
