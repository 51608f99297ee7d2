
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from dfdetect.errors import DfdetectError
from dfdetect.metrics import (
    auc_interval,
    auc_with_ties,
    average_precision,
    brier,
    ece_noise_floor,
    eer,
    expected_calibration_error,
    log_loss,
    rates_at_threshold,
    reliability_bins,
    roc_auc,
    weighted_auc,
)


def separated_scores(n_real: int, n_fake: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    scores = np.r_[rng.normal(0.0, 1.0, n_real), rng.normal(shift, 1.0, n_fake)]
    return labels, scores


def test_hand_worked_example_gives_known_auc_eer_and_rates():
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(labels, scores) == pytest.approx(0.75)
    # FNR - FPR is exactly 0 at threshold 0.4 (one fake missed, one real flagged)
    assert eer(labels, scores) == (pytest.approx(0.5), 0.4)
    rates = rates_at_threshold(labels, scores, 0.4)
    assert (rates["tp"], rates["fp"], rates["tn"], rates["fn"]) == (1, 1, 1, 1)
    assert rates["acc"] == 0.5 and rates["precision"] == 0.5 and rates["tpr"] == 0.5 and rates["tnr"] == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_matches_sklearn_roc_within_one_step(seed):
    labels, scores = separated_scores(400, 300, shift=1.5, seed=seed)
    fpr, tpr, _ = roc_curve(labels, scores)
    nearest = np.argmin(np.abs((1 - tpr) - fpr))
    reference = (fpr[nearest] + 1 - tpr[nearest]) / 2
    rate, threshold = eer(labels, scores)
    step = 1 / 300
    assert abs(rate - reference) <= step
    assert 0.15 < rate < 0.35  # two unit normals 1.5 apart cross at Phi(-0.75) = 0.227
    at = rates_at_threshold(labels, scores, threshold)
    assert abs(at["fnr"] - at["fpr"]) <= 2 * step
    assert abs(at["fpr"] - rate) <= step


def test_perfect_separation_has_zero_eer_and_unit_auc():
    labels, scores = [0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.9]
    assert roc_auc(labels, scores) == 1.0
    rate, threshold = eer(labels, scores)
    assert rate == 0.0
    assert 0.3 < threshold <= 0.7
    assert average_precision(labels, scores) == 1.0


def test_log_loss_and_brier_hand_values():
    assert log_loss([1, 0], [0.8, 0.2]) == pytest.approx(-np.log(0.8))
    assert brier([1, 0], [0.8, 0.2]) == pytest.approx(0.04)
    # a confidently wrong 0 is clipped, not infinite
    assert np.isfinite(log_loss([1], [0.0]))


def test_ece_hand_value_and_reliability_rows():
    labels, probs = [0, 1, 1, 1], [0.1, 0.1, 0.9, 1.0]
    # bin [0, .5): mean P 0.1 vs 1/2 fake; bin [.5, 1]: mean P 0.95 vs all fake
    assert expected_calibration_error(labels, probs, bins=2) == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)
    rows = reliability_bins(labels, probs, bins=4)
    assert [r["count"] for r in rows] == [2, 0, 0, 2]  # P = 1.0 joins the last bin
    assert rows[1]["mean_prob"] is None and rows[1]["frac_fake"] is None
    assert rows[3]["mean_prob"] == pytest.approx(0.95) and rows[3]["frac_fake"] == 1.0
    assert rows[0]["lower"] == 0.0 and rows[3]["upper"] == 1.0


def test_ece_small_when_calibrated_and_large_when_over_confident():
    rng = np.random.default_rng(7)
    true_logits = rng.normal(0.0, 1.5, 20000)
    labels = (rng.random(true_logits.size) < 1 / (1 + np.exp(-true_logits))).astype(int)
    calibrated = 1 / (1 + np.exp(-true_logits))
    over_confident = 1 / (1 + np.exp(-4 * true_logits))
    assert expected_calibration_error(labels, calibrated) < 0.015
    assert expected_calibration_error(labels, over_confident) > 0.1
    assert log_loss(labels, over_confident) > log_loss(labels, calibrated)


def test_ece_noise_floor_is_what_a_calibrated_model_scores_by_chance_and_shrinks_with_more_units():
    rng = np.random.default_rng(3)
    probs = 1 / (1 + np.exp(-rng.normal(0.0, 2.0, 130)))
    small = ece_noise_floor(probs, draws=400)
    # 130 units: the labels of a perfectly calibrated model alone give an ECE in the range the starter measures
    assert 0.05 < small < 0.12
    calibrated_eces = [expected_calibration_error(rng.random(probs.size) < probs, probs) for _ in range(400)]
    assert small == pytest.approx(np.median(calibrated_eces), abs=0.01)
    assert ece_noise_floor(np.tile(probs, 16), draws=100) < small / 2.5  # ~1/sqrt(n)


def test_weighted_auc_is_sklearns_with_sample_weights_ties_included():
    rng = np.random.default_rng(5)
    labels, scores = separated_scores(40, 30, 1.0, seed=5)
    scores = np.round(scores, 1)  # plenty of tied pairs
    weights = rng.integers(0, 4, labels.size).astype(float)
    assert weighted_auc(labels, scores, weights) == pytest.approx(
        roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12)
    assert weighted_auc(labels, scores, np.ones(labels.size)) == pytest.approx(roc_auc(labels, scores), abs=1e-12)


def test_auc_interval_resamples_groups_so_correlated_units_do_not_look_certain():
    labels, scores = separated_scores(30, 30, 1.2, seed=6)
    people = np.arange(labels.size)
    low, high = auc_interval(labels, scores, people)
    assert low < roc_auc(labels, scores) < high and high - low > 0.1  # 60 units: nowhere near certain
    assert auc_interval(labels, scores, people) == (low, high)  # seeded
    # every person photographed 8 times with identical scores: the same 60 people, no new evidence
    copies = (np.repeat(labels, 8), np.repeat(scores, 8))
    grouped = auc_interval(*copies, np.repeat(people, 8))
    assert grouped == pytest.approx((low, high), abs=0.03)
    naive = auc_interval(*copies, np.arange(copies[0].size))  # as if the 480 photos were independent
    assert naive[1] - naive[0] < 0.55 * (high - low)
    with pytest.raises(DfdetectError):
        auc_interval([1, 1], [0.2, 0.3], ["a", "b"])


def test_single_class_ranking_metric_raises_clear_error():
    with pytest.raises(DfdetectError) as caught:
        roc_auc([1, 1, 1], [0.2, 0.5, 0.9])
    assert caught.value.code == "bad_input" and "both real and fake" in caught.value.message


@pytest.mark.parametrize(("labels", "scores"), [
    ([0, 1, 2], [0.1, 0.2, 0.3]),
    ([0, 1], [0.1, float("nan")]),
    ([0, 1], [0.1]),
])
def test_bad_input_raises_bad_input(labels, scores):
    with pytest.raises(DfdetectError) as caught:
        eer(labels, scores)
    assert caught.value.code == "bad_input"


def test_probabilities_outside_unit_interval_are_rejected():
    with pytest.raises(DfdetectError, match="sigmoid"):
        expected_calibration_error([0, 1], [-2.0, 3.0])


def test_auc_with_ties_is_the_plain_auc_at_zero_and_halves_close_pairs():
    labels, scores = separated_scores(40, 30, shift=1.0, seed=4)
    assert auc_with_ties(labels, scores, 0.0) == pytest.approx(roc_auc(labels, scores))
    # fake 0.52 vs real 0.5 is a tie at 0.05, a win at 0.01; fake 0.3 vs real 0.5 loses either way
    assert auc_with_ties([0, 1, 1], [0.5, 0.52, 0.3], 0.05) == pytest.approx(0.25)
    assert auc_with_ties([0, 1, 1], [0.5, 0.52, 0.3], 0.01) == pytest.approx(0.5)
