"""Metrics that are undefined are reported as undefined, never as a number that looks measured: a
validation split of one class gives NaN AUC/AP/EER (torchmetrics said 0.0, and the checkpoint was
named `video_auc0.0000`) and no checkpoint is chosen on it; a bootstrap interval over one group is
None with its reason (it printed "1.000–1.000")."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from pytorch_lightning.trainer.states import TrainerFn

from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.summary import video_auc_interval
from dfdetect.metrics import auc_interval
from dfdetect.records import FAKE, REAL
from dfdetect.train.data import DeepfakeDataModule
from tests.train.conftest import newest_log_dir, write_tiny_crops


def test_one_class_validation_gives_nan_metrics_and_no_best_checkpoint(tmp_path, capsys, caplog):
    crops = write_tiny_crops(tmp_path / "crops", {"train": 4, "val": 2, "test": 1})
    frame = pd.read_parquet(crops / "crops.parquet")
    only_reals_in_val = frame[(frame["split"] != "val") | (frame["label"] == REAL)]
    only_reals_in_val.to_parquet(crops / "crops.parquet", index=False)
    with caplog.at_level(logging.INFO):
        assert main(["fit", "--config", "tiny_cpu", "--data.crops", str(crops), "--trainer.default_root_dir",
                     str(tmp_path / "fit"), "--trainer.enable_progress_bar", "false"]) == 0
    run = newest_log_dir(tmp_path / "fit")
    validation = pd.read_csv(run / "metrics.csv").dropna(subset=["val/acc"]).iloc[0]
    for name in ("auc", "ap", "eer", "video_auc"):
        assert math.isnan(validation[f"val/{name}"]), name
    assert 0.0 <= validation["val/acc"] <= 1.0  # defined with one class, so still a number
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert checkpoints == ["last.ckpt"]
    assert "no best checkpoint: val/video_auc was never a defined number" in capsys.readouterr().out
    assert "val split holds one class only: its AUC, AP and EER are undefined (NaN)" in caplog.text
    assert "Tip" not in caplog.text and "weights_only" not in caplog.text  # fit without Lightning's advertising


def test_an_interval_over_one_group_is_undefined_with_its_reason():
    labels = np.array([REAL, REAL, FAKE, FAKE])
    logits = np.array([-1.0, -0.5, 0.5, 1.0])
    one_person = pd.DataFrame({"label": labels, "logit": logits, "source_path": ["a", "b", "c", "d"],
                               "group": ["p1"] * 4})
    assert video_auc_interval(one_person) == (None, "undefined: one group (person or source video), nothing to "
                                                    "resample")
    with pytest.raises(DfdetectError, match="at least 2 groups to resample, got 1"):
        auc_interval(labels, logits, np.array(["p1"] * 4))
    two_people = one_person.assign(group=["p1", "p2", "p1", "p2"])
    interval, note = video_auc_interval(two_people)
    assert note == "" and interval == [1.0, 1.0]  # perfectly separated in every resample: a real 1.0
    assert video_auc_interval(one_person.assign(label=REAL)) == (None, "undefined: one class only")


def test_fit_without_validation_rows_says_so_in_words(tmp_path):
    """Lightning hands setup a TrainerFn member: the message once read "`dfdetect TrainerFn.FITTING` needs
    val rows"."""
    crops = write_tiny_crops(tmp_path / "crops", {"train": 2, "test": 1})
    with pytest.raises(DfdetectError) as caught:
        DeepfakeDataModule(str(crops), input_size=64).setup(TrainerFn.FITTING)
    assert caught.value.hint.startswith("`dfdetect fit` needs val rows"), caught.value.hint
