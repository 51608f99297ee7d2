"""`dfdetect evaluate --media`: labelled files scanned as `dfdetect scan` would, then measured."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.evaluate.media import labelled_scores, media_metrics, pair_wins, read_media_labels
from dfdetect.media.encode import write_video
from dfdetect.recipes.media_evaluation import SCAN_RESULTS, check_resumable
from dfdetect.sample_data import london_identity, london_images


def scored_table(rows: list[tuple]) -> pd.DataFrame:
    """(path, label, group, dataset, pair, probability) rows as a scanned labels table."""
    table = pd.DataFrame(rows, columns=["path", "label", "group", "dataset", "pair", "probability"])
    return table.assign(status="ok", media_type="video")


def test_pair_wins_counts_ties_half_and_splits_by_dataset():
    table = scored_table([
        ("r1", 0, "g1", "A", "p1", 0.5), ("f1", 1, "g1", "A", "p1", 0.7), ("f2", 1, "g1", "A", "p1", 0.5),
        ("r2", 0, "g2", "B", "p2", 0.4), ("f3", 1, "g2", "B", "p2", 0.1),
        ("f4", 1, "g3", "B", "", 0.9),  # no pair: not compared
    ])
    wins = pair_wins(table)
    assert wins["all"] == {"pairs": 3, "fake_above_real": pytest.approx(0.5)}  # 1, ½, 0
    assert wins["A"]["fake_above_real"] == pytest.approx(0.75)
    assert wins["B"] == {"pairs": 1, "fake_above_real": 0.0}


def test_media_metrics_auc_rates_and_undefined_parts():
    rows = [(f"r{i}", 0, f"g{i}", "A", "", p) for i, p in enumerate([0.1, 0.2, 0.3, 0.6])]
    rows += [(f"f{i}", 1, f"g{i}", "A", "", p) for i, p in enumerate([0.4, 0.7, 0.8, 0.9])]
    rows += [("only_real", 0, "g9", "B", "", 0.2)]
    table = scored_table(rows)
    table.loc[len(table)] = ["lost", 1, "g8", "A", "", np.nan, "no_face", "video"]
    metrics = media_metrics(table, {"eer": 0.5}, "eer")
    assert metrics["files"] == 10 and metrics["scored"] == 9
    assert metrics["unscored"] == {"no_face_fake": 1}
    # 5 reals × 4 fakes; the fakes lose only 0.4 < 0.6 → 19/20
    assert metrics["overall"]["auc"] == pytest.approx(19 / 20)
    assert metrics["overall"]["auc_ci95"] is not None
    assert metrics["per_dataset"]["B"]["auc"] is None
    assert metrics["per_dataset"]["B"]["note"] == "undefined: one class only"
    assert metrics["thresholds"]["eer"]["fpr"] == pytest.approx(1 / 5)
    assert metrics["thresholds"]["eer"]["fnr"] == pytest.approx(1 / 4)


def test_interval_left_out_when_groups_are_too_few():
    table = scored_table([("r", 0, "g", "A", "", 0.1), ("f", 1, "g", "A", "", 0.9)])
    block = media_metrics(table, {}, "")["overall"]
    assert block["auc"] == 1.0 and block["auc_ci95"] is None and "fewer than 3 groups" in block["note"]


def test_labels_csv_errors_name_the_row_and_file(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    bad_label = tmp_path / "bad.csv"
    bad_label.write_text("path,label\na.jpg,real\na.jpg,maybe\n")
    with pytest.raises(DfdetectError, match=r"first: row 3, 'maybe'"):
        read_media_labels(bad_label)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\na.jpg,real\nb.jpg,fake\n")
    with pytest.raises(DfdetectError, match="1 of 2 listed files do not exist"):
        read_media_labels(missing)
    no_column = tmp_path / "nocol.csv"
    no_column.write_text("file,label\na.jpg,real\n")
    with pytest.raises(DfdetectError, match=r"lacks columns \['path'\]"):
        read_media_labels(no_column)


def test_labels_default_group_is_the_file_and_paths_start_at_the_csv(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(b"x")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nsub/a.jpg,FAKE\n")
    table = read_media_labels(labels)
    assert table["path"].tolist() == [str(tmp_path / "sub" / "a.jpg")]
    assert table["label"].tolist() == [1] and table["group"].tolist() == table["path"].tolist()
    with pytest.raises(DfdetectError, match="have no scan record"):
        labelled_scores(table, pd.DataFrame({"path": ["/elsewhere"], "status": ["ok"], "probability": [0.1],
                                             "media_type": ["image"]}))


def warm(rgb: np.ndarray, amount: float) -> np.ndarray:
    """The whole picture warmed: the redness detector's 'fake'."""
    return np.clip(rgb.astype(np.float32) * np.asarray([1 + amount, 1 - amount, 1.0], np.float32), 0, 255
                   ).astype(np.uint8)


def test_evaluate_media_cli_on_images_and_videos(tmp_path, redness_model):
    """Five people: a real photo and a warmed one each (pairs), plus one real and one warmed video; the
    redness detector must rank every warmed file above every real one, and the report says so."""
    rows = []
    for path in london_images("neutral")[:5]:
        person = london_identity(path)
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for label, image in (("real", rgb), ("fake", warm(rgb, 0.25))):
            out = tmp_path / "media" / f"{person}_{label}.png"
            out.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            rows.append(f"media/{out.name},{label},{person},photos,{person}")
        if len(rows) == 2:
            for label, image in (("real", rgb), ("fake", warm(rgb, 0.25))):
                clip = tmp_path / "media" / f"{person}_{label}.mp4"
                write_video([image[:480, :480]] * 4, clip, fps=4)
                rows.append(f"media/{clip.name},{label},{person}_clip,clips,")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label,group,dataset,pair\n" + "\n".join(rows) + "\n")
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "dfdetect", "evaluate", "--media", str(labels),
                           "--model", str(redness_model), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["files"] == 12 and metrics["scored"] == 12
    assert metrics["overall"]["auc"] == 1.0
    assert metrics["per_dataset"]["photos"]["auc"] == 1.0 and metrics["per_dataset"]["clips"]["n"] == 2
    assert metrics["per_media_type"]["video"]["n"] == 2
    assert metrics["pairs"]["all"] == {"pairs": 5, "fake_above_real": 1.0}
    assert "AUC" in done.stdout and str(out / "report.html") in done.stdout
    assert "Fakes scoring above their own real" in (out / "report.html").read_text()
    scores = pd.read_csv(out / "scores.csv")
    fakes, reals = scores.loc[scores["label"] == 1, "probability"], scores.loc[scores["label"] == 0, "probability"]
    assert fakes.min() > reals.max()


def test_a_kept_scan_is_resumed_only_with_the_model_it_was_made_with(tmp_path):
    """A model rebuilt at the same path must not be credited with its predecessor's scores."""
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    first.write_bytes(b"model one")
    second.write_bytes(b"model two")
    out = tmp_path / "eval"
    out.mkdir()
    check_resumable(out, first)  # nothing kept yet: records the model
    (out / SCAN_RESULTS).write_text("")
    check_resumable(out, first)  # same model: resumes
    second.replace(first)  # rebuilt in place
    with pytest.raises(DfdetectError, match="holds scores of another model"):
        check_resumable(out, first)
