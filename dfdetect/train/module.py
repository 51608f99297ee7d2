"""The LightningModule: a timm backbone with one logit, trained with BCE, judged per frame and per video.

Checkpoints hold only plain types (tensors, numbers, strings, dicts) so `dfdetect.model.checkpoint`
loads them with `torch.load(weights_only=True)`: a checkpoint from someone else then cannot run code on load.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryAveragePrecision, BinaryEER
from torchmetrics.functional.classification import binary_auroc

from dfdetect.errors import DfdetectError
from dfdetect.model.backbones import create_backbone
from dfdetect.model.checkpoint import (
    CROPS_KEY,
    TRAINING_DATA_KEY,
    VAL_METRICS_KEY,
    build_contract,
    network_normalisation,
    recorded_crops,
)
from dfdetect.model.contract import ModelContract
from dfdetect.model.crops import ExtractOptions

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "adam", "sgd")  # timm's names: its "sgd" is SGD with Nesterov momentum
SCHEDULES = ("cosine", "poly")


def warmup_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "cosine",
                  poly_power: float = 0.9) -> float:
    """LR multiplier: linear ramp over `warmup_steps`, then a decay to 0 at `total_steps` — a half cosine,
    or the polynomial (1 − progress)^power of DeepLab-style "poly" schedules."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "poly":
        return (1.0 - progress) ** poly_power
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class RampedEma(ModelEmaV3):
    """timm's weight average with our decay ramp: (1 + step) / (10 + step), capped at `decay`, so the
    average does not stay anchored to the random or ImageNet start for the first thousands of steps.
    timm's own warm-up (1 − (1 + step)^−power) is kept off: the ramp is what the shipped starter was
    trained with, and changing it would change its weights. BatchNorm statistics are copied from the
    trained network, not averaged (exclude_buffers)."""

    def __init__(self, network: nn.Module, decay: float):
        super().__init__(network, decay=decay, exclude_buffers=True)
        self.requires_grad_(False)

    def get_decay(self, step: int | None = None) -> float:
        return self.decay if step is None else min(self.decay, (1.0 + step) / (10.0 + step))


def smooth_labels(labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Pull 0/1 targets towards 0.5 by `smoothing`, so the net is not pushed to infinite logits."""
    return labels * (1.0 - smoothing) + 0.5 * smoothing


def quality_excess(degraded_logits: torch.Tensor, clean_logits: torch.Tensor) -> torch.Tensor:
    """Mean amount (in logits) by which degraded reals score above their clean copies. The clean logit
    is the target, not a free end: the term must lower the degraded score, never raise the clean one.
    Linear, so no pair pulls harder than the weight. On the training benchmark a squared excess, and a
    linear one at weight 1, both made the cross-entropy climb (above 2 within 6 epochs); weights of
    0.2–0.4 trained normally (docs/train.md)."""
    return F.relu(degraded_logits - clean_logits.detach()).mean()


def mean_by_group(values: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-group mean of values, the group index of each mean), groups given as integer ids."""
    unique, inverse = torch.unique(groups, return_inverse=True)
    sums = torch.zeros(len(unique), dtype=values.dtype, device=values.device).index_add_(0, inverse, values)
    counts = torch.zeros(len(unique), dtype=values.dtype, device=values.device).index_add_(
        0, inverse, torch.ones_like(values))
    return sums / counts, unique


class VideoAUROC(Metric):
    """AUROC over videos: the logits of a source's frames are averaged before ranking, which is how
    scan aggregates a video, so this number predicts what a user of `dfdetect scan` will see."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("logits", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("groups", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> None:
        self.logits.append(logits.detach().float())
        self.labels.append(labels.detach().float())
        self.groups.append(groups.detach().long())

    def compute(self) -> torch.Tensor:
        """The video AUC, or NaN when the videos hold one class: the AUC is then undefined, and
        torchmetrics' 0.0 would read as a detector that is always wrong."""
        logits, labels, groups = (torch.cat(s) if isinstance(s, list) else s
                                  for s in (self.logits, self.labels, self.groups))
        video_logits, _ = mean_by_group(logits, groups)
        video_labels, _ = mean_by_group(labels, groups)
        if video_labels.round().unique().numel() < 2:
            return torch.tensor(float("nan"))
        return binary_auroc(torch.sigmoid(video_logits), video_labels.round().long())


UNDEFINED_WITH_ONE_CLASS = ("auc", "ap", "eer")  # frame metrics that compare reals with fakes


def frame_metrics(prefix: str) -> MetricCollection:
    return MetricCollection({"auc": BinaryAUROC(), "ap": BinaryAveragePrecision(), "acc": BinaryAccuracy(threshold=0.5),
                             "eer": BinaryEER()}, prefix=prefix)


class DetectorModule(pl.LightningModule):
    """Binary real(0)/fake(1) classifier on face crops."""

    def __init__(self, backbone: str = "efficientnet_b0", pretrained: bool | str = False, input_size: int = 224,
                 crop_margin: float | None = None, lr: float = 1e-3, weight_decay: float = 1e-4,
                 label_smoothing: float = 0.0, warmup_fraction: float = 0.05, drop_rate: float = 0.2,
                 optimizer: str = "adamw", momentum: float = 0.9, schedule: str = "cosine", poly_power: float = 0.9,
                 ema_decay: float | None = None, quality_consistency: float = 0.0, channels_last: bool = True):
        """channels_last: keep weights and batches in NHWC memory order. Measured on 2 CPU cores, an
        EfficientNet-Lite0 training step at 128 px took 0.74 s instead of 1.12 s (batch 48); it is also the
        layout GPU convolutions with mixed precision prefer. The numbers computed are the same.

        crop_margin: the margin the training crops were cut with; None takes it from the crops folder's
        extract_options.json (the data module refuses a value that contradicts it).

        ema_decay: keep an exponential moving average of the weights (e.g. 0.999); when set, validation,
        test, checkpoints' exported network and `load_detector` all use the averaged weights.

        quality_consistency: weight of a loss on real faces that scored higher degraded than clean, the
        logit excess, computed on pairs the data module supplies (the CLI turns them on). With
        reals and fakes degraded alike, a face whose traces a codec blurred away is a coin toss to the
        cross-entropy alone, so every small, compressed real face drifts towards 0.5 and crosses a
        threshold set on clean faces: real video gets flagged. The term asks that degrading a real face
        never make it look more fake; the price is that a fake the codec truly erased scores as real
        rather than as uncertain."""
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise DfdetectError("bad_config", f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0.0 <= warmup_fraction < 1.0:
            raise DfdetectError("bad_config", f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        if optimizer not in OPTIMIZERS:
            raise DfdetectError("bad_config", f"unknown optimizer {optimizer!r}", None, f"choose one of {OPTIMIZERS}")
        if schedule not in SCHEDULES:
            raise DfdetectError("bad_config", f"unknown schedule {schedule!r}", None, f"choose one of {SCHEDULES}")
        if quality_consistency < 0.0:
            raise DfdetectError("bad_config", f"quality_consistency must be ≥ 0, got {quality_consistency}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise DfdetectError("bad_config", f"ema_decay must be in (0, 1), got {ema_decay}", None,
                                "use e.g. 0.999, or leave it unset for no EMA")
        self.save_hyperparameters()
        self.net = create_backbone(backbone, pretrained=pretrained, drop_rate=drop_rate)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.ema_net = RampedEma(self.net, ema_decay) if ema_decay is not None else None
        self.input_mean, self.input_std = network_normalisation(self.net)
        self.val_frame = frame_metrics("val/")
        self.test_frame = frame_metrics("test/")
        self.val_video = VideoAUROC()
        self.test_video = VideoAUROC()
        self.val_metrics: dict[str, float] = {}
        self.training_data: dict = {}
        self.crops: ExtractOptions | None = None  # how the training crops were cut (from the data module)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The trained network while training, its weight average (when kept) for everything else."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.ema_net is not None and not self.training:
            return self.ema_net(images)
        return self.net(images)

    def train(self, mode: bool = True) -> DetectorModule:
        super().train(mode)
        if self.ema_net is not None:
            self.ema_net.eval()  # the average is never trained; its BatchNorm statistics come from net
        return self

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        """The step, then the weight average — once per optimizer step, whatever the gradient accumulation."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.ema_net is not None:
            self.ema_net.update(self.net, step=self.global_step)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, smooth_labels(labels, self.hparams.label_smoothing))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch[0], batch[1]
        weight = self.hparams.quality_consistency
        paired = weight > 0 and len(batch) == 5
        degraded = batch[4].bool() if paired else labels.new_zeros(len(labels), dtype=torch.bool)
        # the clean copies of degraded items are trained too, with their labels. Reals alone would make
        # "clean = real" a cue (with most items degraded, clean fakes are rare); without the real copies
        # nothing holds their scores down and the pull towards them has no fixed point
        clean = batch[3][degraded] if paired else images[:0]
        clean_labels = labels[degraded]
        logits = self(torch.cat([images, clean])).squeeze(1)
        loss = self._loss(logits, torch.cat([labels, clean_labels]))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        pairs = clean_labels == 0  # degraded reals, against their clean copies
        if pairs.any():
            excess = quality_excess(logits[: len(images)][degraded][pairs], logits[len(images):][pairs])
            self.log("train/quality_excess", excess, batch_size=int(pairs.sum()))
            loss = loss + weight * excess
        return loss

    def _evaluate(self, batch, stage: str, frame: MetricCollection, video: VideoAUROC) -> None:
        images, labels, sources = batch
        logits = self(images).squeeze(1)
        self.log(f"{stage}/loss", self._loss(logits, labels), batch_size=len(labels))
        frame.update(torch.sigmoid(logits), labels.long())
        video.update(logits, labels, sources)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_frame, self.val_video)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_frame, self.test_video)

    def _log_epoch(self, stage: str, frame: MetricCollection, video: VideoAUROC) -> dict[str, float]:
        """The epoch's metrics; with one class in the split, those that rank reals against fakes (AUC,
        AP, EER) are NaN with a one-line warning, never a number that looks measured."""
        values = {**frame.compute(), f"{stage}/video_auc": video.compute()}
        if torch.isnan(values[f"{stage}/video_auc"]):
            for name in UNDEFINED_WITH_ONE_CLASS:
                values[f"{stage}/{name}"] = torch.tensor(float("nan"))
            if not self.trainer.sanity_checking:
                log.warning("%s split holds one class only: its AUC, AP and EER are undefined (NaN)", stage)
        frame.reset()
        video.reset()
        self.log_dict(values, prog_bar=stage == "val")
        return {name: float(value) for name, value in values.items()}

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val", self.val_frame, self.val_video)
        if not self.trainer.sanity_checking:
            self.val_metrics = {**values, "epoch": int(self.current_epoch)}

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_frame, self.test_video)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "summary"):
            self.training_data = datamodule.summary()
        self.crops = getattr(datamodule, "extract_options", None)

    def configure_optimizers(self):
        # timm's factory builds exactly torch's SGD (Nesterov) / Adam / AdamW from these arguments; the
        # parameters are passed as such (not the module), so weight decay covers every parameter as before
        optimizer = create_optimizer_v2(self.net.parameters(), opt=self.hparams.optimizer, lr=self.hparams.lr,
                                        weight_decay=self.hparams.weight_decay, momentum=self.hparams.momentum)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = max(1, round(self.hparams.warmup_fraction * total_steps))
        schedule, power = self.hparams.schedule, self.hparams.poly_power
        # kept instead of timm's scheduler factory: timm's schedulers step per epoch or through their own
        # step_update hook (Lightning would need a custom lr_scheduler_step), and their warm-up starts from
        # warmup_lr_init rather than (step + 1) / warmup_steps, which would change every trained model
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_factor(step, warmup_steps, total_steps, schedule, power))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[VAL_METRICS_KEY] = dict(self.val_metrics)
        checkpoint[TRAINING_DATA_KEY] = dict(self.training_data)
        checkpoint[CROPS_KEY] = dataclasses.asdict(self.crops) if self.crops is not None else {}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_metrics = dict(checkpoint.get(VAL_METRICS_KEY, {}))
        self.training_data = dict(checkpoint.get(TRAINING_DATA_KEY, {}))
        self.crops = recorded_crops(checkpoint)

    def contract(self) -> ModelContract:
        return build_contract(dict(self.hparams), self.input_mean, self.input_std, self.val_metrics,
                              self.training_data, self.crops)
