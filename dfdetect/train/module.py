"""The LightningModule: a timm backbone with one logit, trained with BCE, judged per frame and per video.

Checkpoints hold only plain types (tensors, numbers, strings, dicts) so they load with
`torch.load(weights_only=True)`: a checkpoint from someone else then cannot run code on load.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryAveragePrecision, BinaryEER
from torchmetrics.functional.classification import binary_auroc

import dfdetect
from dfdetect.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract, Preprocessing
from dfdetect.errors import DfdetectError
from dfdetect.records import file_sha256
from dfdetect.train.backbones import create_backbone

VAL_METRICS_KEY = "dfdetect_val_metrics"
TRAINING_DATA_KEY = "dfdetect_training_data"
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "poly")
EMA_PREFIX = "ema_net."


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


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay at an optimizer step: ramped up from 0.1 as (1 + step) / (10 + step), so the
    average does not stay anchored to the random or ImageNet start for the first thousands of steps."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1 − decay)·model for parameters; buffers (BatchNorm statistics) are copied."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


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
        logits, labels, groups = (torch.cat(s) if isinstance(s, list) else s
                                  for s in (self.logits, self.labels, self.groups))
        video_logits, _ = mean_by_group(logits, groups)
        video_labels, _ = mean_by_group(labels, groups)
        return binary_auroc(torch.sigmoid(video_logits), video_labels.round().long())


def frame_metrics(prefix: str) -> MetricCollection:
    return MetricCollection({"auc": BinaryAUROC(), "ap": BinaryAveragePrecision(), "acc": BinaryAccuracy(threshold=0.5),
                             "eer": BinaryEER()}, prefix=prefix)


def build_contract(hparams: dict, mean: tuple[float, float, float], std: tuple[float, float, float],
                   val_metrics: dict, training_data: dict) -> ModelContract:
    """The contract of a detector, from the plain values a checkpoint holds."""
    preprocessing = Preprocessing(input_size=int(hparams["input_size"]), mean=tuple(mean), std=tuple(std),
                                  crop_margin=float(hparams["crop_margin"]))
    return ModelContract(preprocessing=preprocessing, backbone=hparams["backbone"], detector="blazeface",
                         training_data=dict(training_data), val_metrics=dict(val_metrics),
                         toolkit_version=dfdetect.__version__)


def network_normalisation(network: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std the backbone was pretrained with (ImageNet when timm does not say)."""
    cfg = getattr(network, "pretrained_cfg", {}) or {}
    mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


class DetectorModule(pl.LightningModule):
    """Binary real(0)/fake(1) classifier on face crops."""

    def __init__(self, backbone: str = "efficientnet_b0", pretrained: bool | str = False, input_size: int = 224,
                 crop_margin: float = 1.3, lr: float = 1e-3, weight_decay: float = 1e-4,
                 label_smoothing: float = 0.0, warmup_fraction: float = 0.05, drop_rate: float = 0.2,
                 optimizer: str = "adamw", momentum: float = 0.9, schedule: str = "cosine", poly_power: float = 0.9,
                 ema_decay: float | None = None, quality_consistency: float = 0.0, channels_last: bool = True):
        """channels_last: keep weights and batches in NHWC memory order. Measured on 2 CPU cores, an
        EfficientNet-Lite0 training step at 128 px took 0.74 s instead of 1.12 s (batch 48); it is also the
        layout GPU convolutions with mixed precision prefer. The numbers computed are the same.

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
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False).eval() if ema_decay is not None else None
        self.input_mean, self.input_std = network_normalisation(self.net)
        self.val_frame = frame_metrics("val/")
        self.test_frame = frame_metrics("test/")
        self.val_video = VideoAUROC()
        self.test_video = VideoAUROC()
        self.val_metrics: dict[str, float] = {}
        self.training_data: dict = {}

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
            update_ema(self.ema_net, self.net, ema_decay_at(self.global_step, self.hparams.ema_decay))

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
        values = {**frame.compute(), f"{stage}/video_auc": video.compute()}
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

    def configure_optimizers(self):
        params = self.net.parameters()
        if self.hparams.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=self.hparams.lr, momentum=self.hparams.momentum, nesterov=True,
                                        weight_decay=self.hparams.weight_decay)
        elif self.hparams.optimizer == "adam":  # L2 in the gradient, as DeepfakeBench's recipes use it
            optimizer = torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = max(1, round(self.hparams.warmup_fraction * total_steps))
        schedule, power = self.hparams.schedule, self.hparams.poly_power
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_factor(step, warmup_steps, total_steps, schedule, power))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[VAL_METRICS_KEY] = dict(self.val_metrics)
        checkpoint[TRAINING_DATA_KEY] = dict(self.training_data)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_metrics = dict(checkpoint.get(VAL_METRICS_KEY, {}))
        self.training_data = dict(checkpoint.get(TRAINING_DATA_KEY, {}))

    def contract(self) -> ModelContract:
        return build_contract(dict(self.hparams), self.input_mean, self.input_std, self.val_metrics,
                              self.training_data)


def load_detector(checkpoint: str | Path) -> tuple[nn.Module, ModelContract]:
    """The eval-mode network of a fit checkpoint (float32 NCHW normalised in, N×1 logits out) and
    its contract. The backbone is rebuilt without pretrained weights: the checkpoint has them all.
    A run that kept an EMA of its weights was validated with the average, so the average is loaded."""
    path = Path(checkpoint)
    if not path.is_file():
        raise DfdetectError("missing_path", "checkpoint not found", path, "pass a .ckpt written by `dfdetect fit`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise DfdetectError("bad_input", f"cannot load checkpoint ({exc.__class__.__name__}: {exc})", path,
                            "pass a .ckpt written by `dfdetect fit`") from exc
    if not isinstance(state, dict) or "hyper_parameters" not in state or "state_dict" not in state:
        raise DfdetectError("bad_input", "not a dfdetect fit checkpoint", path,
                            "pass a .ckpt written by `dfdetect fit`")
    hparams = state["hyper_parameters"]
    network = create_backbone(hparams["backbone"], pretrained=False, drop_rate=hparams.get("drop_rate", 0.0))
    prefix = EMA_PREFIX if hparams.get("ema_decay") is not None else "net."
    weights = {k.removeprefix(prefix): v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    network.load_state_dict(weights)
    network.eval()
    mean, std = network_normalisation(network)
    contract = build_contract(hparams, mean, std, state.get(VAL_METRICS_KEY, {}), state.get(TRAINING_DATA_KEY, {}))
    contract.checkpoint_sha256 = file_sha256(path)
    return network, contract
