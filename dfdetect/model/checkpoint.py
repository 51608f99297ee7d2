"""A `dfdetect fit` checkpoint as a model: the one place a checkpoint file is opened.

Checkpoints hold only plain types (tensors, numbers, strings, dicts), so they are read with
`torch.load(weights_only=True)` passed explicitly (model.torch_files.load_plain, which Lightning's
`--ckpt_path` also goes through, in train.cli): a checkpoint from someone else then cannot run code on
load, whatever torch's default and wherever the file comes from. The
network is rebuilt from the backbone name with `model.backbones` and the weights, so loading needs
nothing from the training package, and every stage that takes a checkpoint (calibrate, export,
evaluate, the recipes) depends down on this module rather than on `train`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

import dfdetect
from dfdetect.errors import DfdetectError
from dfdetect.model.backbones import create_backbone
from dfdetect.model.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract
from dfdetect.model.crops import ExtractOptions
from dfdetect.model.torch_files import URL_SCHEMES, load_plain
from dfdetect.records import file_sha256

VAL_METRICS_KEY = "dfdetect_val_metrics"
TRAINING_DATA_KEY = "dfdetect_training_data"
CROPS_KEY = "dfdetect_crops"  # the ExtractOptions of the training crops, as a dict
NETWORK_PREFIX = "net."
EMA_PREFIX = "ema_net.module."  # timm's ModelEmaV3 keeps the averaged copy as `.module`


def read_checkpoint(path: str | Path) -> dict:
    """A fit checkpoint's contents, through load_plain. A local file: the stages record its sha256."""
    if not Path(path).is_file():
        hint = ("download it and pass the local file" if str(path).startswith(URL_SCHEMES)
                else "pass a .ckpt written by `dfdetect fit`")
        raise DfdetectError("missing_path", "checkpoint not found", path, hint)
    state = load_plain(path)
    if not isinstance(state, dict) or "hyper_parameters" not in state or "state_dict" not in state:
        raise DfdetectError("bad_input", "not a dfdetect fit checkpoint", path,
                            "pass a .ckpt written by `dfdetect fit`")
    return state


def network_normalisation(network: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std the backbone was pretrained with (ImageNet when timm does not say)."""
    cfg = getattr(network, "pretrained_cfg", {}) or {}
    mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def build_contract(hparams: dict, mean: tuple[float, ...], std: tuple[float, ...], val_metrics: dict,
                   training_data: dict, crops: ExtractOptions | None) -> ModelContract:
    """The contract of a detector, from the plain values a checkpoint holds: the network's input size and
    normalisation, and the crop geometry (detector, margin, alignment) its training crops were cut with.
    Crops without a record (made by another tool) take the model's `crop_margin` and the defaults."""
    if crops is None:
        margin = hparams.get("crop_margin")
        crops = ExtractOptions() if margin is None else ExtractOptions(margin=margin)
    preprocessing = dataclasses.replace(crops.preprocessing(), input_size=int(hparams["input_size"]),
                                        mean=tuple(mean), std=tuple(std))
    return ModelContract(preprocessing=preprocessing, backbone=hparams["backbone"], detector=crops.detector,
                         training_data=dict(training_data), val_metrics=dict(val_metrics),
                         toolkit_version=dfdetect.__version__)


def recorded_crops(state: dict) -> ExtractOptions | None:
    """The training crops' ExtractOptions a checkpoint carries, if any."""
    recorded = state.get(CROPS_KEY)
    return ExtractOptions(**recorded) if recorded else None


def load_checkpoint(path: str | Path) -> tuple[nn.Module, ModelContract]:
    """The eval-mode network of a fit checkpoint (float32 NCHW normalised in, N×1 logits out) and
    its contract. The backbone is rebuilt without pretrained weights: the checkpoint has them all.
    A run that kept an EMA of its weights was validated with the average, so the average is loaded."""
    state = read_checkpoint(path)
    hparams = state["hyper_parameters"]
    network = create_backbone(hparams["backbone"], pretrained=False, drop_rate=hparams.get("drop_rate", 0.0))
    prefix = EMA_PREFIX if hparams.get("ema_decay") is not None else NETWORK_PREFIX
    network.load_state_dict({k.removeprefix(prefix): v for k, v in state["state_dict"].items() if k.startswith(prefix)})
    network.eval()
    mean, std = network_normalisation(network)
    contract = build_contract(hparams, mean, std, state.get(VAL_METRICS_KEY, {}), state.get(TRAINING_DATA_KEY, {}),
                              recorded_crops(state))
    contract.checkpoint_sha256 = file_sha256(path)
    return network, contract
