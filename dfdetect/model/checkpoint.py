"""A `dfdetect fit` checkpoint as a model: the one place a checkpoint file is opened.

Checkpoints hold only plain types (tensors, numbers, strings, dicts), so they are read with
`torch.load(weights_only=True)` passed explicitly (load_plain), from a local file or a URL alike, by
every stage and by Lightning's `--ckpt_path` (train.cli): a checkpoint from someone else then cannot
run code on load, whatever torch's default and wherever the file comes from. The
network is rebuilt from the backbone name with `model.backbones` and the weights, so loading needs
nothing from the training package, and every stage that takes a checkpoint (calibrate, export,
evaluate, the recipes) depends down on this module rather than on `train`.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import dfdetect
from dfdetect.errors import DfdetectError
from dfdetect.model.backbones import create_backbone
from dfdetect.model.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract
from dfdetect.model.crops import ExtractOptions
from dfdetect.records import file_sha256

VAL_METRICS_KEY = "dfdetect_val_metrics"
TRAINING_DATA_KEY = "dfdetect_training_data"
CROPS_KEY = "dfdetect_crops"  # the ExtractOptions of the training crops, as a dict
NETWORK_PREFIX = "net."
EMA_PREFIX = "ema_net.module."  # timm's ModelEmaV3 keeps the averaged copy as `.module`


URL_SCHEMES = ("http://", "https://")
_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")


def load_plain(source: str | Path, map_location: Any = "cpu") -> Any:
    """A torch file's contents, from a local path or an http(s) URL, read with weights_only=True
    whatever torch's default (torch < 2.6 and Lightning's URL reader default to unpickling anything).
    A URL is downloaded to a temporary file first, never to a cache. A file that asks for more than
    tensors and plain values is refused in one line naming what it asked for, without torch's
    advice to load it with weights_only=False."""
    text = str(source)
    try:
        if text.startswith(URL_SCHEMES):
            with tempfile.TemporaryDirectory(prefix="dfdetect-ckpt-") as folder:
                local = Path(folder) / "download.ckpt"
                torch.hub.download_url_to_file(text, str(local), progress=False)
                return torch.load(local, map_location=map_location, weights_only=True)
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise unsafe_checkpoint(text, exc) from None
    except Exception as exc:  # torch and urllib raise many types for a missing, corrupt or unreachable file
        raise DfdetectError("bad_input", f"cannot load checkpoint ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})", text,
                            "pass a .ckpt written by `dfdetect fit`") from exc


def unsafe_checkpoint(source: str | Path, refusal: pickle.UnpicklingError) -> DfdetectError:
    """torch's weights_only refusal as one line naming what the file asked to run."""
    named = _GLOBAL.search(str(refusal))
    asked = f"runs {named.group(1)}" if named else "holds objects other than tensors and plain values"
    return DfdetectError("bad_input", f"refused: loading this checkpoint {asked}, and only tensors and plain values "
                         "are loaded", source, "use a checkpoint written by `dfdetect fit`")


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
