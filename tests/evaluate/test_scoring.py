"""A checkpoint and its ONNX export score the same crops the same way through evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.export import export_checkpoint
from dfdetect.model.scoring import CLEAN, fit_crop, load_crop_sets, load_scoring_model, score_crops


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import pytorch_lightning as pl
    import torch

    from dfdetect.train.module import DetectorModule

    torch.manual_seed(0)
    module = DetectorModule(backbone="efficientnet_b0", input_size=48)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    path = tmp_path_factory.mktemp("ckpt") / "fit.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_checkpoint_and_its_onnx_export_give_the_same_logits(checkpoint, crop_sets, tmp_path):
    onnx_path = tmp_path / "model.onnx"
    export_checkpoint(checkpoint, onnx_path, crops=crop_sets["tint"])
    crops = load_crop_sets([crop_sets["tint"]], split="test").head(10)
    from_checkpoint = load_scoring_model(checkpoint)
    from_onnx = load_scoring_model(onnx_path)
    assert (from_checkpoint.kind, from_onnx.kind) == ("checkpoint", "onnx")
    assert from_onnx.contract.checkpoint_sha256 == from_checkpoint.sha256
    torch_logits = score_crops(from_checkpoint, crops, batch_size=4)[CLEAN].to_numpy()
    onnx_logits = score_crops(from_onnx, crops, batch_size=7)[CLEAN].to_numpy()
    assert np.isfinite(torch_logits).all()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)


def test_fit_crop_resizes_only_when_needed():
    square = np.zeros((48, 48, 3), np.uint8)
    assert fit_crop(square, 48) is square
    assert fit_crop(np.zeros((80, 60, 3), np.uint8), 48).shape == (48, 48, 3)
