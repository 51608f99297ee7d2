"""Three-way decisions: `fake` at or above the flag threshold, `real` below the clear threshold,
`review` between; the record keeps the probability and both thresholds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logit

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import DecisionRule, ModelContract
from dfdetect.sample_data import london_images
from dfdetect.scan.pipeline import PreparedFile, ScoredFace, build_record, scan_paths

THRESHOLDS = {"eer": 0.40, "fpr@0.05": 0.72, "fpr@0.01": 0.84}


def test_triage_at_and_around_the_thresholds():
    rule = DecisionRule("fpr@0.01", 0.84, "fpr@0.05", 0.72)
    assert [rule.triage(p) for p in (0.84, 0.99, 0.8399, 0.72, 0.7199, 0.0)] == \
        ["fake", "fake", "review", "review", "real", "real"]


def test_equal_thresholds_give_two_way_decisions():
    rule = DecisionRule("eer", 0.4, "eer", 0.4)
    assert [rule.triage(p) for p in (0.4, 0.3999)] == ["fake", "real"]


def test_rule_names_default_to_the_contract():
    contract = ModelContract(thresholds=THRESHOLDS, default_threshold="eer")
    assert contract.decision_rule() == DecisionRule("eer", 0.40, "eer", 0.40)
    assert contract.decision_rule("fpr@0.01", "fpr@0.05") == DecisionRule("fpr@0.01", 0.84, "fpr@0.05", 0.72)
    assert contract.decision_rule(clear="eer", flag="fpr@0.05") == DecisionRule("fpr@0.05", 0.72, "eer", 0.40)
    with_clear = ModelContract(thresholds=THRESHOLDS, default_threshold="fpr@0.01", clear_threshold="eer")
    assert with_clear.decision_rule() == DecisionRule("fpr@0.01", 0.84, "eer", 0.40)


def test_unknown_names_and_a_clear_threshold_above_the_flag_are_refused():
    contract = ModelContract(thresholds=THRESHOLDS, default_threshold="eer")
    with pytest.raises(DfdetectError, match=r"no threshold named 'fpr@0.1'.*eer"):
        contract.decision_rule("fpr@0.1")
    with pytest.raises(DfdetectError, match="is above flag threshold"):
        contract.decision_rule("fpr@0.05", "fpr@0.01")


@pytest.mark.parametrize(("face_probability", "triage"), [(0.9, "fake"), (0.8, "review"), (0.5, "real")])
def test_the_record_keeps_probability_both_thresholds_and_the_decision(face_probability, triage):
    contract = ModelContract(thresholds=THRESHOLDS, default_threshold="eer", aggregation="mean")
    model = SimpleNamespace(contract=contract, sha256="ab" * 32)
    prepared = PreparedFile("/x.jpg", 10, 0.0, media_type="image", frames_decoded=1,
                            faces=[ScoredFace(0, 0, (0.0, 0.0, 10.0, 10.0))])
    record = build_record(prepared, np.array([logit(face_probability)]), model,
                          rule=contract.decision_rule("fpr@0.01", "fpr@0.05"))
    assert record.probability == pytest.approx(face_probability)
    assert (record.threshold_name, record.threshold) == ("fpr@0.01", 0.84)
    assert (record.clear_threshold_name, record.clear_threshold) == ("fpr@0.05", 0.72)
    assert record.triage == triage and record.decision == (triage == "fake")


def test_scan_records_decisions_in_every_record_and_the_manifest(model_path, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = scan_paths(london_images()[:2], model_path, out, device="cpu", workers=0, progress=False,
                         flag="default", clear="default")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["threshold_name"], r["clear_threshold_name"]) for r in records} == {("default", "default")}
    assert all(r["triage"] == ("fake" if r["probability"] >= 0.5 else "real") for r in records)
    assert summary.review == 0
    manifest = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())
    assert manifest["decisions"] == {"flag_name": "default", "flag": 0.5, "clear_name": "default", "clear": 0.5}


def test_an_unknown_threshold_name_fails_before_any_output(model_path, tmp_path):
    with pytest.raises(DfdetectError, match=r"no threshold named 'fpr@0\.01'"):
        scan_paths(london_images()[:1], model_path, tmp_path / "r.jsonl", device="cpu", workers=0, progress=False,
                   flag="fpr@0.01")
    assert list(tmp_path.iterdir()) == []
