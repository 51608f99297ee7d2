"""A contract that parses but does not fit its graph is refused in one line when the model opens, before
any output exists, instead of a traceback at the first file. The graphs are built by hand with
onnx.helper (a mean of the input's pixels as the logit), so each defect is exactly one."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.onnx import embed_contract
from dfdetect.model.session import OnnxModel
from dfdetect.sample_data import london_images

SIZE = 32


def mean_pixel_model(path: Path, contract: ModelContract, output: str = "logits", per_image: int = 1) -> Path:
    """images [N, 3, SIZE, SIZE] → `output` [N, per_image]: the mean of each image's pixels, repeated."""
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
             helper.make_node("Tile", ["column", "repeats"], [output])]
    graph = helper.make_graph(
        nodes, "mean_pixel", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", per_image])],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("repeats", TensorProto.INT64, [2], [1, per_image])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    embed_contract(proto, contract)
    onnx.save(proto, str(path))
    return path


GOOD = ModelContract(preprocessing=Preprocessing(input_size=SIZE), thresholds={"default": 0.5})
DEFECTS = {
    "no_logits": (GOOD, {"output": "scores"}, "no 'logits' output"),
    "three_logits": (GOOD, {"per_image": 3}, "not one per image"),
    "size_zero": (dataclasses.replace(GOOD, preprocessing=Preprocessing(input_size=0)), {}, "input_size 0 "),
    "size_negative": (dataclasses.replace(GOOD, preprocessing=Preprocessing(input_size=-5)), {}, "input_size -5 "),
    "size_text": (dataclasses.replace(GOOD, preprocessing=Preprocessing(input_size="big")), {}, "input_size 'big' "),
    "size_other": (dataclasses.replace(GOOD, preprocessing=Preprocessing(input_size=64)), {},
                   "the contract says [N, 3, 64, 64]"),
    "default_not_named": (dataclasses.replace(GOOD, default_threshold="eer"), {},
                          "default_threshold 'eer' is not among the thresholds ['default']"),
    "temperature_zero": (dataclasses.replace(GOOD, temperature=0.0), {}, "temperature 0.0 is not a positive number"),
}


def test_a_contract_that_fits_opens_and_scores(tmp_path):
    model = OnnxModel(mean_pixel_model(tmp_path / "good.onnx", GOOD), device="cpu")
    batch = np.stack([np.full((3, SIZE, SIZE), v, np.float32) for v in (0.25, -1.0)])
    np.testing.assert_allclose(model.logits(batch), [0.25, -1.0])


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_contract_that_does_not_fit_is_refused_when_the_model_opens(tmp_path, capsys, defect):
    contract, graph, message = DEFECTS[defect]
    path = mean_pixel_model(tmp_path / f"{defect}.onnx", contract, **graph)
    with pytest.raises(DfdetectError) as caught:
        OnnxModel(path, device="cpu")
    assert caught.value.code == "bad_input" and message in caught.value.message, caught.value.message

    face = Path(shutil.copy(london_images()[0], tmp_path / "face.jpg"))
    out = tmp_path / "r.jsonl"
    assert main(["scan", str(face), "--model", str(path), "--out", str(out), "--device", "cpu", "--workers", "0"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and message in errors[0], errors
    assert not out.exists() and not (tmp_path / "r.jsonl.manifest.json").exists()


def test_an_onnx_load_failure_says_why(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07" + b"not a protobuf" * 10)
    with pytest.raises(DfdetectError) as caught:
        OnnxModel(broken, device="cpu")
    assert caught.value.message.startswith("ONNX Runtime cannot load the model (")
    assert len(caught.value.message) > len("ONNX Runtime cannot load the model (Fail)") + 10
