"""Which model file a session runs (`--precision`), and TensorRT's engine cache options."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfdetect.errors import DfdetectError
from dfdetect.model.session import choose_model_file, precision_sibling, provider_options


@pytest.fixture()
def model_dir(tmp_path) -> Path:
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "lone.onnx"):
        (tmp_path / name).write_bytes(b"onnx")
    return tmp_path


def test_siblings_are_named_from_the_float_model(tmp_path):
    float_model = tmp_path / "model.onnx"
    assert precision_sibling(float_model, "int8") == tmp_path / "model.int8.onnx"
    assert precision_sibling(tmp_path / "model.fp16.onnx", "int8") == tmp_path / "model.int8.onnx"
    assert precision_sibling(tmp_path / "model.int8.onnx", "fp32") == float_model


def test_auto_takes_int8_on_a_cpu_and_fp16_on_a_gpu_when_they_exist(model_dir):
    model = model_dir / "model.onnx"
    assert choose_model_file(model, on_gpu=False) == (model_dir / "model.int8.onnx", "int8")
    assert choose_model_file(model, on_gpu=True) == (model_dir / "model.fp16.onnx", "fp16")
    assert choose_model_file(model_dir / "lone.onnx", on_gpu=False) == (model_dir / "lone.onnx", "fp32")
    assert choose_model_file(model_dir / "model.fp16.onnx", on_gpu=False) == (model_dir / "model.fp16.onnx", "fp16")


def test_an_explicit_precision_insists_on_its_file(model_dir):
    model = model_dir / "model.onnx"
    assert choose_model_file(model, on_gpu=False, precision="fp32") == (model, "fp32")
    assert choose_model_file(model_dir / "model.int8.onnx", on_gpu=True, precision="fp32") == (model, "fp32")
    assert choose_model_file(model, on_gpu=False, precision="fp16") == (model_dir / "model.fp16.onnx", "fp16")
    with pytest.raises(DfdetectError, match="no int8 model") as caught:
        choose_model_file(model_dir / "lone.onnx", on_gpu=False, precision="int8")
    assert caught.value.code == "missing_path" and "--int8" in caught.value.hint
    with pytest.raises(DfdetectError, match="unknown precision"):
        choose_model_file(model, on_gpu=False, precision="bf16")


def test_tensorrt_caches_its_engines_and_builds_fp16_unless_fp32_is_asked(tmp_path):
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    (trt, options), *rest = provider_options(providers, "fp16", tmp_path)
    assert trt == "TensorrtExecutionProvider" and rest == providers[1:]
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_fp16_enable"]
    assert not provider_options(providers, "fp32", tmp_path)[0][1]["trt_fp16_enable"]
    assert provider_options(["CPUExecutionProvider"], "int8", tmp_path) == ["CPUExecutionProvider"]
