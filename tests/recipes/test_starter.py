"""The shipped starter model: present, self-describing, and it separates the demo's reals from fakes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dfdetect.model.onnx import read_contract
from dfdetect.model.resources import STARTER_DIR, STARTER_NOTICE, default_model
from dfdetect.recipes.demo import DEMO_SCAN_DIR, run_demo, truth_of
from dfdetect.recipes.starter import (
    flagged_test_reals,
    fpr_ratio,
    fpr_ratio_interval,
)
from dfdetect.records import file_sha256
from dfdetect.results import read_jsonl

STARTER_MODEL = STARTER_DIR / "model.onnx"


def test_the_starter_model_ships_with_its_contract_card_and_manifest():
    assert default_model() == STARTER_MODEL
    assert STARTER_MODEL.stat().st_size <= 25 * 1024 * 1024
    contract = read_contract(STARTER_MODEL)
    assert contract.backbone == "efficientnet_lite0" and contract.temperature > 0
    assert contract.default_threshold in contract.thresholds
    manifest = json.loads((STARTER_DIR / "manifest.json").read_text())
    assert manifest["model_sha256"] == file_sha256(STARTER_MODEL)
    card = (STARTER_DIR / "MODEL_CARD.md").read_text()
    assert "not a production moderation model" in card.lower() and "10.6084/m9.figshare.5047666" in card
    recipe = manifest["recipe"]  # what the card's Method says about training, read off the build
    assert f"{recipe['max_epochs']} epochs at {contract.preprocessing.input_size} px" in card
    assert f"(epoch {recipe['best_epoch']})" in card
    assert (f"EMA, decay {recipe['ema_decay']}" in card) == bool(recipe["ema_decay"])
    assert "Real benchmark deepfakes" in card and "fakes above their own real" in card  # the dev-set numbers
    for name in ("calibration.json", "training_config.yaml", "test_metrics.json", "test_report.html"):
        assert (STARTER_DIR / name).stat().st_size > 0


def test_fpr_ratio_interval_resamples_people():
    """20 people, 3 photos each: 4 people's photos are flagged clean, those and 2 more at video quality."""
    rows = [{"dataset": f"sbi_{quality}", "label": 0, "group": f"p{person}", "probability": 0.9 if flagged else 0.1}
            for person in range(20) for _photo in range(3)
            for quality, flagged in (("clean", person < 4), ("video", person < 6))]
    rows.append({"dataset": "sbi_video", "label": 1, "group": "p0", "probability": 0.0})  # fakes do not count
    flagged, video, groups = flagged_test_reals(pd.DataFrame(rows), threshold=0.5)
    assert len(flagged) == 120 and video.sum() == 60
    assert fpr_ratio(flagged, video, np.ones(len(flagged))) == (0.2, 0.3, 0.3 / 0.2)
    low, high = fpr_ratio_interval(flagged, video, groups)
    # every resample flags a superset at video quality, so the ratio is never below 1; the point value
    # 0.3 / 0.2 = 1.5 lies inside, and 20 people leave it wide
    assert 1.0 <= low < 1.5 < high and high - low > 0.5


def test_the_demo_folder_separates_reals_from_fakes_with_the_default_model(tmp_path):
    summary = run_demo(tmp_path)
    records = list(read_jsonl(tmp_path / "results.jsonl"))
    assert len(records) == summary["files"] == 44  # 18 real, 24 fake, the corrupt upload, ATTRIBUTION.md
    by_truth: dict[str, list[float]] = {"real": [], "fake": []}
    for record in records:
        truth = truth_of(Path(record["path"]), DEMO_SCAN_DIR)
        if truth in by_truth:
            assert record["status"] == "ok" and record["model_sha256"] == file_sha256(STARTER_MODEL)
            by_truth[truth].append(record["probability"])
    assert np.mean(by_truth["fake"]) > np.mean(by_truth["real"]) + 0.2
    assert summary["auc"] >= 0.7
    assert (tmp_path / "report.html").read_text().count("<img") == 2
    queue = pd.read_csv(tmp_path / "review" / "queue.csv")  # two-way decisions: the queue is the flagged files
    assert summary["review_queue"] == str(tmp_path / "review" / "index.html")
    assert len(queue) == summary["flagged"] and set(queue["triage"]) <= {"fake"}


def test_scan_without_a_model_argument_uses_the_starter_model(tmp_path):
    image = next((DEMO_SCAN_DIR / "real").glob("*.jpg"))
    done = subprocess.run([sys.executable, "-m", "dfdetect", "scan", str(image), "--out", str(tmp_path / "r.jsonl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (record,) = read_jsonl(tmp_path / "r.jsonl")
    assert record["status"] == "ok" and record["model_sha256"] == file_sha256(STARTER_MODEL)
    notices = [line for line in done.stderr.splitlines() if "starter model" in line]
    assert notices == [STARTER_NOTICE]  # one line saying what the model is and how to get a stronger one
    with_model = subprocess.run([sys.executable, "-m", "dfdetect", "scan", str(image), "--out",
                                 str(tmp_path / "m.jsonl"), "--model", str(STARTER_MODEL)],
                                capture_output=True, text=True, timeout=300)
    assert with_model.returncode == 0 and STARTER_NOTICE not in with_model.stderr
