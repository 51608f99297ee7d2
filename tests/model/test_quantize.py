"""int8 siblings: written beside the float model when they score like it, refused otherwise, and
picked by the scanner on a CPU."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dfdetect.errors import DfdetectError
from dfdetect.export import ExportReport, add_arguments, export_onnx, int8_sibling, london_parity_crops, run
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.onnx import read_contract
from dfdetect.model.quantize import INT8_TOLERANCE, quantize_int8
from dfdetect.model.session import OnnxModel
from dfdetect.records import CROP_COLUMNS, CropRow, write_rows
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import copy_london_faces

INPUT_SIZE = 48


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    """A small convolutional detector with random weights, exported with its contract, and real crops."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 1))
    contract = ModelContract(preprocessing=Preprocessing(input_size=INPUT_SIZE), frames_per_video=2)
    crops = london_parity_crops(contract, limit=24)
    out = tmp_path_factory.mktemp("int8") / "model.onnx"
    export_onnx(network, contract, out, sample=crops)
    return out, crops


def test_int8_is_written_beside_the_float_model_and_scored_like_it(float_model, tmp_path):
    path, crops = float_model
    report = quantize_int8(path, calibration=crops, sample=crops)  # without labels: no AUC to compare
    int8 = path.with_name("model.int8.onnx")
    assert report.path == str(int8) and int8.exists() and report.parity_faces == len(crops)
    assert 0.0 < report.max_abs_diff <= INT8_TOLERANCE and report.mean_abs_diff <= report.max_abs_diff
    assert report.auc_fp32 is None
    assert read_contract(int8) == read_contract(path)

    session = OnnxModel(path, device="cpu")  # --precision auto on a CPU
    assert (session.path, session.precision) == (int8, "int8")
    assert OnnxModel(path, device="cpu", precision="fp32").path == path

    faces = copy_london_faces(tmp_path / "faces", 2)
    out = tmp_path / "results.jsonl"
    scan_paths(faces, path, out, device="cpu", progress=False)
    manifest = json.loads(out.with_name("results.jsonl.manifest.json").read_text())
    assert manifest["model"]["precision"] == "int8" and manifest["model"]["path"] == str(int8)


def test_int8_that_scores_differently_is_refused_and_not_written(float_model, tmp_path):
    path, crops = float_model
    copy = tmp_path / "model.onnx"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(DfdetectError, match="int8 probabilities differ") as caught:
        quantize_int8(copy, calibration=crops, sample=crops, tolerance=0.0)
    assert "model.int8.onnx not written" in caught.value.message
    labels = np.arange(len(crops)) % 2
    with pytest.raises(DfdetectError, match=r"AUC moves from 0\.\d{4} to 0\.\d{4} in int8"):
        quantize_int8(copy, calibration=crops, sample=crops, sample_labels=labels, auc_tolerance=-1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_crops_of_the_wrong_size_are_refused(float_model):
    path, crops = float_model
    with pytest.raises(DfdetectError, match="calibration crops have shape"):
        quantize_int8(path, calibration=crops[:, :32, :32], sample=crops)


def test_export_int8_without_real_and_fake_crops_is_refused_before_anything_is_written(float_model, tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(DfdetectError, match="--int8 needs --crops"):
        run(parser.parse_args(["--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "m.onnx"),
                               "--int8"]))
    path, crops = float_model
    crops_dir = tmp_path / "crops"
    (crops_dir / "faces").mkdir(parents=True)
    rows = []
    for i, crop in enumerate(crops[:4]):
        Image.fromarray(crop).save(crops_dir / f"faces/{i}.png")
        rows.append(CropRow(crop_path=f"faces/{i}.png", source_path=f"/v/{i}.mp4", media_type="video", frame_index=0,
                            face_index=0, track_id=0, x0=0, y0=0, x1=INPUT_SIZE, y1=INPUT_SIZE, score=1.0, label=0,
                            split="val", group=str(i), dataset="folder"))
    write_rows(rows, crops_dir / "crops.parquet", CROP_COLUMNS)
    report = ExportReport(path=str(path), opset=17, fp16=False, parity_max_abs_diff=0.0, parity_faces=4,
                          parity_max_logit_diff=0.0, parity_same_ranking=True, sha256="", contract=read_contract(path))
    with pytest.raises(DfdetectError, match="needs real and fake crops"):
        int8_sibling(report, crops_dir)
    assert list(tmp_path.glob("*.onnx")) == []
