"""Two small crop sets from the bundled London faces and a detector whose scores are known in advance.

Each person is a two-frame "video" (neutral + smiling photo). In the `tint` set a fake's face
centre is warmed (red up, green down, by a per-person amount), in the `swap` set it is replaced by
another person's face centre. The detector scores redness: logit = 40 × (mean R − mean G) of the
normalised crop, so it finds `tint` fakes and is blind to `swap` ones — a cross-dataset drop by
construction — and any score can be recomputed from the crop pixels alone.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfdetect.export import export_onnx
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.records import CROP_COLUMNS, FAKE, REAL, CropRow, write_rows
from dfdetect.sample_data import LONDON_DIR, london_identity, london_images

INPUT_SIZE = 48
CROP_SIDE = 56  # stored larger than the model input: evaluation must resize like the scanner
REDNESS_GAIN = 40.0
SPLIT_PEOPLE = {"val": 10, "test": 12}


class RednessDetector(torch.nn.Module):
    """A detector with no learned weights: its logit is a fixed linear function of the pixels."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        channel_means = images.mean(dim=(2, 3))
        return (REDNESS_GAIN * (channel_means[:, 0] - channel_means[:, 1])).reshape(-1, 1)


def redness_logits(crops: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """The detector's logits computed straight from uint8 crops at the input size (the test oracle)."""
    normalised = (crops.astype(np.float64) / 255.0 - np.asarray(preprocessing.mean)) / np.asarray(preprocessing.std)
    means = normalised.mean(axis=(1, 2))
    return REDNESS_GAIN * (means[:, 0] - means[:, 1])


def centre_mask(side: int) -> np.ndarray:
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, int(side * 0.55)), (int(side * 0.25), int(side * 0.32)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=2.5)[..., None]


def make_fake(rgb: np.ndarray, donor: np.ndarray | None, warmth: float) -> np.ndarray:
    """Warm the face centre by `warmth` (tint), or paste `donor`'s face centre into it (swap)."""
    source = rgb.astype(np.float32)
    if donor is None:
        inside = source * np.asarray([1.0 + warmth, 1.0 - warmth, 1.0], np.float32)
    else:
        inside = donor.astype(np.float32)
    mask = centre_mask(rgb.shape[0])
    return np.clip(mask * inside + (1 - mask) * source, 0, 255).astype(np.uint8)


def load_face(path: Path) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)


def write_crop_set(root: Path, dataset: str, people: list[str], seed: int) -> Path:
    """crops.parquet + PNG crops for one set; half the people of each split are real, half fake."""
    rng = np.random.default_rng(seed)
    neutral = {london_identity(p): p for p in london_images("neutral")}
    smiling = {london_identity(p): p for p in london_images("smiling")}
    rows: list[CropRow] = []
    start = 0
    for split, count in SPLIT_PEOPLE.items():
        for position, person in enumerate(people[start:start + count]):
            label = FAKE if position % 2 else REAL
            donor_person = people[(start + position + 3) % len(people)]
            warmth = float(rng.uniform(0.0, 0.12))
            for frame_index, expression in enumerate((neutral, smiling)):
                rgb = load_face(expression[person])
                if label == FAKE:
                    rgb = make_fake(rgb, load_face(expression[donor_person]) if dataset == "swap" else None, warmth)
                relative = f"crops/{person}_{frame_index}.png"
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / relative), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                rows.append(CropRow(crop_path=relative, source_path=f"/{dataset}/{person}.mp4", media_type="video",
                                    frame_index=frame_index, face_index=0, track_id=0, x0=0.0, y0=0.0, x1=256.0,
                                    y1=256.0, score=1.0, label=label, split=split, group=person, dataset=dataset,
                                    method="" if label == REAL else dataset))
        start += count
    write_rows(rows, root / "crops.parquet", CROP_COLUMNS)
    (root / "ATTRIBUTION.md").write_text((LONDON_DIR / "ATTRIBUTION.md").read_text())  # CC BY 4.0
    return root


@pytest.fixture(scope="session")
def crop_sets(tmp_path_factory) -> dict[str, Path]:
    smiling = {london_identity(p) for p in london_images("smiling")}
    people = [london_identity(p) for p in london_images("neutral") if london_identity(p) in smiling]
    total = sum(SPLIT_PEOPLE.values())
    return {"tint": write_crop_set(tmp_path_factory.mktemp("tint"), "tint", people[:total], seed=1),
            "swap": write_crop_set(tmp_path_factory.mktemp("swap"), "swap", people[total:2 * total], seed=2)}


@pytest.fixture(scope="session")
def redness_contract() -> ModelContract:
    return ModelContract(preprocessing=Preprocessing(input_size=INPUT_SIZE), backbone="redness", aggregation="mean",
                         temperature=1.0, thresholds={"default": 0.5}, default_threshold="default",
                         training_data={"datasets": ["tint"], "train_real": 40, "train_fake": 40})


@pytest.fixture(scope="session")
def redness_model(tmp_path_factory, redness_contract, crop_sets) -> Path:
    from dfdetect.media.io import read_image
    from dfdetect.model.scoring import fit_crop
    from dfdetect.records import read_crops

    sample = np.stack([fit_crop(read_image(p), INPUT_SIZE) for p in read_crops(crop_sets["tint"])["crop_path"][:8]])
    out = tmp_path_factory.mktemp("model") / "redness.onnx"
    export_onnx(RednessDetector(), redness_contract, out, sample=sample)
    return out


@pytest.fixture(scope="session")
def oracle_logits(redness_contract):
    """crop paths → the logits the redness detector must give them, computed without the model."""
    from dfdetect.media.io import read_image
    from dfdetect.model.scoring import fit_crop

    def logits(paths) -> np.ndarray:
        crops = np.stack([fit_crop(read_image(p), INPUT_SIZE) for p in paths])
        return redness_logits(crops, redness_contract.preprocessing)

    return logits
