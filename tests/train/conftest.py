"""A tiny crops directory (crops.parquet + JPEG crops) built from the bundled London faces, so the
training tests need neither the extract stage nor any download.

Each person gives one "real video" (neutral + smiling photo) and one "fake video" (the same two
photos with the face centre replaced by a shifted, recoloured copy of itself through a soft
elliptical mask — a crude blend fake, enough for the network to have something to find).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect.model.resources import CONFIGS_DIR
from dfdetect.records import CROP_COLUMNS, FAKE, REAL, CropRow, write_rows
from dfdetect.sample_data import LONDON_DIR, london_identity, london_images

CROP_SIZE = 80


def soft_ellipse_mask(height: int, width: int) -> np.ndarray:
    """Float mask, 1 inside an ellipse over the face centre, fading to 0 over ~15 px."""
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (width // 2, int(height * 0.55)), (int(width * 0.24), int(height * 0.3)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=6)[..., None]


def blend_fake(rgb: np.ndarray, shift: int, gains: tuple[float, float, float]) -> np.ndarray:
    """Blend a shifted, colour-scaled copy of the face back into itself."""
    donor = np.roll(rgb.astype(np.float32), shift=(shift, shift), axis=(0, 1)) * np.asarray(gains, np.float32)
    mask = soft_ellipse_mask(*rgb.shape[:2])
    return np.clip(mask * donor + (1 - mask) * rgb, 0, 255).astype(np.uint8)


def write_tiny_crops(root: Path, identities_per_split: dict[str, int]) -> Path:
    """Write crops/ and crops.parquet under root; returns root."""
    images = {london_identity(p): p for p in london_images("neutral")}
    smiling = {london_identity(p): p for p in london_images("smiling")}
    people = [pid for pid in images if pid in smiling]
    rows: list[CropRow] = []
    start = 0
    for split, count in identities_per_split.items():
        for person in people[start:start + count]:
            for label, kind in ((REAL, "real"), (FAKE, "fake")):
                source = f"/videos/{kind}/{person}.mp4"
                for frame_index, path in enumerate((images[person], smiling[person])):
                    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                    if label == FAKE:
                        rgb = blend_fake(rgb, shift=4 + frame_index, gains=(1.10, 0.94, 0.96))
                    crop = cv2.resize(rgb, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
                    relative = f"crops/{kind}_{person}_{frame_index}.jpg"
                    (root / relative).parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / relative), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 92])
                    rows.append(CropRow(crop_path=relative, source_path=source, media_type="video",
                                        frame_index=frame_index, face_index=0, track_id=0, x0=0.0, y0=0.0,
                                        x1=256.0, y1=256.0, score=1.0, label=label, split=split, group=person,
                                        dataset="london-blend", method="" if label == REAL else "blend"))
        start += count
    write_rows(rows, root / "crops.parquet", CROP_COLUMNS)
    (root / "ATTRIBUTION.md").write_text((LONDON_DIR / "ATTRIBUTION.md").read_text())
    return root


@pytest.fixture(scope="session")
def tiny_crops(tmp_path_factory) -> Path:
    """10 train, 4 val, 4 test people → 40/16/16 crops in 20/8/8 videos."""
    return write_tiny_crops(tmp_path_factory.mktemp("tiny_crops"), {"train": 10, "val": 4, "test": 4})


@pytest.fixture(scope="session")
def tiny_config() -> Path:
    return CONFIGS_DIR / "tiny_cpu.yaml"


def newest_log_dir(root: Path) -> Path:
    """The CSVLogger folder of the latest run under a trainer root dir."""
    return max((root / "lightning_logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.fixture(scope="session")
def fitted_run(tiny_crops, tiny_config, tmp_path_factory) -> Path:
    """One `dfdetect fit` on the tiny config; returns the run's log dir (config.yaml, metrics.csv, checkpoints/)."""
    from dfdetect.train.cli import run_lightning

    root = tmp_path_factory.mktemp("fit")
    run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(tiny_crops),
                   "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"])
    return newest_log_dir(root)


@pytest.fixture
def latest_log_dir():
    return newest_log_dir


@pytest.fixture
def make_crops(tmp_path):
    """Build a crops dir with chosen people per split, e.g. make_crops({"train": 2, "val": 1})."""
    return lambda identities_per_split: write_tiny_crops(tmp_path, identities_per_split)


SBI_TRAIN_PEOPLE, SBI_VAL_PEOPLE, SBI_TEST_PEOPLE = 8, 2, 2
SBI_CROP_SIZE = 96


@pytest.fixture(scope="session")
def real_face_crops(tmp_path_factory) -> Path:
    """Real faces only, through the real index + extract stages: 12 London people (neutral + smiling) as a
    folder labelled real, cropped by BlazeFace at 96 px with its 6 landmarks; people 1-8 train, 9-10
    val, 11-12 test (set by person, so identities never cross splits)."""
    import shutil

    import pandas as pd

    from dfdetect.datasets import build_index
    from dfdetect.extract import extract
    from dfdetect.model.crops import ExtractOptions
    from dfdetect.records import INDEX_COLUMNS

    root = tmp_path_factory.mktemp("real_faces")
    people = [london_identity(p) for p in london_images("neutral")][:SBI_TRAIN_PEOPLE + SBI_VAL_PEOPLE
                                                                    + SBI_TEST_PEOPLE]
    faces = root / "faces"
    for expression in ("neutral", "smiling"):
        for path in london_images(expression):
            if london_identity(path) in people:
                (faces / expression).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, faces / expression / path.name)
    shutil.copy(LONDON_DIR / "ATTRIBUTION.md", faces / "ATTRIBUTION.md")
    write_rows(build_index("folder", faces, label="real").rows, root / "index.parquet", INDEX_COLUMNS)
    extract(root / "index.parquet", root / "crops", ExtractOptions(size=SBI_CROP_SIZE), workers=1)
    crops = pd.read_parquet(root / "crops" / "crops.parquet")
    split_of = {person: "train" if i < SBI_TRAIN_PEOPLE else "val" if i < SBI_TRAIN_PEOPLE + SBI_VAL_PEOPLE
                else "test" for i, person in enumerate(people)}
    crops["split"] = crops["group"].map(split_of)
    crops.to_parquet(root / "crops" / "crops.parquet", index=False)
    return root / "crops"
