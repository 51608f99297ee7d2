"""`dfdetect fit | validate | test`: LightningCLI over DetectorModule and DeepfakeDataModule.

LightningCLI gives config files, `--print_config`, per-option overrides and every Trainer flag (mixed
precision, gradient accumulation, DDP, `--ckpt_path` resume) for free; this module only adds the
project's defaults (checkpointing on validation video AUC, CSV logs under the run folder, seeded and
deterministic CPU runs, the resolved config beside the checkpoints and in W&B, a run manifest beside
the checkpoints) and ties the data pipeline's input size, normalisation and crop margin to the model's.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path

import torch
import yaml
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.plugins import TorchCheckpointIO

from dfdetect.model.checkpoint import VAL_METRICS_KEY, read_checkpoint
from dfdetect.model.resources import recipe_path
from dfdetect.model.torch_files import load_plain, unsafe_checkpoint
from dfdetect.records import RUN_MANIFEST_NAME
from dfdetect.train.data import DeepfakeDataModule
from dfdetect.train.module import DetectorModule
from dfdetect.train.run_manifest import RunManifest

DEFAULT_ROOT_DIR = "runs/fit"
DEFAULT_MONITOR = "val/video_auc"
CSV_LOGGER = "pytorch_lightning.loggers.CSVLogger"
CONFIG_NAME = "config.yaml"


def _wants_clean_pairs(quality_consistency: float) -> bool:
    return quality_consistency > 0


def checkpoint_filename(monitor: str) -> str:
    """`epoch03-video_auc0.9712.ckpt` for monitor val/video_auc: the file name says what it was chosen on."""
    return f"epoch{{epoch:02d}}-{monitor.rsplit('/', 1)[-1]}{{{monitor}:.4f}}"


class SaveRunConfig(SaveConfigCallback):
    """The resolved config in the log dir (Lightning's behaviour), beside the checkpoints, and in W&B.

    A copy beside the checkpoints matters because some loggers (W&B) share one log dir between runs,
    so the config there is the last run's; the checkpoints folder is per run.
    """

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(self.config.as_dict(), allow_val_change=True)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if trainer.is_global_zero and checkpoint is not None and checkpoint.dirpath:
            Path(checkpoint.dirpath).mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(Path(checkpoint.dirpath) / CONFIG_NAME), skip_none=False, overwrite=True,
                             multifile=False)


class LightningChatter(logging.Filter):
    """Drops Lightning's tips (install litlogger / litmodels) and its note that `weights_only` defaults
    to False, which PlainCheckpointIO makes untrue: fit prints what the run did, not advertising."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("💡 Tip") or "`weights_only` was not set" in message)


LIGHTNING_CHATTER = LightningChatter()
CHATTY_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.trainer.connectors.checkpoint_connector")


class PlainCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reading (`--ckpt_path`, local or a URL) through model.torch_files.load_plain,
    so only tensors and plain values are unpickled. Lightning's own reader loads a URL with
    weights_only=False, which runs whatever pickle the server sends, and a local file with torch's
    default, which before torch 2.6 was to run it too."""

    def load_checkpoint(self, path: str | Path, map_location: object = None, weights_only: bool | None = None) -> dict:
        return load_plain(path, map_location=map_location)  # weights_only is always True, whatever was asked


class DefinedMetricCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint that never picks a checkpoint on an undefined (NaN) metric. Lightning
    keeps any epoch while it holds fewer than top-k, so a validation split of one class made
    `epoch00-video_aucnan.ckpt` (before that, `video_auc0.0000`) the "best"; last.ckpt is still written."""

    def check_monitor_top_k(self, trainer: Trainer, current: torch.Tensor | None = None) -> bool:
        if current is not None and torch.isnan(current):
            return False
        return super().check_monitor_top_k(trainer, current)


class DetectorCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(DefinedMetricCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": DEFAULT_MONITOR,
            "checkpoint.mode": "max",
            "checkpoint.save_last": True,
            "checkpoint.auto_insert_metric_name": False,
        })
        parser.link_arguments("model.input_size", "data.input_size")
        parser.link_arguments("model.crop_margin", "data.crop_margin")
        parser.link_arguments("model.quality_consistency", "data.clean_pairs", compute_fn=_wants_clean_pairs)
        parser.link_arguments("model.input_mean", "data.mean", apply_on="instantiate")
        parser.link_arguments("model.input_std", "data.std", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Default logger: CSV under the trainer's root dir (Lightning's own default would be
        TensorBoard when that happens to be installed, and a root dir it picks itself). Default
        checkpoint file name: epoch and the monitored metric, whichever metric that is."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config["trainer"]
        if trainer.get("logger") in (None, True):
            trainer["logger"] = {"class_path": CSV_LOGGER,
                                 "init_args": {"save_dir": trainer.get("default_root_dir") or DEFAULT_ROOT_DIR}}
        checkpoint = config["checkpoint"]
        if checkpoint.get("filename") is None and checkpoint.get("monitor"):
            checkpoint["filename"] = checkpoint_filename(checkpoint["monitor"])

    def _parse_ckpt_path(self) -> None:
        """Lightning reads a local --ckpt_path's hyperparameters here, with weights_only=True, but lets
        torch's refusal through as several lines advising weights_only=False: it becomes one line."""
        try:
            super()._parse_ckpt_path()
        except pickle.UnpicklingError as exc:
            raise unsafe_checkpoint(self.config[self.config.subcommand]["ckpt_path"], exc) from None

    def instantiate_trainer(self, **kwargs: object) -> Trainer:
        """The trainer, reading checkpoints with PlainCheckpointIO (replacing any checkpoint_io plugin
        a config names: none may read a checkpoint another way)."""
        trainer = super().instantiate_trainer(**kwargs)
        trainer.strategy.checkpoint_io = PlainCheckpointIO()
        return trainer

    def before_fit(self) -> None:
        """The run manifest callback, with the resolved config of this fit (as plain data)."""
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))[self.subcommand]
        self.trainer.callbacks.append(RunManifest(config))

    def after_fit(self) -> None:
        print(fit_summary(self.trainer.checkpoint_callback))


def fit_summary(checkpoint: ModelCheckpoint | None) -> str:
    """Best checkpoint and the validation metrics of its epoch, read back from the file itself."""
    if checkpoint is None or not (checkpoint.best_model_path or checkpoint.last_model_path):
        return "fit finished; no checkpoint was written (is validation disabled?)"
    if not checkpoint.best_model_path:
        return (f"no best checkpoint: {checkpoint.monitor} was never a defined number (one class in the val split, "
                f"or no validation)\nlast checkpoint: {checkpoint.last_model_path}")
    state = read_checkpoint(checkpoint.best_model_path)
    metrics = state.get(VAL_METRICS_KEY, {})
    shown = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))
    lines = [f"best checkpoint: {checkpoint.best_model_path}", f"best val metrics: {shown or 'none'}"]
    if checkpoint.last_model_path:
        lines.append(f"last checkpoint: {checkpoint.last_model_path}")
    if checkpoint.dirpath:
        lines.append(f"resolved config: {Path(checkpoint.dirpath) / CONFIG_NAME}")
        lines.append(f"run manifest: {Path(checkpoint.dirpath) / RUN_MANIFEST_NAME}")
    return "\n".join(lines)


def with_recipe_paths(argv: list[str]) -> list[str]:
    """argv with every `--config NAME` that names a shipped recipe (`tiny_cpu`) turned into its file
    inside the installed package; a path to an existing file stays as it is."""
    resolved = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            resolved[i + 1] = str(recipe_path(argv[i + 1]))
        elif arg.startswith("--config="):
            resolved[i] = f"--config={recipe_path(arg.split('=', 1)[1])}"
    return resolved


def build_cli(argv: list[str], run: bool = True) -> DetectorCLI:
    """The project's LightningCLI over argv. With run=False there is no verb: the config is parsed and
    the model, data module and trainer are built without running anything (how the recipes are checked).

    Lightning warns whenever `args` is passed while sys.argv is non-empty; here argv *is* the command
    line, handed over by `dfdetect`'s own parser, so that warning would only confuse users.
    """
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).addFilter(LIGHTNING_CHATTER)
    return DetectorCLI(
        DetectorModule,
        DeepfakeDataModule,
        args=with_recipe_paths(argv),
        run=run,
        save_config_callback=SaveRunConfig,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        trainer_defaults={
            "default_root_dir": DEFAULT_ROOT_DIR,
            "deterministic": not torch.cuda.is_available(),
        },
    )


def run_lightning(argv: list[str]) -> Path | None:
    """Entry point for the `fit`, `validate` and `test` verbs; argv starts with the verb. Returns the
    best checkpoint a fit wrote (None for the other verbs), for callers that chain stages."""
    callback = build_cli(argv).trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if argv[:1] == ["fit"] else ""
    return Path(best) if best else None
