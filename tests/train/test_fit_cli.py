from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import yaml

from dfdetect.train.cli import run_lightning

FRAME_METRICS = ("auc", "ap", "acc", "eer", "video_auc")
QUIET = ["--trainer.enable_progress_bar", "false"]


def epoch_metrics(log_dir, stage: str) -> pd.DataFrame:
    frame = pd.read_csv(log_dir / "metrics.csv")
    return frame.dropna(subset=[f"{stage}/auc"])


def best_checkpoint(log_dir):
    return next(p for p in (log_dir / "checkpoints").glob("epoch*.ckpt"))


def test_fit_logs_val_metrics_and_saves_checkpoints_and_config(fitted_run, tiny_crops):
    metrics = epoch_metrics(fitted_run, "val")
    assert len(metrics) == 1
    for name in FRAME_METRICS:
        assert 0.0 <= metrics[f"val/{name}"].iloc[0] <= 1.0
    assert not math.isnan(pd.read_csv(fitted_run / "metrics.csv")["train/loss"].dropna().iloc[0])
    best = best_checkpoint(fitted_run)
    assert best.name.startswith("epoch00-video_auc")
    assert (fitted_run / "checkpoints" / "last.ckpt").is_file()
    config = yaml.safe_load((fitted_run / "config.yaml").read_text())
    assert config["model"]["backbone"] == "efficientnet_b0"
    assert config["model"]["input_size"] == 64
    assert config["data"]["crops"] == str(tiny_crops)
    assert config["checkpoint"]["monitor"] == "val/video_auc"
    beside = yaml.safe_load((fitted_run / "checkpoints" / "config.yaml").read_text())
    assert beside == config


def test_validate_with_saved_config_reproduces_fit_auc_and_test_logs_test_metrics(
        latest_log_dir, fitted_run, tiny_config, tiny_crops, tmp_path):
    checkpoint = fitted_run / "checkpoints" / "last.ckpt"
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)["dfdetect_val_metrics"]
    run_lightning(["validate", "--config", str(fitted_run / "config.yaml"), *QUIET,
                   "--trainer.logger.init_args.save_dir", str(tmp_path / "validate"),
                   "--ckpt_path", str(checkpoint)])
    validated = epoch_metrics(latest_log_dir(tmp_path / "validate"), "val")
    assert validated["val/auc"].iloc[0] == pytest.approx(stored["val/auc"], abs=1e-6)
    assert validated["val/video_auc"].iloc[0] == pytest.approx(stored["val/video_auc"], abs=1e-6)

    assert run_lightning(["test", "--config", str(tiny_config), "--data.crops", str(tiny_crops), *QUIET,
                          "--trainer.default_root_dir", str(tmp_path / "test"), "--ckpt_path", str(checkpoint)]) is None
    tested = epoch_metrics(latest_log_dir(tmp_path / "test"), "test")
    for name in FRAME_METRICS:
        assert 0.0 <= tested[f"test/{name}"].iloc[0] <= 1.0


def test_resume_from_checkpoint_continues_the_epoch_count(
        latest_log_dir, fitted_run, tiny_config, tiny_crops, tmp_path):
    first = torch.load(fitted_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    best = run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(tiny_crops), *QUIET,
                          "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "2",
                          "--ckpt_path", str(fitted_run / "checkpoints" / "last.ckpt")])
    log_dir = latest_log_dir(tmp_path)
    assert best is not None and best.parent == log_dir / "checkpoints" and best.name.startswith("epoch")
    resumed = torch.load(log_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (first["epoch"], first["global_step"]) == (0, 3)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 6)
    assert epoch_metrics(log_dir, "val")["epoch"].tolist() == [1]


def test_print_config_round_trip_reproduces_the_fit(
        latest_log_dir, fitted_run, tiny_config, tiny_crops, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(tiny_crops), *QUIET,
                       "--trainer.default_root_dir", str(tmp_path / "round_trip"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["model"]["backbone"] == "efficientnet_b0"
    config = tmp_path / "printed.yaml"
    config.write_text(printed)

    run_lightning(["fit", "--config", str(config)])
    summary = capsys.readouterr().out
    assert "best checkpoint:" in summary and "val/auc=" in summary

    replayed = torch.load(latest_log_dir(tmp_path / "round_trip") / "checkpoints" / "last.ckpt",
                          map_location="cpu", weights_only=True)
    original = torch.load(fitted_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert replayed["dfdetect_val_metrics"] == original["dfdetect_val_metrics"]
    for key, tensor in original["state_dict"].items():
        torch.testing.assert_close(replayed["state_dict"][key], tensor, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("weight", ["0.3", "0.0"])
def test_quality_consistency_from_the_command_line_pairs_degraded_items_with_clean_copies(
        tiny_config, tiny_crops, latest_log_dir, tmp_path, weight):
    """The CLI links the model's weight to the data's clean pairs: the term is logged only when both are on."""
    run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(tiny_crops), *QUIET,
                   "--trainer.default_root_dir", str(tmp_path), "--model.quality_consistency", weight,
                   "--data.degradations", '{"jpeg": 1.0}'])
    frame = pd.read_csv(latest_log_dir(tmp_path) / "metrics.csv")
    if weight == "0.0":
        assert "train/quality_excess" not in frame.columns
    else:
        assert frame["train/quality_excess"].notna().sum() == 3  # one value per training step
        assert (frame["train/quality_excess"].dropna() >= 0).all()


def test_ema_sgd_poly_mixed_precision_and_accumulation_from_the_command_line(latest_log_dir, tiny_config, tiny_crops,
                                                                            tmp_path):
    """Lightning's own flags do the precision and accumulation; the checkpoint keeps the weight average,
    and the exported network is that average."""
    from dfdetect.model.checkpoint import load_checkpoint

    run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(tiny_crops), *QUIET,
                   "--trainer.default_root_dir", str(tmp_path), "--trainer.precision", "bf16-mixed",
                   "--trainer.accumulate_grad_batches", "3", "--model.optimizer", "sgd", "--model.schedule", "poly",
                   "--model.ema_decay", "0.5"])
    log_dir = latest_log_dir(tmp_path)
    state = torch.load(log_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 1  # 3 batches, one optimizer step
    assert state["hyper_parameters"]["optimizer"] == "sgd" and state["hyper_parameters"]["ema_decay"] == 0.5
    weights = state["state_dict"]
    assert not torch.equal(weights["net.conv_stem.weight"], weights["ema_net.module.conv_stem.weight"])
    config = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert config["trainer"]["precision"] == "bf16-mixed" and config["trainer"]["accumulate_grad_batches"] == 3
    network, _ = load_checkpoint(log_dir / "checkpoints" / "last.ckpt")
    assert torch.equal(network.conv_stem.weight, weights["ema_net.module.conv_stem.weight"])


def test_ddp_on_two_cpu_processes_trains_and_checkpoints(tiny_config, tiny_crops, latest_log_dir, tmp_path):
    """Lightning's own DDP flags, through the real CLI (DDP re-launches the command line, so it runs as
    a subprocess): two processes, one checkpoint, validation metrics gathered from both."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dfdetect.cli", "fit", "--config", str(tiny_config),
                           "--data.crops", str(tiny_crops), *QUIET, "--trainer.default_root_dir", str(tmp_path),
                           "--trainer.devices", "2", "--trainer.strategy", "ddp"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log_dir = latest_log_dir(tmp_path)
    state = torch.load(log_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3  # limit_train_batches per process, gradients averaged between them
    config = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert config["trainer"]["strategy"] == "ddp" and int(config["trainer"]["devices"]) == 2
    metrics = epoch_metrics(log_dir, "val")
    assert len(metrics) == 1 and 0.0 <= metrics["val/video_auc"].iloc[0] <= 1.0
