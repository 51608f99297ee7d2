"""`dfdetect explain`: why a face was flagged, as a heatmap over the face crop the model scored.

Two methods, for two kinds of deployment:
- `gradcam` (a `dfdetect fit` checkpoint, needs torch): Grad-CAM through Captum's `LayerGradCam` on
  the last convolutional stage of a CNN — the last module whose output is still a spatial map — or,
  for a vision transformer, on its last block's patch tokens laid back out as their grid.
- `occlusion` (any model, ONNX Runtime alone; `dfdetect.model.heatmaps`, shared with `scan --explain`):
  how far the logit falls when each region is covered.

Both maps are positive where a region pushes the score towards "fake". The PNG shows the crop and the
heatmap over it side by side, so a reviewer sees what was scored and where the evidence sits.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from dfdetect.errors import DfdetectError
from dfdetect.faces import create_detector
from dfdetect.media.io import read_image
from dfdetect.model.checkpoint import load_checkpoint
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.heatmaps import occlusion_map, peak, write_heatmap_png
from dfdetect.model.resources import default_model
from dfdetect.model.session import OnnxModel

METHODS = ("auto", "gradcam", "occlusion")


def is_vision_transformer(network: nn.Module) -> bool:
    """timm's ViT family: patch tokens after `num_prefix_tokens` class/register tokens."""
    return all(hasattr(network, name) for name in ("patch_embed", "blocks", "num_prefix_tokens"))


def last_spatial_module(network: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last module, in the order a forward pass finishes them, whose output is a map (N, C, h, w)
    with h, w > 1: for a CNN the end of its last convolutional stage, before global pooling."""
    finished: list = []

    def record(module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.ndim == 4 and min(output.shape[2:]) > 1:
            finished.append(module)

    handles = [module.register_forward_hook(record) for module in network.modules()]
    try:
        with torch.no_grad():
            network(example)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise DfdetectError("bad_input", "the network has no spatial feature map to explain", None,
                            "use --method occlusion")
    return finished[-1]


def token_grid_layer(network: nn.Module) -> tuple[nn.Module, torch.utils.hooks.RemovableHandle]:
    """For a ViT: an identity module that the last block's patch tokens pass through as a (N, C, h, w)
    grid, installed by a forward hook, so Grad-CAM weighs token positions as it weighs a conv map's
    pixels. Returns (layer, hook handle); remove the handle when done."""
    grid_layer = nn.Identity()
    prefix = int(network.num_prefix_tokens)

    def through_grid(_module, _inputs, tokens: torch.Tensor) -> torch.Tensor:
        batch, count, channels = tokens.shape
        side = math.isqrt(count - prefix)
        grid = tokens[:, prefix:].transpose(1, 2).reshape(batch, channels, side, side)
        patches = grid_layer(grid).flatten(2).transpose(1, 2)
        return torch.cat([tokens[:, :prefix], patches], dim=1)

    return grid_layer, network.blocks[-1].register_forward_hook(through_grid)


def grad_cam_map(network: nn.Module, crop: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """(H, W) Grad-CAM of the fake logit (ReLU of the gradient-weighted feature map), upsampled to the crop."""
    batch = torch.from_numpy(preprocessing.to_tensor(crop[None]))
    handle = None
    if is_vision_transformer(network):
        layer, handle = token_grid_layer(network)
    else:
        layer = last_spatial_module(network, batch)
    try:
        attribution = LayerGradCam(network, layer).attribute(batch, target=0, relu_attributions=True)
    finally:
        if handle is not None:
            handle.remove()
    upsampled = LayerAttribution.interpolate(attribution, crop.shape[:2], interpolate_mode="bilinear")
    return upsampled[0, 0].detach().double().numpy()


@dataclass
class Explainer:
    """A model with a way to explain its scores: Grad-CAM for a checkpoint, occlusion for an ONNX file
    (or for a checkpoint when asked)."""

    contract: ModelContract
    method: str
    logits: Callable[[np.ndarray], np.ndarray]
    network: nn.Module | None = None  # the torch network, for Grad-CAM

    def heatmap(self, crop: np.ndarray) -> np.ndarray:
        if self.method == "gradcam":
            return grad_cam_map(self.network, crop, self.contract.preprocessing)
        return occlusion_map(self.logits, crop, self.contract.preprocessing)

    def probability(self, crop: np.ndarray) -> float:
        raw = self.logits(self.contract.preprocessing.to_tensor(crop[None]))
        return float(self.contract.scaling().probability(raw)[0])


def load_explainer(model_path: str | Path, method: str = "auto") -> Explainer:
    """`auto`: Grad-CAM for a .ckpt, occlusion for an .onnx (the only method ONNX allows)."""
    if method not in METHODS:
        raise DfdetectError("bad_config", f"unknown method {method!r}", None, f"choose one of {list(METHODS)}")
    model_path = Path(model_path)
    if model_path.suffix.lower() == ".onnx":
        if method == "gradcam":
            raise DfdetectError("bad_config", "Grad-CAM needs the network's gradients, which an ONNX file does not "
                                "give", model_path, "pass the .ckpt from `dfdetect fit`, or use --method occlusion")
        onnx_model = OnnxModel(model_path, device="cpu")
        return Explainer(onnx_model.contract, "occlusion", onnx_model.logits)
    network, contract = load_checkpoint(model_path)

    def checkpoint_logits(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).double().numpy().reshape(-1)

    return Explainer(contract, "gradcam" if method == "auto" else method, checkpoint_logits, network)


def explain_images(paths: Sequence[str | Path], model_path: str | Path, out: str | Path, method: str = "auto",
                   detector: str | None = None) -> list[dict]:
    """Detect every face of each image, cut it as the model's contract says, score it and write its
    heatmap PNG into `out`; returns (and writes to `out/explain.json`) one entry per face."""
    explainer = load_explainer(model_path, method)
    prep = explainer.contract.preprocessing
    face_detector = create_detector(detector or explainer.contract.detector)
    out = Path(out)
    entries = []
    for path in map(Path, paths):
        image = read_image(path)
        faces = face_detector.detect([image])[0]
        if not faces:
            entries.append({"path": str(path), "face_index": None, "status": "no_face"})
        for index, face in enumerate(faces):
            crop = prep.crop(image, face)[0]
            heatmap = explainer.heatmap(crop)
            png = write_heatmap_png(crop, heatmap, out / f"{path.stem}_face{index}_{explainer.method}.png")
            entries.append({"path": str(path), "face_index": index, "status": "ok",
                            "box": [round(float(v), 1) for v in face.box],
                            "probability": explainer.probability(crop), "method": explainer.method,
                            "peak": peak(heatmap), "heatmap": str(png.resolve())})
    out.mkdir(parents=True, exist_ok=True)
    (out / "explain.json").write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files whose faces to explain")
    parser.add_argument("--model", default=None,
                        help="a .ckpt (Grad-CAM) or .onnx (occlusion) model (default: the starter model, ONNX)")
    parser.add_argument("--out", required=True, help="folder for the heatmap PNGs and explain.json")
    parser.add_argument("--method", default="auto", choices=METHODS,
                        help="auto: Grad-CAM for a checkpoint, occlusion for ONNX")
    parser.add_argument("--detector", default=None, help="face detector (default: the one in the model contract)")


def run(args: argparse.Namespace) -> None:
    entries = explain_images(args.images, args.model or default_model(), args.out, args.method, args.detector)
    for entry in entries:
        if entry["status"] != "ok":
            print(f"{entry['path']}: no face")
            continue
        x, y = entry["peak"]
        print(f"{entry['path']} face {entry['face_index']}: P(fake) {entry['probability']:.3f}, {entry['method']} "
              f"peak at ({x}, {y}) → {entry['heatmap']}")
    print(f"wrote {Path(args.out) / 'explain.json'}")
