"""`dfdetect fit | validate | test`: LightningCLI over DetectorModule and DeepfakeDataModule.

LightningCLI gives config files, `--print_config` and per-option overrides for free; this module
only adds the project's defaults (best-AUC checkpointing, CSV logs under the run folder, seeded and
deterministic CPU runs) and ties the data pipeline's input size and normalisation to the model's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from dfdetect.train.data import DeepfakeDataModule
from dfdetect.train.module import VAL_METRICS_KEY, DetectorModule

DEFAULT_ROOT_DIR = "runs/fit"
CSV_LOGGER = "pytorch_lightning.loggers.CSVLogger"


class DetectorCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/auc",
            "checkpoint.mode": "max",
            "checkpoint.save_last": True,
            "checkpoint.filename": "epoch{epoch:02d}-auc{val/auc:.4f}",
            "checkpoint.auto_insert_metric_name": False,
        })
        parser.link_arguments("model.input_size", "data.input_size")
        parser.link_arguments("model.input_mean", "data.mean", apply_on="instantiate")
        parser.link_arguments("model.input_std", "data.std", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Default logger: CSV under the trainer's root dir (Lightning's own default would be
        TensorBoard when that happens to be installed, and a root dir it picks itself)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config["trainer"]
        if trainer.get("logger") in (None, True):
            trainer["logger"] = {"class_path": CSV_LOGGER,
                                 "init_args": {"save_dir": trainer.get("default_root_dir") or DEFAULT_ROOT_DIR}}

    def after_fit(self) -> None:
        print(fit_summary(self.trainer.checkpoint_callback, self.trainer.log_dir))


def fit_summary(checkpoint: ModelCheckpoint | None, log_dir: str | None) -> str:
    """Best checkpoint and the validation metrics of its epoch, read back from the file itself."""
    if checkpoint is None or not checkpoint.best_model_path:
        return "fit finished; no checkpoint was written (is validation disabled?)"
    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    metrics = state.get(VAL_METRICS_KEY, {})
    shown = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))
    lines = [f"best checkpoint: {checkpoint.best_model_path}", f"best val metrics: {shown or 'none'}"]
    if checkpoint.last_model_path:
        lines.append(f"last checkpoint: {checkpoint.last_model_path}")
    if log_dir:
        lines.append(f"resolved config: {Path(log_dir) / 'config.yaml'}")
    return "\n".join(lines)


def run_lightning(argv: list[str]) -> None:
    """Entry point for the `fit`, `validate` and `test` verbs; argv starts with the verb.

    Lightning warns whenever `args` is passed while sys.argv is non-empty; here argv *is* the command
    line, handed over by `dfdetect`'s own parser, so that warning would only confuse users.
    """
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    DetectorCLI(
        DetectorModule,
        DeepfakeDataModule,
        args=argv,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        trainer_defaults={
            "default_root_dir": DEFAULT_ROOT_DIR,
            "deterministic": not torch.cuda.is_available(),
        },
    )
