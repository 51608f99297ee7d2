"""ONNX Runtime session: provider choice, the contract and hash of the file, logits per face."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dfdetect.errors import DfdetectError
from dfdetect.export import export_onnx
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.session import OnnxModel, choose_providers

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                  torch.nn.Flatten(), torch.nn.Linear(4, 1))
    contract = ModelContract(preprocessing=Preprocessing(input_size=32), temperature=3.0, aggregation="median")
    out = tmp_path_factory.mktemp("session") / "small.onnx"
    sample = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    export_onnx(network, contract, out, sample=sample)
    return out, sample


def test_provider_choice_follows_the_device():
    assert choose_providers("auto", GPU_BUILD) == GPU_BUILD
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("cpu", GPU_BUILD) == ["CPUExecutionProvider"]
    assert choose_providers("cuda", GPU_BUILD) == GPU_BUILD[:2]
    assert choose_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CUDAExecutionProvider"]
    for device, available in (("cuda", ["CPUExecutionProvider"]), ("tpu", GPU_BUILD)):
        with pytest.raises(DfdetectError) as caught:
            choose_providers(device, available)
        assert caught.value.code == "bad_config"


def test_model_exposes_contract_hash_and_logits(model_file, caplog):
    path, sample = model_file
    with caplog.at_level(logging.INFO, logger="dfdetect.model.session"):
        model = OnnxModel(path, device="auto", intra_op_threads=1)
    assert model.providers == [p for p in ort.get_available_providers() if p in GPU_BUILD]
    assert str(model.providers) in caplog.text  # the providers actually active are logged
    assert model.contract.temperature == 3.0 and model.contract.aggregation == "median"
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    batch = model.contract.preprocessing.to_tensor(sample)
    logits = model.logits(batch)
    assert logits.shape == (6,)
    probability = model.session.run(["probability"], {"images": batch})[0].reshape(-1)
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-logits / 3.0)), atol=1e-6)
    np.testing.assert_allclose(model.logits(batch[2:3]), logits[2:3], atol=1e-6)


def test_bad_model_files(tmp_path):
    with pytest.raises(DfdetectError) as missing:
        OnnxModel(tmp_path / "absent.onnx")
    assert missing.value.code == "missing_path"
    text = tmp_path / "text.onnx"
    text.write_text("hello")
    with pytest.raises(DfdetectError) as garbage:
        OnnxModel(text, device="cpu")
    assert garbage.value.code == "bad_input"
