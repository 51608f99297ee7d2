"""Every recipe in configs/ parses, prints, and builds its model and data module without training.

Weights are never loaded here (pretrained: false): the recipes name timm caches that a CI machine does
not have. The trainer is built on CPU in fp32 for the same reason; the recipe's other trainer flags
(accumulation, clipping, epochs) are checked as they are.
"""

from __future__ import annotations

import pytest
import yaml

from dfdetect.model.contract import DEFAULT_CROP_MARGIN
from dfdetect.train.cli import DEFAULT_MONITOR, build_cli, run_lightning
from dfdetect.train.data import DeepfakeDataModule
from dfdetect.train.module import DetectorModule

from .conftest import CONFIGS_DIR

REQUIRED = {"ffpp_c23_effb4", "ffpp_c23_vitb16", "dfdc_effb7", "sbi_effb4_ffpp", "sbi_lite0_faces", "tiny_cpu"}
LAYERS = {"wandb"}  # partial configs, layered on a recipe
RECIPES = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml") if p.stem not in LAYERS)
NOT_CHECKED = {"pretrained"}  # replaced by false below
CPU_FP32 = ["--model.pretrained", "false", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.precision", "32", "--trainer.logger", "false"]


def recipe(name: str) -> dict:
    return yaml.safe_load((CONFIGS_DIR / f"{name}.yaml").read_text())


def test_the_standard_recipes_are_there():
    assert set(RECIPES) >= REQUIRED


@pytest.mark.parametrize("name", RECIPES)
def test_print_config_reproduces_the_recipe(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_lightning(["fit", "--config", str(CONFIGS_DIR / f"{name}.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    written = recipe(name)
    for section in ("model", "data"):
        for key, value in written[section].items():
            assert printed[section][key] == value, (section, key)
    for key, value in written["trainer"].items():
        assert printed["trainer"][key] == value, ("trainer", key)
    assert printed["checkpoint"]["monitor"] == DEFAULT_MONITOR


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_builds_its_model_and_data_module(name, tiny_crops, tmp_path):
    written = recipe(name)
    cli = build_cli(["--config", str(CONFIGS_DIR / f"{name}.yaml"), "--data.crops", str(tiny_crops),
                     "--trainer.default_root_dir", str(tmp_path), *CPU_FP32], run=False)
    assert isinstance(cli.model, DetectorModule) and isinstance(cli.datamodule, DeepfakeDataModule)
    for key, value in written["model"].items():
        if key not in NOT_CHECKED:
            assert cli.model.hparams[key] == value, key
    assert (cli.model.ema_net is not None) == (written["model"].get("ema_decay") is not None)
    data = cli.datamodule
    assert data.input_size == written["model"]["input_size"]
    # the tiny crops carry no extract record: a recipe's own margin, else the default, applies
    assert data.crop_margin == written["model"].get("crop_margin", DEFAULT_CROP_MARGIN)
    assert (data.mean, data.std) == (cli.model.input_mean, cli.model.input_std)
    for key in ("batch_size", "augment", "frames_per_video", "balance"):
        assert getattr(data, key) == written["data"][key], key
    assert data.synthesis == written["data"].get("synthesis", "none")
    assert data.degradations == written["data"].get("degradations", {})
    assert cli.trainer.accumulate_grad_batches == written["trainer"].get("accumulate_grad_batches", 1)
    assert cli.trainer.max_epochs == written["trainer"]["max_epochs"]
