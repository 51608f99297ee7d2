"""The model contract read and applied by another runtime: Node.js with onnxruntime-node.

The Node script gets nothing but the ONNX file and the crops; if it reproduces the Python
scanner's probabilities and decision threshold, the contract (and docs/model-contract.md, which it
follows) is complete. The npm packages come from the committed package-lock.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.special import expit

from dfdetect.export import export_onnx, london_parity_crops
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.session import OnnxModel
from dfdetect.sample_data import LONDON_DIR

REPO = Path(__file__).resolve().parents[2]
CONSUMER = Path(__file__).with_name("consume.mjs")
# `make setup` / CI runs the same command; --ignore-scripts: onnxruntime-node's install script fetches
# GPU libraries from outside the npm registry, while its CPU binary ships inside the package
NPM_INSTALL = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
TOLERANCE = 1e-4

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: no Node.js runtime "
                                "to consume the model in (install Node.js >= 18 to run this test)")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    modules = REPO / "node_modules"
    if not (modules / "onnxruntime-node").is_dir() or not (modules / "pngjs").is_dir():
        subprocess.run(NPM_INSTALL, cwd=REPO, check=True, capture_output=True, timeout=600)
    return modules


@pytest.fixture(scope="module")
def model_and_crops(tmp_path_factory) -> tuple[Path, list[Path], np.ndarray]:
    """A small random conv net with a calibrated contract, and real face crops saved as PNG."""
    contract = ModelContract(preprocessing=Preprocessing(input_size=64, mean=(0.5, 0.45, 0.4), std=(0.25, 0.2, 0.3)),
                             backbone="tiny-conv", temperature=1.7, logit_bias=-0.4, aggregation="mean",
                             thresholds={"eer": 0.88, "fpr@0.01": 0.97, "default": 0.88}, default_threshold="eer")
    crops = london_parity_crops(contract, limit=6)
    torch.manual_seed(3)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                                  torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(8, 1))
    with torch.no_grad():
        network[-1].weight.mul_(150.0)  # spread the logits over several units, so equal outputs mean something
    root = tmp_path_factory.mktemp("node")
    export_onnx(network.eval(), contract, root / "model.onnx", sample=crops)
    paths = []
    for i, crop in enumerate(crops):
        paths.append(root / f"face_{i}.png")
        Image.fromarray(crop).save(paths[-1])
    shutil.copy(LONDON_DIR / "ATTRIBUTION.md", root / "ATTRIBUTION.md")  # the crops are CC BY 4.0 faces
    return root / "model.onnx", paths, crops


def test_node_consumer_reproduces_the_python_scanner(node_modules, model_and_crops):
    model_path, crop_paths, crops = model_and_crops
    completed = subprocess.run(["node", str(CONSUMER), str(model_path), *map(str, crop_paths)], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    node = json.loads(completed.stdout)

    model = OnnxModel(model_path, device="cpu")  # the scanner's session and its per-face arithmetic
    logits = model.logits(model.contract.preprocessing.to_tensor(crops)).astype(np.float64)
    expected = expit(logits / 1.7 - 0.4)
    threshold_name, threshold = model.contract.decision_threshold()

    node_probabilities = np.array([r["probability"] for r in node["results"]])
    assert node_probabilities.shape == (len(crop_paths),)
    assert expected.std() > 0.05  # the faces get clearly different scores: agreement is not trivial
    np.testing.assert_allclose(node_probabilities, expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose([r["graph_probability"] for r in node["results"]], expected, atol=TOLERANCE, rtol=0)
    assert (node["threshold_name"], node["threshold"]) == (threshold_name, threshold) == ("eer", 0.88)
    decisions = [r["decision"] for r in node["results"]]
    assert decisions == list(expected >= threshold) and 0 < sum(decisions) < len(decisions)
    assert node["contract"] == json.loads(model.contract.to_json())
    assert node["inputs"] == ["images"] and node["outputs"] == ["logits", "probability"]
