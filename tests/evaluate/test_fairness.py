"""Fairness report: per-group metrics from hand-made scores, people-resampled intervals, the join on
the person and the bands of a numeric attribute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.fairness import (
    MIN_GROUP_PEOPLE,
    band,
    fairness_reports,
    group_report,
    largest_ratio,
    parse_bins,
    read_attributes,
    units_with_attributes,
)


def units_of(people: dict[str, list[tuple[int, float]]], attribute: dict[str, str]) -> pd.DataFrame:
    rows = [{"group": person, "label": label, "probability": p, "sex": attribute[person]}
            for person, scored in people.items() for label, p in scored]
    return pd.DataFrame(rows)


def test_group_rates_and_ratio_match_hand_counts():
    # group f: 12 people, each one real at 0.1 and one fake at 0.9, except two whose real is flagged (0.7)
    # group m: 12 people, reals all clear (two at 0.3), but four fakes missed (0.2)
    people, sex = {}, {}
    for i in range(12):
        people[f"f{i}"] = [(0, 0.7 if i < 2 else 0.1), (1, 0.9)]
        sex[f"f{i}"] = "female"
        people[f"m{i}"] = [(0, 0.3 if i >= 10 else 0.1), (1, 0.2 if i < 4 else 0.9)]
        sex[f"m{i}"] = "male"
    report = group_report(units_of(people, sex), ["sex"], threshold=0.5, resamples=200)
    groups = {row["group"]: row for row in report["groups"]}
    female, male = groups["female"], groups["male"]
    assert (female["people"], female["n_real"], female["n_fake"]) == (12, 12, 12)
    assert female["fpr"] == pytest.approx(2 / 12) and female["fnr"] == 0.0
    assert male["fpr"] == 0.0 and male["fnr"] == pytest.approx(4 / 12)
    assert female["auc"] == 1.0  # every fake (0.9) above every real (0.1, 0.7)
    assert male["auc"] == pytest.approx((8 * 12 + 4 * 10) / 144)  # fakes at 0.2 lose to the two reals at 0.3
    # a rate of 0 in one group makes the ratio undefined; the difference is still reported
    assert report["largest_ratio"]["fpr"]["ratio"] is None
    assert report["largest_ratio"]["fpr"]["difference"] == pytest.approx(2 / 12)
    assert report["largest_ratio"]["fpr"]["highest"] == "female"
    # intervals come from resampled people and hold the point value
    low, high = female["fpr_ci95"]
    assert low <= 2 / 12 <= high and high > low
    assert not female["too_small"] and report["warnings"] == []


def test_small_group_is_flagged_in_a_warning():
    people = {f"p{i}": [(0, 0.1), (1, 0.8)] for i in range(MIN_GROUP_PEOPLE + 2)}
    people.update({f"q{i}": [(0, 0.6), (1, 0.7)] for i in range(3)})
    sex = {p: ("a" if p.startswith("p") else "b") for p in people}
    report = group_report(units_of(people, sex), ["sex"], threshold=0.5, resamples=50)
    groups = {row["group"]: row for row in report["groups"]}
    assert groups["b"]["too_small"] and not groups["a"]["too_small"]
    assert "b" in report["warnings"][0] and "a," not in report["warnings"][0]


def test_largest_ratio_ignores_undefined_groups():
    assert largest_ratio([0.1, float("nan"), 0.3]) == pytest.approx(3.0)
    assert largest_ratio([0.2]) is None
    assert largest_ratio([0.0, 0.2]) is None


def test_attributes_join_on_the_person_and_keep_leading_zeros(tmp_path):
    csv = tmp_path / "attributes.csv"
    csv.write_text("face_id,face_age,face_gender\n001,24,female\n002,41,male\n010,35,male\n")
    attributes = read_attributes(csv)
    units = pd.DataFrame({"group": ["001", "002", "010", "999"], "label": [0, 1, 0, 1],
                          "probability": [0.1, 0.9, 0.2, 0.8]})
    joined = units_with_attributes(units, attributes, ["face_gender", "face_age"], parse_bins(["face_age=30,40"]))
    assert joined["face_gender"].tolist() == ["female", "male", "male", "unknown"]
    assert joined["face_age"].tolist() == ["<30", "≥40", "30–39", "unknown"]
    reports = fairness_reports(units, attributes, ["face_gender"], threshold=0.5, resamples=20)
    assert reports[0]["warnings"][0].startswith("1 of 4 units have no attributes")
    with pytest.raises(DfdetectError, match="no attribute column"):
        units_with_attributes(units, attributes, ["face_eth"])


def test_band_names_and_bad_bins():
    assert [band(v, [30.0, 40.0]) for v in ("29", "30", "39.5", "40", "x")] == ["<30", "30–39", "30–39", "≥40",
                                                                                "unknown"]
    with pytest.raises(DfdetectError, match="cannot read bins"):
        parse_bins(["face_age=thirty"])
    assert np.isclose(parse_bins(["a=40,30"])["a"], [30.0, 40.0]).all()


def test_ratio_interval_keeps_the_pair_and_can_fall_below_one():
    # two groups of 20 people with the same error pattern: the ratio's interval must straddle 1
    people, sex = {}, {}
    for i in range(40):
        person = f"x{i}"
        people[person] = [(0, 0.7 if i % 5 == 0 else 0.2), (1, 0.9)]
        sex[person] = "a" if i < 20 else "b"
    people["x1"][0] = (0, 0.7)  # group a: 5 of 20 reals flagged, group b: 4 of 20
    report = group_report(units_of(people, sex), ["sex"], threshold=0.5, resamples=300)
    fpr = report["largest_ratio"]["fpr"]
    assert (fpr["highest"], fpr["lowest"]) == ("a", "b") and fpr["ratio"] == pytest.approx(5 / 4)
    low, high = fpr["ratio_ci95"]
    assert low < 1.0 < fpr["ratio"] < high


def test_small_groups_are_left_out_of_the_ratio():
    people = {f"p{i}": [(0, 0.6 if i < 3 else 0.1), (1, 0.8)] for i in range(12)}
    people.update({f"q{i}": [(0, 0.9), (1, 0.7)] for i in range(2)})
    sex = {p: ("a" if p.startswith("p") else "b") for p in people}
    fpr = group_report(units_of(people, sex), ["sex"], threshold=0.5, resamples=50)["largest_ratio"]["fpr"]
    assert fpr["highest"] is None and fpr["compared"] == ["a"]


def test_evaluate_reports_groups_from_the_scores_it_wrote(tmp_path, crop_sets, redness_model):
    """End to end on the redness detector (conftest): the per-gender counts come from the London
    attributes of the test people, and each group's FPR / FNR is recomputed from scores.parquet."""
    from scipy.special import expit

    from dfdetect.evaluate.evaluation import evaluate
    from dfdetect.evaluate.fairness import GroupsRequest
    from dfdetect.sample_data import LONDON_DIR

    attributes_csv = LONDON_DIR / "attributes.csv"
    out = tmp_path / "eval"
    metrics = evaluate(redness_model, [crop_sets["tint"]], out,
                       groups=GroupsRequest(attributes_csv, ("face_gender",)))
    report = metrics["fairness"]["sets"]["tint"][0]
    scores = pd.read_parquet(out / "scores.parquet")
    units = scores.groupby("source_path").agg(label=("label", "first"), group=("group", "first"),
                                              logit=("logit", "mean"))
    units["flagged"] = expit(units["logit"]) >= 0.5  # mean rule, T = 1, threshold 0.5 (the redness contract)
    units["gender"] = units["group"].map(read_attributes(attributes_csv)["face_gender"])
    for row in report["groups"]:
        mine = units[units["gender"] == row["group"]]
        assert row["people"] == mine["group"].nunique()
        assert (row["n_real"], row["n_fake"]) == (int((mine["label"] == 0).sum()), int((mine["label"] == 1).sum()))
        assert row["fpr"] == pytest.approx(mine.loc[mine["label"] == 0, "flagged"].mean())
        assert row["fnr"] == pytest.approx(1 - mine.loc[mine["label"] == 1, "flagged"].mean())
    html = (out / "report.html").read_text()
    assert "<h2>Fairness</h2>" in html and "Fairness: tint by face_gender" in html
