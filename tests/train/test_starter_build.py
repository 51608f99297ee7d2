"""The starter build's own steps: crops sized by the recipe, the fixed pseudo-fake sets of held-out
people, and what the card reads off the recipe."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dfdetect.errors import DfdetectError
from dfdetect.model.resources import CONFIGS_DIR
from dfdetect.recipes.starter import (
    CONFIG,
    crop_geometry,
    degradations_text,
    fakes_text,
    main,
    make_fake_sets,
    publish,
    rebuild_command,
    recipe_summary,
)
from dfdetect.records import REAL

from .conftest import SBI_CROP_SIZE


def test_crops_take_the_recipes_input_size_and_margin(tmp_path):
    recipe = yaml.safe_load(CONFIG.read_text())
    recipe["model"].update(input_size=160, crop_margin=1.25)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert crop_geometry(tmp_path / "recipe.yaml") == (160, 1.25)
    assert crop_geometry(CONFIG) == (128, 1.3)


def test_a_recipe_without_crop_geometry_is_named_before_anything_runs(tmp_path):
    recipe = yaml.safe_load(CONFIG.read_text())
    del recipe["model"]["crop_margin"]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(DfdetectError, match=r"model\.crop_margin") as error:
        crop_geometry(tmp_path / "recipe.yaml")
    assert error.value.path == str(tmp_path / "recipe.yaml")


def test_crop_geometry_cannot_be_overridden_past_the_crops():
    with pytest.raises(DfdetectError, match=r"--model\.input_size"):
        crop_geometry(CONFIG, ["--trainer.max_epochs", "4", "--model.input_size=160"])
    with pytest.raises(DfdetectError, match=r"--model\.crop_margin"):
        crop_geometry(CONFIG, ["--model.crop_margin", "1.5"])
    assert crop_geometry(CONFIG, ["--trainer.max_epochs", "4"]) == (128, 1.3)


def test_the_rebuild_command_names_the_recipe_as_the_repository_does(tmp_path):
    assert rebuild_command(CONFIG, []) == "make starter-model"
    assert rebuild_command(CONFIGS_DIR / "starter_lite0_gpu.yaml", None) == (
        "python -m dfdetect.recipes.starter --config starter_lite0_gpu")
    assert rebuild_command(CONFIG, ["--seed_everything", "1"]) == (
        "python -m dfdetect.recipes.starter --config starter_lite0 --seed_everything 1")
    assert rebuild_command(tmp_path / "mine.yaml", None).endswith(f"--config {tmp_path / 'mine.yaml'}")


def test_the_build_command_names_a_missing_recipe_and_makes_nothing(tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(tmp_path / "nope.yaml"), "--work", str(tmp_path / "work"),
              "--out", str(tmp_path / "out")])
    assert "training recipe not found" in str(stop.value.code) and "nope.yaml" in str(stop.value.code)
    assert sorted(tmp_path.iterdir()) == []


def test_the_card_reads_epochs_fakes_and_degradations_off_the_recipe(tmp_path):
    torch.save({"epoch": 3, "hyper_parameters": {}, "state_dict": {}}, tmp_path / "best.ckpt")  # read safely
    shipped = recipe_summary(CONFIG, tmp_path / "best.ckpt")
    assert shipped == {
        "input_size": 128, "max_epochs": 4, "best_epoch": 3, "ema_decay": None,
        "train_face_px": [28, 79], "h264_crfs": [23, 38], "swap_fraction": 0.25, "match_sharpness": False,
        "quality_consistency": 0.0, "degradations": []}
    assert "keeps its blur or resampling" in fakes_text(shipped)
    assert "25% of draws an identity swap" in fakes_text(shipped)
    assert degradations_text(shipped) == "No image-quality degradation was applied in training."
    # the earlier starter's recipe: swaps, sharpness matching, consistency term, video-quality degradations;
    # a 128 px crop at margin 1.3 holds a 98 px face, the largest downscale (1.63) leaves 60 px
    earlier = yaml.safe_load(CONFIG.read_text())
    earlier["model"].update(quality_consistency=0.05, ema_decay=0.998)
    earlier["data"].update(swap_fraction=0.4, match_sharpness=True, degradations={"h264": 0.8, "downscale": 0.5},
                           downscale_factors=[1.0, 1.63], h264_crfs=[18, 40])
    (tmp_path / "earlier.yaml").write_text(yaml.safe_dump(earlier))
    summary = recipe_summary(tmp_path / "earlier.yaml", tmp_path / "best.ckpt")
    assert summary["train_face_px"] == [60, 98] and summary["ema_decay"] == 0.998
    assert "40% of draws an identity swap" in fakes_text(summary) and "softness carries no label" in fakes_text(summary)
    assert "weight 0.05" in fakes_text(summary)
    assert degradations_text(summary) == (
        "Each of these degradations — faces shrunk to video sizes (60–98 px), real H.264 encoding through PyAV at "
        "CRF 18–40 — is applied to reals and fakes alike with the same probabilities, so image quality carries no "
        "label.")


def test_fake_sets_pair_every_held_out_real_with_one_fake(real_face_crops, tmp_path):
    crops = pd.read_parquet(real_face_crops / "crops.parquet")
    held_out = crops[crops["split"].isin(["val", "test"])]
    sets = make_fake_sets(real_face_crops, tmp_path, margin=1.3)
    assert sorted(sets) == ["sbi_clean", "sbi_video", "swap_clean", "swap_video"]
    for name, folder in sets.items():
        rows = pd.read_parquet(folder / "crops.parquet")
        assert len(rows) == 2 * len(held_out) and rows["source_path"].is_unique
        assert (rows["label"] == REAL).sum() == len(held_out) and set(rows["dataset"]) == {name}
        assert sorted(rows["group"].unique()) == sorted(held_out["group"].unique())
        assert set(rows.loc[rows["label"] != REAL, "method"]) == {name.split("_")[0]}
        for real, fake in zip(rows[rows["label"] == REAL].itertuples(), rows[rows["label"] != REAL].itertuples()):
            assert (real.group, real.split) == (fake.group, fake.split)
            real_image, fake_image = (cv2.imread(str(folder / r.crop_path)).astype(np.int16) for r in (real, fake))
            assert real_image.shape == (SBI_CROP_SIZE, SBI_CROP_SIZE, 3)
            assert np.abs(real_image - fake_image).mean() > 0.5  # the fake's face changed
    # the video-quality copy of a real is the same face, shrunk and H.264-coded: close, not equal
    clean, video = (cv2.imread(str(sets[name] / "crops/00000_real.jpg")).astype(np.int16)
                    for name in ("sbi_clean", "sbi_video"))
    assert 0.5 < np.abs(clean - video).mean() < 20


def test_a_new_model_worse_on_real_deepfakes_does_not_replace_the_shipped_one(tmp_path):
    candidate, shipped = tmp_path / "candidate", tmp_path / "shipped"
    for folder, content in ((candidate, b"new"), (shipped, b"old")):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(content)
    with pytest.raises(DfdetectError, match=r"AUC on val\.csv is 0\.480, below the shipped model's 0\.520") as error:
        publish(candidate, shipped, ("val.csv", 0.48, 0.52))
    assert error.value.code == "quality_gate" and (shipped / "model.onnx").read_bytes() == b"old"
    publish(candidate, shipped, ("val.csv", 0.52, 0.52))  # not lower: ships
    assert (shipped / "model.onnx").read_bytes() == b"new"
    (candidate / "model.onnx").write_bytes(b"newer")
    publish(candidate, shipped)  # no development set: no gate
    assert (shipped / "model.onnx").read_bytes() == b"newer"


def test_fakes_text_without_swaps_or_consistency_says_neither(tmp_path):
    torch.save({"epoch": 3, "hyper_parameters": {}, "state_dict": {}}, tmp_path / "best.ckpt")
    recipe = yaml.safe_load(CONFIG.read_text())
    recipe["data"]["swap_fraction"] = 0.0
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    text = fakes_text(recipe_summary(tmp_path / "recipe.yaml", tmp_path / "best.ckpt"))
    assert "identity swap" not in text and "quality-consistency" not in text
