"""`dfdetect evaluate` end to end on two crop sets with a detector whose every score is known
(see conftest.py): the report's numbers are checked against an independent computation."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from dfdetect import calibrate
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.evaluation import DEFAULT_AGGREGATIONS, evaluate
from dfdetect.evaluate.robustness import SWEEPS
from dfdetect.metrics import auc_interval
from dfdetect.model.calibration import read_calibration
from dfdetect.model.scoring import load_crop_sets
from dfdetect.recipes import evaluate_command as evaluate_cli
from dfdetect.records import read_crops


def run_cli(module, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    module.run(parser.parse_args(argv))


@pytest.fixture(scope="module")
def report(tmp_path_factory, crop_sets, redness_model) -> Path:
    out = tmp_path_factory.mktemp("report")
    run_cli(evaluate_cli, ["--model", str(redness_model), "--crops", str(crop_sets["tint"]), str(crop_sets["swap"]),
                           "--out", str(out), "--robustness", "--model-card"])
    return out


@pytest.fixture(scope="module")
def metrics(report) -> dict:
    return json.loads((report / "metrics.json").read_text())


def test_scores_are_the_detectors_logits_of_the_test_crops(report, crop_sets, oracle_logits):
    scores = pd.read_parquet(report / "scores.parquet")
    expected_rows = sum(int((read_crops(d)["split"] == "test").sum()) for d in crop_sets.values())
    assert len(scores) == expected_rows == 48 and set(scores["split"]) == {"test"}
    assert {"logit", "probability", "label", "source_path", "split", "dataset", "method", "crop_path", "set"} <= \
        set(scores.columns)
    np.testing.assert_allclose(scores["logit"], oracle_logits(scores["crop_path"]), atol=1e-4)
    np.testing.assert_allclose(scores["probability"], 1 / (1 + np.exp(-scores["logit"])), atol=1e-12)


def test_frame_and_video_metrics_match_sklearn(report, metrics):
    scores = pd.read_parquet(report / "scores.parquet")
    for name in ("tint", "swap"):
        rows = scores[scores["set"] == name]
        videos = rows.groupby("source_path").agg(label=("label", "first"), logit=("logit", "mean"))
        result = metrics["sets"][name]
        assert result["frame"]["n"] == 24 and result["video"]["n"] == 12
        assert result["frame"]["auc"] == pytest.approx(roc_auc_score(rows["label"], rows["logit"]), abs=1e-9)
        assert result["video"]["auc"] == pytest.approx(roc_auc_score(videos["label"], videos["logit"]), abs=1e-9)
        assert set(result["video"]["at_threshold"]) == {"default"}
        people = rows.groupby("source_path")["group"].first()  # the interval resamples people, not videos
        expected = auc_interval(videos["label"], videos["logit"], people)
        assert result["video"]["auc_ci95"] == pytest.approx(list(expected))
        low, high = result["video"]["auc_ci95"]
        assert low <= result["video"]["auc"] <= high
        assert 0.0 <= result["video"]["eer"] <= 1.0 and result["video"]["log_loss"] > 0
        maxima = rows.groupby("source_path").agg(label=("label", "first"), logit=("logit", "max"))
        assert list(result["aggregations"]) == list(DEFAULT_AGGREGATIONS)
        assert result["aggregations"]["max"]["auc"] == pytest.approx(roc_auc_score(maxima["label"], maxima["logit"]))
        assert list(result["breakdown"]["method"]) == [name]  # its fakes against all reals = the whole set here
        assert result["breakdown"]["method"][name]["video"]["auc"] == pytest.approx(result["video"]["auc"])
    # the detector sees warmth, so it finds the tint fakes and not the swapped faces
    assert metrics["sets"]["tint"]["video"]["auc"] > 0.9
    assert metrics["sets"]["swap"]["video"]["auc"] < 0.7


def test_cross_dataset_matrix_names_the_training_data(metrics):
    matrix = metrics["cross_dataset"]
    assert matrix["rows"] == ["tint"] and matrix["columns"] == ["tint", "swap"]
    assert matrix["in_domain"] == [[True, False]]
    assert matrix["video_auc"] == [[metrics["sets"]["tint"]["video"]["auc"], metrics["sets"]["swap"]["video"]["auc"]]]


def test_robustness_sweep_covers_every_level_and_degrades_the_detector(metrics):
    tint = metrics["robustness"]["tint"]
    assert tint["clean"]["frame_auc"] == pytest.approx(metrics["sets"]["tint"]["frame"]["auc"])
    for sweep in SWEEPS.values():
        assert [p["level"] for p in tint[sweep.name]] == list(sweep.levels)
        assert all(0.0 <= p["frame_auc"] <= 1.0 for p in tint[sweep.name])
    # JPEG at quality 30 shifts chroma, which is what this detector reads
    assert tint["jpeg"][-1]["frame_auc"] < tint["clean"]["frame_auc"]


def test_report_is_self_contained_and_model_card_quotes_the_numbers(report, metrics):
    page = (report / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 5  # ROC videos + frames, histograms, reliability, robustness
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    assert "Cross-dataset" in page and "Robustness" in page and "confident" in page and "video AUC 95 % CI" in page
    card = (report / "model_card.md").read_text()
    assert card.startswith("# Model card: dfdetect redness")
    assert f"{metrics['sets']['tint']['video']['auc']:.3f}" in card and "| tint |" in card


def test_scores_feed_calibrate_and_its_calibration_feeds_evaluate(tmp_path, crop_sets, redness_model):
    everything = tmp_path / "all"
    evaluate(redness_model, [crop_sets["tint"]], everything, split="all", aggregations=["mean"])
    run_cli(calibrate, ["--scores", str(everything / "scores.parquet"), "--out", str(tmp_path / "from_scores.json"),
                        "--fpr", "0.1"])
    run_cli(calibrate, ["--model", str(redness_model), "--crops", str(crop_sets["tint"]),
                        "--out", str(tmp_path / "from_model.json"), "--fpr", "0.1"])
    from_scores = read_calibration(tmp_path / "from_scores.json")
    from_model = read_calibration(tmp_path / "from_model.json")
    assert from_model.temperature == pytest.approx(from_scores.temperature, rel=1e-6)
    assert from_model.temperature != pytest.approx(1.0, abs=0.05)
    assert from_model.thresholds == pytest.approx(from_scores.thresholds, abs=1e-6)
    assert from_model.fitted_on["counts"] == {"units": 10, "real": 5, "fake": 5, "crops": 20}
    crops_file = Path(crop_sets["tint"]).resolve()
    assert list(from_model.fitted_on["crops"]) == [str(crops_file)]
    assert len(from_model.fitted_on["crops"][str(crops_file)]) == 64
    assert from_model.metrics["unit"] == "video" and 0.5 < from_model.metrics["auc"] <= 1.0

    calibrated = evaluate(redness_model, [crop_sets["tint"]], tmp_path / "calibrated",
                          calibration=tmp_path / "from_model.json", aggregations=["mean"])
    assert calibrated["calibration"]["temperature"] == from_model.temperature
    assert set(calibrated["sets"]["tint"]["video"]["at_threshold"]) == {"eer", "fpr@0.1", "max_f1", "youden",
                                                                         "default"}
    plain = evaluate(redness_model, [crop_sets["tint"]], tmp_path / "plain", aggregations=["mean"])
    assert calibrated["sets"]["tint"]["video"]["auc"] == plain["sets"]["tint"]["video"]["auc"]  # T keeps the ranking
    assert calibrated["calibration"]["ece_after"] != plain["calibration"]["ece_after"]

    run_cli(calibrate, ["--scores", str(everything / "scores.parquet"), "--out", str(tmp_path / "platt.json"),
                        "--method", "platt"])
    platt = read_calibration(tmp_path / "platt.json")
    with_bias = evaluate(redness_model, [crop_sets["tint"]], tmp_path / "platt", calibration=tmp_path / "platt.json",
                         aggregations=["mean"])
    assert platt.bias != 0.0 and with_bias["calibration"]["bias"] == platt.bias
    scores = pd.read_parquet(tmp_path / "platt" / "scores.parquet")
    np.testing.assert_allclose(scores["probability"], expit(scores["logit"] / platt.temperature + platt.bias))
    assert with_bias["sets"]["tint"]["video"]["auc"] == plain["sets"]["tint"]["video"]["auc"]


def test_an_unreadable_crop_is_skipped_and_the_rest_is_scored(tmp_path, crop_sets, redness_model):
    copy = tmp_path / "tint"
    shutil.copytree(crop_sets["tint"], copy)
    victim = read_crops(copy).query("split == 'test'")["crop_path"].iloc[3]
    Path(victim).write_bytes(b"\x89PNG truncated")
    result = evaluate(redness_model, [copy], tmp_path / "out", aggregations=["mean"])
    assert result["skipped_crops"] == 1 and result["sets"]["tint"]["frame"]["n"] == 23
    assert victim not in set(pd.read_parquet(tmp_path / "out" / "scores.parquet")["crop_path"])


def test_bad_inputs_name_the_problem(tmp_path, crop_sets, redness_model):
    with pytest.raises(DfdetectError, match="2 names for 1 crop sets"):
        load_crop_sets([crop_sets["tint"]], names=["a", "b"])
    with pytest.raises(DfdetectError, match="share one name"):
        load_crop_sets([crop_sets["tint"], crop_sets["swap"]], names=["same", "same"])
    with pytest.raises(DfdetectError, match="unknown split"):
        load_crop_sets([crop_sets["tint"]], split="holdout")
    with pytest.raises(DfdetectError, match="unknown aggregation") as unknown_rule:
        evaluate(redness_model, [crop_sets["tint"]], tmp_path, aggregations=["mean", "vote"])
    assert unknown_rule.value.code == "bad_config"
    with pytest.raises(DfdetectError) as missing:
        evaluate(tmp_path / "absent.onnx", [crop_sets["tint"]], tmp_path)
    assert missing.value.code == "missing_path"


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="no headless Chromium to render report.html (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    screenshot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        "--window-size=1200,2400", f"--screenshot={screenshot}", (report / "report.html").as_uri()],
                       check=True, capture_output=True, timeout=120)
    from dfdetect.media.io import read_image

    pixels = read_image(screenshot)
    assert pixels.shape == (2400, 1200, 3)
    # a blank or error page is one colour; the tables and plots make many
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
