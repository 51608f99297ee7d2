"""configs/wandb.yaml layered on a recipe: an offline W&B run gets the resolved config and the metrics."""

from __future__ import annotations

import yaml

from dfdetect.train.cli import build_cli

from .conftest import CONFIGS_DIR


def test_offline_wandb_run_writes_config_metrics_and_checkpoint(tiny_crops, tiny_config, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    save_dir = tmp_path / "wandb_runs"
    try:
        cli = build_cli(["fit", "--config", str(tiny_config), "--config", str(CONFIGS_DIR / "wandb.yaml"),
                         "--data.crops", str(tiny_crops), "--trainer.default_root_dir", str(tmp_path / "root"),
                         "--trainer.enable_progress_bar", "false",
                         "--trainer.logger.init_args.save_dir", str(save_dir),
                         "--trainer.logger.init_args.name", "tiny-offline"])
        run = cli.trainer.logger.experiment
        assert run.name == "tiny-offline" and run.project == "dfdetect"
        assert run.config["model"]["backbone"] == "efficientnet_b0"
        assert run.config["data"]["crops"] == str(tiny_crops)
        assert 0.0 <= run.summary["val/video_auc"] <= 1.0 and run.summary["train/loss"] > 0.0
    finally:
        wandb.finish()
    runs = list((save_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    logs = list(runs[0].glob("run-*.wandb"))  # the offline record log that `wandb sync` uploads
    assert len(logs) == 1
    records = logs[0].read_bytes()
    for text in ("efficientnet_b0", str(tiny_crops), "val/video_auc", "train/loss"):
        assert text.encode() in records, text
    checkpoints = list((save_dir / "dfdetect").glob("*/checkpoints/*.ckpt"))
    assert any(p.name.startswith("epoch00-video_auc") for p in checkpoints)
    beside = yaml.safe_load(next((save_dir / "dfdetect").glob("*/checkpoints/config.yaml")).read_text())
    assert beside["trainer"]["logger"]["init_args"]["name"] == "tiny-offline"
