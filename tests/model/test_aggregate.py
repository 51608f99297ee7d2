"""Aggregation rules on hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from dfdetect.errors import DfdetectError
from dfdetect.model.aggregate import AGGREGATIONS, aggregate, parse_rule

LOGITS = [-2.0, 0.5, 1.0, 4.0, 9.0]


def test_simple_rules_on_a_hand_made_example():
    assert aggregate(LOGITS, "mean") == pytest.approx(2.5)
    assert aggregate(LOGITS, "median") == pytest.approx(1.0)
    assert aggregate(LOGITS, "max") == pytest.approx(9.0)
    assert aggregate(LOGITS, "topk_mean", k=2) == pytest.approx(6.5)
    assert aggregate(LOGITS, "topk_mean:k=3") == pytest.approx((1.0 + 4.0 + 9.0) / 3)
    assert aggregate(LOGITS, "topk_mean:k=3", k=1) == pytest.approx(9.0)  # keyword overrides the spec
    assert aggregate(LOGITS, "topk_mean", k=50) == pytest.approx(2.5)  # k beyond the count: all faces
    assert set(AGGREGATIONS) >= {"mean", "median", "max", "topk_mean", "confident"}


def test_saturated_logits_keep_their_order_where_float32_sigmoid_averaging_ties():
    strong, weak = np.array([30.0, 40.0]), np.array([18.0, 20.0])
    as_float32 = [np.mean(1 / (1 + np.exp(-x.astype(np.float32)))) for x in (strong, weak)]
    assert as_float32[0] == as_float32[1] == np.float32(1.0)  # the tie the logit rules avoid
    for rule in ("mean", "median", "max", "topk_mean", "confident"):
        assert aggregate(strong, rule) > aggregate(weak, rule), rule
    assert aggregate(strong, "mean") == 35.0 and aggregate(weak, "mean") == 19.0


def test_confident_rule_averages_only_confident_faces_when_there_are_enough():
    fake_side = [logit(0.9), logit(0.95), logit(0.85), logit(0.3), logit(0.5)]  # 3/5 > 0.8
    assert aggregate(fake_side, "confident") == pytest.approx(np.mean(fake_side[:3]))
    real_side = [logit(0.1), logit(0.05), logit(0.15), logit(0.6), logit(0.7)]  # 3/5 < 0.2
    assert aggregate(real_side, "confident") == pytest.approx(np.mean(real_side[:3]))
    unsure = [logit(0.9), logit(0.5), logit(0.6), logit(0.4), logit(0.1)]  # 1/5 each side: plain mean
    assert aggregate(unsure, "confident") == pytest.approx(np.mean(unsure))
    split = [logit(0.9)] * 5 + [logit(0.1)] * 5  # both sides at 50 %: fakes win
    assert aggregate(split, "confident") == pytest.approx(logit(0.9))
    assert aggregate(fake_side, "confident", min_fraction=0.7) == pytest.approx(np.mean(fake_side))


def test_rule_specs_and_their_errors():
    assert parse_rule("topk_mean:k=5, ") == ("topk_mean", {"k": 5})
    assert parse_rule("confident:high=0.9,min_fraction=0.5") == ("confident", {"high": 0.9, "min_fraction": 0.5})
    for bad_call in (lambda: aggregate(LOGITS, "vote"), lambda: aggregate(LOGITS, "topk_mean:k"),
                     lambda: aggregate(LOGITS, "mean:k=2"), lambda: aggregate(LOGITS, "topk_mean:k=0")):
        with pytest.raises(DfdetectError) as caught:
            bad_call()
        assert caught.value.code == "bad_config"
    with pytest.raises(DfdetectError) as empty:
        aggregate([], "mean")
    assert empty.value.code == "bad_input"
