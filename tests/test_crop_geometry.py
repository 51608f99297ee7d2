"""One source for crop geometry: crops cut by MTCNN, eye-aligned, at a non-default margin train a model
whose exported contract says so, and scan then feeds the model exactly the pixels extract cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfdetect import extract as extract_module
from dfdetect.errors import DfdetectError
from dfdetect.export import export_checkpoint
from dfdetect.extract import extract
from dfdetect.faces import create_detector
from dfdetect.media.io import read_image
from dfdetect.model.contract import Preprocessing
from dfdetect.model.crops import ExtractOptions
from dfdetect.model.onnx import read_contract
from dfdetect.model.session import OnnxModel
from dfdetect.records import INDEX_COLUMNS, REAL, IndexRow, write_rows
from dfdetect.sample_data import london_identity, london_images
from dfdetect.scan.pipeline import scan_paths
from dfdetect.train.cli import run_lightning
from dfdetect.train.data import DeepfakeDataModule

SIZE = 64  # tiny_cpu's input size: scan cuts at the model's size, so extract cuts at it too
MARGIN = 1.5
OPTIONS = ExtractOptions(detector="mtcnn", align=True, size=SIZE, margin=MARGIN)
SPLIT_OF_PERSON = ["train"] * 4 + ["val", "test"]


@pytest.fixture(scope="module")
def aligned_crops(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """Six London people (neutral and smiling) cut by MTCNN with eye alignment, split by person; and the
    uint8 crop extract cut for each source image, caught before JPEG encoding."""
    root = tmp_path_factory.mktemp("aligned")
    people = [london_identity(p) for p in london_images()[:len(SPLIT_OF_PERSON)]]
    rows = [IndexRow(path=str(path), media_type="image", label=REAL, dataset="london", group=london_identity(path),
                     split=SPLIT_OF_PERSON[people.index(london_identity(path))])
            for expression in ("neutral", "smiling") for path in london_images(expression)
            if london_identity(path) in people]
    write_rows(rows, root / "index.parquet", INDEX_COLUMNS)
    cut: dict[str, np.ndarray] = {}
    write_jpeg = extract_module._write_jpeg

    def keep_crop(path: Path, crop: np.ndarray, quality: int) -> None:
        cut[path.parent.name] = crop.copy()
        write_jpeg(path, crop, quality)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extract_module, "_write_jpeg", keep_crop)
        extract(root / "index.parquet", root / "crops", OPTIONS, workers=1)
    return root / "crops", {extract_module.source_key(row.path): cut[extract_module.source_key(row.path)]
                            for row in rows}


@pytest.fixture(scope="module")
def exported(aligned_crops, tmp_path_factory) -> Path:
    crops, _ = aligned_crops
    root = tmp_path_factory.mktemp("fit_aligned")
    checkpoint = run_lightning(["fit", "--config", "tiny_cpu", "--data.crops", str(crops), "--data.synthesis", "sbi",
                                "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"])
    export_checkpoint(checkpoint, root / "model.onnx", crops=crops)
    return root / "model.onnx"


@pytest.mark.slow
def test_the_exported_contract_states_how_the_training_crops_were_cut(exported):
    contract = read_contract(exported)
    assert contract.detector == "mtcnn"
    assert contract.preprocessing.alignment == "eyes"
    assert contract.preprocessing.crop_margin == MARGIN
    assert contract.preprocessing.input_size == SIZE


@pytest.mark.slow
def test_scan_feeds_the_model_the_pixels_extract_cut(exported, aligned_crops, tmp_path, monkeypatch):
    _, cut = aligned_crops
    image_path = london_images()[0]
    batches: list[np.ndarray] = []
    logits = OnnxModel.logits
    monkeypatch.setattr(OnnxModel, "logits", lambda self, batch: (batches.append(batch.copy()), logits(self, batch))[1])
    scan_paths([image_path], exported, tmp_path / "r.jsonl", workers=0, progress=False)
    scanned = next(b for b in batches if np.any(b))[0]  # the first batch holding a face; the rest is padding
    contract = read_contract(exported)
    extracted = cut[extract_module.source_key(str(image_path))]
    std = np.asarray(contract.preprocessing.std, np.float32)[:, None, None]
    pixel_diff = np.abs(scanned - contract.preprocessing.to_tensor(extracted)[0]) * std * 255
    assert pixel_diff.max() < 1e-3

    # the contract this model would have had before crops recorded their geometry (BlazeFace, no
    # alignment, margin 1.3) cuts visibly different pixels: the check above could tell them apart
    image = read_image(image_path)
    unaligned = Preprocessing(input_size=SIZE).crop(image, create_detector("blazeface").detect([image])[0][0])[0]
    assert np.abs(unaligned.astype(int) - extracted.astype(int)).max() > 100


def test_a_config_that_contradicts_the_crops_is_refused_naming_both_margins(aligned_crops):
    crops, _ = aligned_crops
    with pytest.raises(DfdetectError, match=r"crop_margin 1\.3 contradicts the crops, which were cut at margin 1\.5"):
        DeepfakeDataModule(str(crops), crop_margin=1.3)
    assert DeepfakeDataModule(str(crops)).crop_margin == MARGIN
    assert DeepfakeDataModule(str(crops)).extract_options == OPTIONS
