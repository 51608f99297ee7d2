"""A tiny exported detector shared by the scan tests (EfficientNet-B0 at 64 px, random weights:
the tests check plumbing and arithmetic, not accuracy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import timm
import torch

from dfdetect.export import export_onnx, london_parity_crops
from dfdetect.model.contract import ModelContract, Preprocessing

os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    contract = ModelContract(preprocessing=Preprocessing(input_size=64), backbone="efficientnet_b0",
                             frames_per_video=8, temperature=2.0, aggregation="topk_mean:k=2",
                             thresholds={"default": 0.5})
    torch.manual_seed(0)
    network = timm.create_model("efficientnet_b0", num_classes=1)
    out = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(network, contract, out, sample=london_parity_crops(contract, limit=4))
    return out
