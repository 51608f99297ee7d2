"""Export: parity on real face crops, the contract inside the file, calibrated output, dynamic batch."""

from __future__ import annotations

import argparse
import dataclasses
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import timm
import torch
from PIL import Image

from dfdetect.errors import DfdetectError
from dfdetect.export import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    add_arguments,
    export_onnx,
    london_parity_crops,
    run,
)
from dfdetect.model.calibration import apply_calibration
from dfdetect.model.contract import CONTRACT_KEY, ModelContract, Preprocessing
from dfdetect.model.onnx import read_contract
from dfdetect.records import CROP_COLUMNS, CropRow, write_rows
from dfdetect.sample_data import LONDON_DIR, london_images

INPUT_SIZE = 64
TEMPERATURE = 1.7
LOGIT_BIAS = 0.6


@pytest.fixture(scope="module")
def contract() -> ModelContract:
    return ModelContract(preprocessing=Preprocessing(input_size=INPUT_SIZE, crop_margin=1.3),
                         backbone="efficientnet_b0", temperature=TEMPERATURE, logit_bias=LOGIT_BIAS,
                         aggregation="confident",
                         thresholds={"default": 0.5, "low_fpr": 0.83}, default_threshold="low_fpr")


@pytest.fixture(scope="module")
def face_crops(contract) -> np.ndarray:
    return london_parity_crops(contract, limit=12)


@pytest.fixture(scope="module")
def network(contract, face_crops) -> torch.nn.Module:
    """Random-init EfficientNet-B0 whose BatchNorm statistics are measured on the face crops: at
    plain random init its logits are ~1e-5 for every input, and parity on those would prove nothing."""
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_b0", num_classes=1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
            torch.nn.init.ones_(module.weight)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(contract.preprocessing.to_tensor(face_crops)))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, network, contract, face_crops):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    return out, export_onnx(network, contract, out, sample=face_crops)


def test_parity_on_real_face_crops_and_contract_round_trip(exported, contract, face_crops):
    out, report = exported
    assert face_crops.shape == (12, INPUT_SIZE, INPUT_SIZE, 3)
    assert report.parity_faces == 12
    assert 0.0 <= report.parity_max_abs_diff <= FP32_TOLERANCE
    assert report.opset == 17 and not report.fp16
    stored = read_contract(out)
    assert stored == report.contract
    assert stored.toolkit_version and stored.created_at.startswith("20")
    assert dataclasses.replace(stored, toolkit_version="", created_at="") == contract
    assert not list(out.parent.glob("*.tmp"))


def test_probability_output_is_the_calibrated_sigmoid_of_the_logits(exported, network, contract, face_crops):
    out, _ = exported
    batch = contract.preprocessing.to_tensor(face_crops)
    logits, probability = ort.InferenceSession(str(out)).run(["logits", "probability"], {"images": batch})
    assert logits.std() > 1.0  # scores spread over several logit units: the comparison below means something
    calibrated = logits.astype(np.float64) / TEMPERATURE + LOGIT_BIAS
    np.testing.assert_allclose(probability, 1.0 / (1.0 + np.exp(-calibrated)), atol=1e-6)
    with torch.no_grad():
        expected = network(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-3)


def test_batch_axis_is_dynamic(exported, contract, face_crops):
    out, _ = exported
    model = onnx.load(str(out))
    assert model.graph.input[0].name == "images"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size
    session = ort.InferenceSession(str(out))
    batch = contract.preprocessing.to_tensor(face_crops[:5])
    five = session.run(["probability"], {"images": batch})[0]
    ones = np.concatenate([session.run(["probability"], {"images": batch[i:i + 1]})[0] for i in range(5)])
    assert five.shape == (5, 1) and ones.shape == (5, 1)
    np.testing.assert_allclose(five, ones, atol=1e-6)


def test_fp16_keeps_float32_inputs_and_outputs(tmp_path, network, contract, face_crops):
    report = export_onnx(network, contract, tmp_path / "half.onnx", fp16=True, sample=face_crops)
    model = onnx.load(report.path)
    assert report.fp16 and report.parity_max_abs_diff <= FP16_TOLERANCE
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert [t.type.tensor_type.elem_type for t in [*model.graph.input, *model.graph.output]] == \
        [onnx.TensorProto.FLOAT] * 3
    assert read_contract(report.path).temperature == TEMPERATURE


class _TraceDependent(torch.nn.Module):
    """Its output depends on how often it was called: tracing bakes in a different constant than
    the eager run, the kind of divergence the parity check exists to catch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return images.mean(dim=(1, 2, 3)).reshape(-1, 1) * float(self.calls)


def test_parity_failure_raises_and_writes_nothing(tmp_path, contract, face_crops):
    out = tmp_path / "bad.onnx"
    with pytest.raises(DfdetectError, match="differ by") as caught:
        export_onnx(_TraceDependent(), contract, out, sample=face_crops)
    assert caught.value.code == "internal"
    assert list(tmp_path.iterdir()) == []


def test_parity_compares_raw_logits_so_a_high_temperature_cannot_hide_a_broken_graph(tmp_path, contract, face_crops):
    """At temperature 10000 every probability is 0.5 within 1e-4, whatever the graph computes: the
    comparison of probabilities alone passed a graph whose logits are off by half (issue 15 #7)."""
    hot = dataclasses.replace(contract, temperature=1e4)
    with pytest.raises(DfdetectError, match="raw logits differ by") as caught:
        export_onnx(_TraceDependent(), hot, tmp_path / "bad.onnx", sample=face_crops)
    assert caught.value.code == "internal" and list(tmp_path.iterdir()) == []


def test_read_contract_errors(tmp_path, exported):
    with pytest.raises(DfdetectError) as missing:
        read_contract(tmp_path / "absent.onnx")
    assert missing.value.code == "missing_path"
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(DfdetectError) as not_onnx:
        read_contract(text)
    assert not_onnx.value.code == "bad_input"
    bare = onnx.load(str(exported[0]))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(DfdetectError, match=CONTRACT_KEY) as no_contract:
        read_contract(tmp_path / "bare.onnx")
    assert no_contract.value.code == "bad_input"


def test_cli_exports_a_fit_checkpoint_with_parity_on_a_crops_dir(tmp_path, face_crops, capsys):
    import pytorch_lightning as pl

    from dfdetect.train.module import DetectorModule

    module = DetectorModule(backbone="efficientnet_b0", input_size=INPUT_SIZE)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "fit.ckpt")
    crops_dir = tmp_path / "crops"
    rows = []
    for i, crop in enumerate(face_crops[:4]):  # 80 px on disk, the model takes 64: export resizes
        (crops_dir / "faces").mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).resize((80, 80)).save(crops_dir / f"faces/{i}.png")
        rows.append(CropRow(crop_path=f"faces/{i}.png", source_path=f"/v/{i}.mp4", media_type="video", frame_index=0,
                            face_index=0, track_id=0, x0=0, y0=0, x1=80, y1=80, score=1.0, label=0, split="test",
                            group=str(i), dataset="folder"))
    write_rows(rows, crops_dir / "crops.parquet", CROP_COLUMNS)

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--checkpoint", str(tmp_path / "fit.ckpt"), "--out", str(tmp_path / "m.onnx"),
                           "--crops", str(crops_dir)]))
    printed = capsys.readouterr().out
    assert "parity on raw logits: max |Δlogit| = " in printed and "same ranking of the 4 faces" in printed
    assert "opset 17" in printed
    stored = read_contract(tmp_path / "m.onnx")
    assert stored.backbone == "efficientnet_b0" and stored.preprocessing.input_size == INPUT_SIZE
    assert len(stored.checkpoint_sha256) == 64


def test_opset_18_uses_the_dynamo_exporter_with_a_dynamic_batch(tmp_path, contract, face_crops):
    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 1))
    report = export_onnx(small, contract, tmp_path / "m18.onnx", opset=18, sample=face_crops)
    assert report.opset == 18 and report.parity_max_abs_diff <= FP32_TOLERANCE
    session = ort.InferenceSession(report.path)
    for n in (1, 5):
        batch = contract.preprocessing.to_tensor(face_crops[:n])
        assert session.run(["probability"], {"images": batch})[0].shape == (n, 1)


@pytest.fixture(scope="module")
def calibration():
    """A Platt calibration fitted on synthetic validation videos whose logits are twice too confident
    and shifted up by 1.5 (T ≈ 2, bias ≈ −0.75)."""
    from dfdetect.calibrate import calibrate_scores

    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 2.0, 400)
    labels = (rng.random(400) < 1 / (1 + np.exp(-true_logits))).astype(int)
    table = pd.DataFrame({"logit": 2.0 * true_logits + 1.5, "label": labels,
                          "source_path": [f"/v/{i}" for i in range(400)]})
    return calibrate_scores(table, by="video", aggregation="median", default="eer", fprs=[0.05],
                            fitted_on={"scores": "/runs/val/scores.parquet", "scores_sha256": "ab" * 32,
                                       "split": "val"}, method="platt")


def test_calibration_enters_the_contract_and_the_scanner_reads_it_from_the_file_alone(tmp_path, network, contract,
                                                                                        face_crops, calibration):
    import json

    from scipy.special import expit

    from dfdetect.model.session import OnnxModel
    from dfdetect.scan.pipeline import scan_paths

    calibrated = apply_calibration(contract, calibration)
    out = tmp_path / "calibrated.onnx"
    export_onnx(network, calibrated, out, sample=face_crops)

    stored = OnnxModel(out, device="cpu").contract  # the scanner's own view of the file
    assert stored.temperature == calibration.temperature and 1.8 < stored.temperature < 2.2
    assert stored.logit_bias == calibration.bias and -0.95 < stored.logit_bias < -0.55
    assert stored.thresholds == calibration.thresholds and stored.default_threshold == "eer"
    assert stored.decision_threshold() == ("eer", calibration.thresholds["eer"])
    assert stored.aggregation == "median"  # the rule the per-video thresholds were fitted with
    assert stored.val_metrics["calibrated"]["auc"] == calibration.metrics["auc"]
    assert stored.val_metrics["calibrated"]["ece_before"] == calibration.before["ece"]
    assert stored.calibration["scores_sha256"] == "ab" * 32 and stored.calibration["split"] == "val"
    assert stored.preprocessing == contract.preprocessing and stored.backbone == contract.backbone

    faces = tmp_path / "faces"
    faces.mkdir()
    image = london_images()[0]
    shutil.copy(image, faces / image.name)
    shutil.copy(LONDON_DIR / "ATTRIBUTION.md", faces / "ATTRIBUTION.md")
    scan_paths([faces], out, tmp_path / "results.jsonl", device="cpu", progress=False)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    record = next(r for r in records if r["path"].endswith(image.name))
    assert record["status"] == "ok" and record["faces_scored"] == 1
    crop = london_parity_crops(stored, limit=1)  # cut as the scanner cuts
    raw = ort.InferenceSession(str(out)).run(["logits"], {"images": stored.preprocessing.to_tensor(crop)})[0].item()
    assert record["logit"] == pytest.approx(raw / stored.temperature + stored.logit_bias, abs=1e-4)
    assert record["probability"] == pytest.approx(float(expit(raw / stored.temperature + stored.logit_bias)),
                                                  abs=1e-4)
    assert (record["threshold_name"], record["threshold"]) == ("eer", calibration.thresholds["eer"])
    assert record["decision"] == (record["probability"] >= calibration.thresholds["eer"])


def test_cli_exports_with_calibration_simplified_graph_and_labelled_parity(tmp_path, face_crops, calibration, capsys):
    import pytorch_lightning as pl

    from dfdetect.model.calibration import write_calibration
    from dfdetect.train.module import DetectorModule

    torch.manual_seed(0)
    module = DetectorModule(backbone="efficientnet_b0", input_size=INPUT_SIZE)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "fit.ckpt")
    crops_dir = tmp_path / "crops"
    (crops_dir / "faces").mkdir(parents=True)
    rows = []
    for i, crop in enumerate(face_crops):
        Image.fromarray(crop).save(crops_dir / f"faces/{i}.png")
        rows.append(CropRow(crop_path=f"faces/{i}.png", source_path=f"/v/{i}.mp4", media_type="video", frame_index=0,
                            face_index=0, track_id=0, x0=0, y0=0, x1=64, y1=64, score=1.0, label=i % 2, split="val",
                            group=str(i), dataset="folder"))
    write_rows(rows, crops_dir / "crops.parquet", CROP_COLUMNS)
    write_calibration(calibration, tmp_path / "calibration.json")

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--checkpoint", str(tmp_path / "fit.ckpt"), "--out", str(tmp_path / "m.onnx"), "--crops",
                           str(crops_dir), "--calibration", str(tmp_path / "calibration.json"), "--simplify"]))
    printed = capsys.readouterr().out
    assert "simplified" in printed and "same ranking of the 12 faces" in printed
    assert "parity AUC on raw logits: PyTorch" in printed
    assert f"decision threshold eer = {calibration.thresholds['eer']:.6g}" in printed
    stored = read_contract(tmp_path / "m.onnx")
    assert stored.temperature == calibration.temperature and stored.thresholds == calibration.thresholds
    assert stored.logit_bias == calibration.bias != 0.0
    assert len(stored.checkpoint_sha256) == 64 and stored.val_metrics["calibrated"]["unit"] == "video"
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))


def test_simplified_graph_keeps_parity_and_the_dynamic_batch(tmp_path, network, contract, face_crops):
    labels = np.arange(len(face_crops)) % 2
    plain = export_onnx(network, contract, tmp_path / "plain.onnx", sample=face_crops, sample_labels=labels)
    slim = export_onnx(network, contract, tmp_path / "slim.onnx", sample=face_crops, sample_labels=labels,
                       simplify=True)
    assert slim.simplified and slim.parity_max_abs_diff <= FP32_TOLERANCE
    assert len(onnx.load(slim.path).graph.node) < len(onnx.load(plain.path).graph.node)
    assert slim.parity_auc_onnx == slim.parity_auc_torch == plain.parity_auc_torch is not None
    session = ort.InferenceSession(slim.path)
    batch = contract.preprocessing.to_tensor(face_crops[:3])
    assert session.run(["probability"], {"images": batch})[0].shape == (3, 1)
    assert read_contract(slim.path) == slim.contract


def test_parity_auc_counts_pairs_within_tolerance_as_ties():
    from dfdetect.export import parity_aucs

    labels = np.array([0, 0, 1, 1])
    expected = np.array([0.10, 0.50000, 0.50002, 0.90])
    flipped = np.array([0.10, 0.50002, 0.50000, 0.90])  # the close pair swapped within 1e-4
    assert parity_aucs(labels, expected, flipped, 1e-4) == (0.875, 0.875)
    assert parity_aucs(np.zeros(4, int), expected, flipped, 1e-4) == (None, None)
    assert parity_aucs(None, expected, flipped, 1e-4) == (None, None)
