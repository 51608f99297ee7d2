import argparse
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import f1_score, roc_auc_score

from dfdetect.calibrate import (
    add_arguments,
    calibrate_scores,
    fit_platt,
    fit_temperature,
    named_thresholds,
    run,
    too_few_negatives,
    video_logits,
)
from dfdetect.errors import DfdetectError
from dfdetect.metrics import eer, rates_at_threshold
from dfdetect.model.calibration import Calibration, read_calibration, write_calibration


def bernoulli_logits(n: int, seed: int, spread: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from them, so sigmoid(true logit) is perfectly calibrated."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, spread, n)
    labels = (rng.random(n) < expit(true_logits)).astype(int)
    return true_logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_scaling_recovers_known_temperature(true_temperature):
    true_logits, labels = bernoulli_logits(20000, seed=11)
    fitted = fit_temperature(true_logits * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)


@pytest.mark.parametrize(("true_temperature", "true_bias"), [(2.0, -1.0), (0.7, 0.5)])
def test_platt_scaling_recovers_known_temperature_and_bias(true_temperature, true_bias):
    true_logits, labels = bernoulli_logits(20000, seed=12)
    scaling = fit_platt((true_logits - true_bias) * true_temperature, labels)  # calibrated = raw / T + bias
    assert scaling.temperature == pytest.approx(true_temperature, rel=0.05)
    assert scaling.bias == pytest.approx(true_bias, abs=0.06)


def test_platt_rejects_logits_that_rank_reals_above_fakes():
    true_logits, labels = bernoulli_logits(2000, seed=13)
    with pytest.raises(DfdetectError, match="do not rank fakes above reals") as caught:
        fit_platt(-true_logits, labels)
    assert caught.value.code == "bad_input"


def test_a_shift_no_temperature_can_undo_is_removed_by_platt():
    # every score pushed 2 logits towards "real", as a loss that holds degraded reals down can do
    true_logits, labels = bernoulli_logits(5000, seed=14, spread=1.5)
    table = pd.DataFrame({"logit": true_logits - 2.0, "label": labels,
                          "source_path": [f"img{i}.jpg" for i in range(labels.size)]})
    temperature_only = calibrate_scores(table, by="frame")
    platt = calibrate_scores(table, by="frame", method="platt")
    assert temperature_only.bias == 0.0 and temperature_only.method == "temperature"
    assert platt.method == "platt" and platt.bias == pytest.approx(2.0, abs=0.15)
    assert platt.temperature == pytest.approx(1.0, rel=0.1)
    assert platt.after["ece"] < 0.03 < 0.08 < temperature_only.after["ece"]
    probs = expit(table["logit"].to_numpy() / platt.temperature + platt.bias)  # thresholds live on these
    assert platt.thresholds["eer"] == pytest.approx(eer(labels, probs)[1])


def test_temperature_of_perfectly_separated_scores_hits_lower_bound():
    logits = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    assert fit_temperature(logits, (logits > 0).astype(int)) < 0.01


@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_fpr_thresholds_hit_their_target(target):
    rng = np.random.default_rng(5)
    n_real, n_fake = 2000, 1000
    labels = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    probs = expit(np.r_[rng.normal(-1.0, 1.0, n_real), rng.normal(1.0, 1.0, n_fake)])
    thresholds = named_thresholds(labels, probs, fprs=[target])
    achieved = rates_at_threshold(labels, probs, thresholds[f"fpr@{target:g}"])["fpr"]
    assert achieved <= target
    assert achieved > target - 1.5 / n_real  # as close as one real allows


def test_fpr_threshold_with_ties_never_exceeds_target():
    # three reals share the top score: flagging any of them would give FPR 0.3 > 0.1
    labels = np.array([0] * 10 + [1] * 4)
    probs = np.array([0.9, 0.9, 0.9, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.95, 0.9, 0.6, 0.3])
    thresholds = named_thresholds(labels, probs, fprs=[0.1])
    assert thresholds["fpr@0.1"] > 0.9
    assert rates_at_threshold(labels, probs, thresholds["fpr@0.1"])["fp"] == 0


def test_max_f1_and_youden_are_best_over_all_candidate_thresholds():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    probs = np.round(expit(rng.normal(1.2 * (2 * labels - 1), 1.5)), 3)  # rounding makes ties
    thresholds = named_thresholds(labels, probs)
    candidates = np.unique(probs)
    best_f1 = max(f1_score(labels, probs >= t) for t in candidates)
    assert f1_score(labels, probs >= thresholds["max_f1"]) == pytest.approx(best_f1)

    def youden(t: float) -> float:
        rates = rates_at_threshold(labels, probs, t)
        return rates["tpr"] - rates["fpr"]

    assert youden(thresholds["youden"]) == pytest.approx(max(youden(t) for t in candidates))
    assert thresholds["default"] == thresholds["eer"]


def test_default_threshold_follows_the_named_rule_and_rejects_unknown_names():
    labels, probs = np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.6, 0.4, 0.8, 0.3, 0.9])
    assert named_thresholds(labels, probs, default="youden")["default"] == named_thresholds(labels, probs)["youden"]
    with pytest.raises(DfdetectError) as caught:
        named_thresholds(labels, probs, default="fpr@0.5")
    assert caught.value.code == "bad_config" and "fpr@0.01" in caught.value.hint


def test_too_few_negatives_rule():
    assert too_few_negatives(99, 0.01) and not too_few_negatives(100, 0.01)
    assert too_few_negatives(19, 0.05) and not too_few_negatives(20, 0.05)
    assert too_few_negatives(33, 0.03) and not too_few_negatives(34, 0.03)


def test_calibration_lowers_ece_of_over_confident_scores():
    true_logits, labels = bernoulli_logits(5000, seed=2, spread=1.5)
    table = pd.DataFrame({"logit": 3.0 * true_logits, "label": labels,
                          "source_path": [f"img{i}.jpg" for i in range(labels.size)]})
    calibration = calibrate_scores(table, by="frame")
    assert calibration.temperature == pytest.approx(3.0, rel=0.1)
    assert calibration.before["ece"] > 0.08
    assert calibration.after["ece"] < 0.03
    assert calibration.after["log_loss"] < calibration.before["log_loss"]
    assert calibration.fitted_on["counts"] == {"units": 5000, "real": int((labels == 0).sum()),
                                               "fake": int(labels.sum()), "crops": 5000}
    assert calibration.warnings == []
    # the headline numbers export copies into the contract, at the fitted temperature
    probs = expit(table["logit"].to_numpy() / calibration.temperature)
    assert calibration.metrics["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert calibration.metrics["ece"] == calibration.after["ece"] and calibration.metrics["n"] == 5000
    assert calibration.metrics["unit"] == "frame" and 0 < calibration.metrics["brier"] < 0.25


def test_separated_set_keeps_unit_temperature_and_usable_thresholds():
    logits = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    table = pd.DataFrame({"logit": logits, "label": (logits > 0).astype(int), "source_path": list("abcdef")})
    calibration = calibrate_scores(table, by="frame")
    assert calibration.temperature == 1.0
    assert any("perfectly separated" in w for w in calibration.warnings)
    # the EER threshold is the lowest fake's probability, not a saturated 1.0
    assert calibration.thresholds["eer"] == pytest.approx(expit(np.array(1.0)))
    assert calibration.after == calibration.before


def test_video_mode_averages_logits_per_source_in_float64():
    table = pd.DataFrame({
        "logit": np.array([1.0, 2.0, 6.0, -4.0, -2.0, 0.5], dtype=np.float32),
        "label": [1, 1, 1, 0, 0, 1],
        "source_path": ["a.mp4", "a.mp4", "a.mp4", "b.mp4", "b.mp4", "c.jpg"],
    })
    videos = video_logits(table).set_index("source_path")
    assert videos["logit"].dtype == np.float64
    assert videos.loc["a.mp4", "logit"] == 3.0 and videos.loc["b.mp4", "logit"] == -3.0
    assert videos.loc["c.jpg", "logit"] == 0.5 and videos.loc["b.mp4", "label"] == 0
    assert video_logits(table, "median").set_index("source_path").loc["a.mp4", "logit"] == 2.0
    calibration = calibrate_scores(table, by="video")
    assert calibration.fitted_on["counts"] == {"units": 3, "real": 1, "fake": 2, "crops": 6}


def test_video_with_mixed_labels_is_rejected():
    table = pd.DataFrame({"logit": [1.0, 2.0, -1.0], "label": [1, 0, 0], "source_path": ["a.mp4", "a.mp4", "b.mp4"]})
    with pytest.raises(DfdetectError) as caught:
        calibrate_scores(table)
    assert caught.value.code == "bad_input" and "a.mp4" in caught.value.message


def test_calibration_json_round_trip(tmp_path):
    true_logits, labels = bernoulli_logits(500, seed=4)
    table = pd.DataFrame({"logit": 2 * true_logits, "label": labels, "source_path": [str(i) for i in range(500)]})
    calibration = calibrate_scores(table, by="frame", default="fpr@0.05", fitted_on={"split": "val"})
    assert Calibration.from_json(calibration.to_json()) == calibration
    path = write_calibration(calibration, tmp_path / "nested" / "calibration.json")
    restored = read_calibration(path)
    assert restored == calibration
    assert restored.thresholds["default"] == restored.thresholds["fpr@0.05"]
    assert restored.fitted_on["split"] == "val" and restored.default_threshold == "fpr@0.05"


def test_reading_a_foreign_json_names_the_file(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text('{"schema": "something/v9"}')
    with pytest.raises(DfdetectError) as caught:
        read_calibration(path)
    assert caught.value.code == "bad_input" and caught.value.path == str(path)
    with pytest.raises(DfdetectError) as caught:
        read_calibration(tmp_path / "absent.json")
    assert caught.value.code == "missing_path"


def write_scores(path, n_videos_per_label: int, crops_per_video: int = 3, seed: int = 0):
    """A per-crop scores table: val videos overlap but lean towards their label, train videos are
    pure noise, so fitting on the wrong split would show in the counts."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("train", "val"):
        for label in (0, 1):
            for video in range(n_videos_per_label):
                centre = rng.normal(2.0 * label - 1.0 if split == "val" else 0.0, 1.0)
                for _ in range(crops_per_video):
                    rows.append({"logit": centre + rng.normal(0, 1.0), "label": label, "split": split,
                                 "source_path": f"/data/{split}/{label}/{video}.mp4"})
    rows.append({"logit": float("nan"), "label": 1, "split": "val", "source_path": "/data/val/1/broken.mp4"})
    pd.DataFrame(rows).to_parquet(path, index=False)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_fits_on_val_videos_and_warns_about_too_few_reals(tmp_path, capsys):
    scores = tmp_path / "scores.parquet"
    write_scores(scores, n_videos_per_label=30)
    out = tmp_path / "calibration.json"
    run(parse(["--scores", str(scores), "--out", str(out), "--default", "youden"]))

    calibration = read_calibration(out)
    assert calibration.fitted_on["split"] == "val" and calibration.fitted_on["by"] == "video"
    assert calibration.fitted_on["counts"] == {"units": 60, "real": 30, "fake": 30, "crops": 180}
    assert len(calibration.fitted_on["scores_sha256"]) == 64
    assert calibration.default_threshold == "youden"
    assert calibration.thresholds["default"] == calibration.thresholds["youden"]
    assert set(calibration.thresholds) == {"eer", "fpr@0.01", "fpr@0.05", "max_f1", "youden", "default"}
    captured = capsys.readouterr()
    assert "temperature" in captured.out and "before" in captured.out and "after" in captured.out
    assert "youden" in captured.out and str(out) in captured.out
    assert "fpr@0.01: only 30 real videos" in captured.err  # 30 < 100
    assert "fpr@0.05" not in captured.err  # 30 >= 20
    assert "skipping 1 rows" in captured.err
    assert "separated" not in captured.err and "bound" not in captured.err
    assert 0.1 < calibration.temperature < 10


def test_cli_frame_mode_and_custom_split(tmp_path):
    scores = tmp_path / "scores.parquet"
    write_scores(scores, n_videos_per_label=10)
    out = tmp_path / "calibration.json"
    run(parse(["--scores", str(scores), "--out", str(out), "--by", "frame", "--split", "train", "--fpr", "0.1"]))
    calibration = read_calibration(out)
    assert calibration.fitted_on["counts"] == {"units": 60, "real": 30, "fake": 30, "crops": 60}
    assert set(calibration.thresholds) == {"eer", "fpr@0.1", "max_f1", "youden", "default"}
    assert calibration.method == "temperature" and calibration.bias == 0.0


def test_cli_platt_method_writes_a_bias(tmp_path, capsys):
    scores = tmp_path / "scores.parquet"
    write_scores(scores, n_videos_per_label=30)  # val fakes centred at +1, reals at -1: the bias is small
    out = tmp_path / "calibration.json"
    run(parse(["--scores", str(scores), "--out", str(out), "--method", "platt"]))
    calibration = read_calibration(out)
    assert calibration.method == "platt" and calibration.bias != 0.0
    assert f"bias {calibration.bias:+.4f}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse(["--scores", str(scores), "--out", str(out), "--method", "isotonic"])


def test_cli_errors_name_the_scores_file(tmp_path):
    scores = tmp_path / "scores.parquet"
    write_scores(scores, n_videos_per_label=5)
    with pytest.raises(DfdetectError) as caught:
        run(parse(["--scores", str(scores), "--out", str(tmp_path / "c.json"), "--split", "test"]))
    assert caught.value.code == "empty_dataset" and caught.value.path == str(scores)
    assert "train" in caught.value.hint

    reals_only = tmp_path / "reals.parquet"
    pd.DataFrame({"logit": [0.1, 0.2], "label": [0, 0], "split": ["val", "val"],
                  "source_path": ["a", "b"]}).to_parquet(reals_only)
    with pytest.raises(DfdetectError) as caught:
        run(parse(["--scores", str(reals_only), "--out", str(tmp_path / "c.json")]))
    assert caught.value.code == "bad_input" and caught.value.path == str(reals_only)

    with pytest.raises(DfdetectError) as caught:
        run(parse(["--scores", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "c.json")]))
    assert caught.value.code == "missing_path"
    assert not (tmp_path / "c.json").exists()


def test_cli_model_needs_crops_and_reads_older_calibration_files(tmp_path):
    with pytest.raises(DfdetectError, match="--model needs --crops") as caught:
        run(parse(["--model", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "c.json")]))
    assert caught.value.code == "bad_config"
    with pytest.raises(SystemExit):  # argparse: one source of scores, not both
        parse(["--model", "m.onnx", "--scores", "s.parquet", "--out", "c.json"])
    older = {"schema": "dfdetect.calibration/v1", "temperature": 1.5, "thresholds": {"eer": 0.4, "default": 0.4},
             "default_threshold": "eer", "fitted_on": {}, "before": {}, "after": {}, "warnings": []}
    assert Calibration.from_json(json.dumps(older)).metrics == {}
    assert Calibration.from_json(json.dumps(older)).bias == 0.0
