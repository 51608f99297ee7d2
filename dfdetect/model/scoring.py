"""Score face crops with a detector, whether it is a training checkpoint or an exported ONNX file.

Both kinds are read through their model contract (input size, mean/std), and crops are prepared
exactly as export's parity check and the scanner prepare them, so a score here is the score a user
of that model gets. The per-crop table this produces (`scores.parquet`) is also what `dfdetect
calibrate --scores` fits on, which is why logits are stored raw, before any temperature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dfdetect.errors import DfdetectError
from dfdetect.media.io import read_image
from dfdetect.model.checkpoint import load_checkpoint
from dfdetect.model.contract import ModelContract
from dfdetect.model.session import OnnxModel
from dfdetect.records import SPLITS, file_sha256, read_crops, read_index

log = logging.getLogger(__name__)

CLEAN = "clean"
ALL_SPLITS = "all"
BATCH_SIZE = 32
# columns of scores.parquet that come from crops.parquet; `compression` joins them when an index is given
CROP_FIELDS = ["crop_path", "source_path", "media_type", "frame_index", "face_index", "label", "split", "group",
               "dataset", "method"]


@dataclass
class ScoringModel:
    """A detector reduced to what evaluation needs: its contract and raw logits of a normalised batch."""

    path: Path
    kind: str  # "onnx" | "checkpoint"
    contract: ModelContract
    sha256: str
    logits: Callable[[np.ndarray], np.ndarray]  # float32 NCHW normalised → (N,) float64 raw logits


def load_scoring_model(path: str | Path) -> ScoringModel:
    """An `.onnx` file opens in ONNX Runtime (as the scanner opens it); anything else must be a fit checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise DfdetectError("missing_path", "model file not found", path,
                            "pass an .onnx from `dfdetect export` or a .ckpt from `dfdetect fit`")
    if path.suffix.lower() == ".onnx":
        onnx_model = OnnxModel(path, device="cpu")
        return ScoringModel(path, "onnx", onnx_model.contract, onnx_model.sha256,
                            lambda batch: onnx_model.logits(batch).astype(np.float64))

    network, contract = load_checkpoint(path)

    def checkpoint_logits(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).double().numpy().reshape(-1)

    return ScoringModel(path, "checkpoint", contract, file_sha256(path), checkpoint_logits)


def fit_crop(image: np.ndarray, input_size: int) -> np.ndarray:
    """A crop at the model's input side; extract may have cut them at another size."""
    if image.shape[:2] == (input_size, input_size):
        return image
    return cv2.resize(image, (input_size, input_size), interpolation=cv2.INTER_AREA)


def set_name(crops_dir: Path, table: pd.DataFrame) -> str:
    """A crop set is named after the datasets it holds, or after its folder when it mixes none."""
    datasets = sorted(d for d in table["dataset"].astype(str).unique() if d)
    return "+".join(datasets) if datasets else crops_dir.name


def load_crop_sets(crops_dirs: Sequence[str | Path], names: Sequence[str] | None = None, split: str = "test",
                   indexes: Sequence[str | Path] | None = None) -> pd.DataFrame:
    """The crops of every set stacked into one table with a `set` column, filtered to `split`.

    `indexes` (one per set, or one for all) adds each source's `compression` from its index.parquet,
    since crops.parquet does not carry it.
    """
    if names and len(names) != len(crops_dirs):
        raise DfdetectError("bad_config", f"{len(names)} names for {len(crops_dirs)} crop sets", None,
                            "give one --name per --crops, or none")
    if indexes and len(indexes) not in (1, len(crops_dirs)):
        raise DfdetectError("bad_config", f"{len(indexes)} indexes for {len(crops_dirs)} crop sets", None,
                            "give one --index per --crops, or a single one for all")
    if split != ALL_SPLITS and split not in SPLITS:
        raise DfdetectError("bad_config", f"unknown split {split!r}", None, f"choose one of {[*SPLITS, ALL_SPLITS]}")
    compression = None
    if indexes:
        index = pd.concat([read_index(p) for p in dict.fromkeys(indexes)], ignore_index=True)
        compression = index.drop_duplicates("path").set_index("path")["compression"].astype(str)
    tables = []
    for position, crops_dir in enumerate(map(Path, crops_dirs)):
        table = read_crops(crops_dir)
        if split != ALL_SPLITS:
            table = table[table["split"] == split]
        if table.empty:
            raise DfdetectError("empty_dataset", f"no crops in split {split!r}", crops_dir,
                                "choose another --split, or `all`")
        table = table[CROP_FIELDS].assign(set=names[position] if names else set_name(crops_dir, table))
        if compression is not None:
            table["compression"] = table["source_path"].map(compression).fillna("")
        tables.append(table)
    stacked = pd.concat(tables, ignore_index=True)
    if stacked["set"].nunique() != len(crops_dirs):
        raise DfdetectError("bad_config", "two crop sets share one name", None, "name each set with --name")
    return stacked


def score_crops(model: ScoringModel, table: pd.DataFrame,
                degradations: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] | None = None,
                batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """Raw logits of every crop, clean and under each degradation: one float64 column per condition,
    aligned with `table`'s rows. A crop that cannot be read gets NaN everywhere and a log line;
    it never stops the run.

    Each crop is decoded once for all conditions; random degradations draw from a generator seeded
    by (seed, row), so a sweep is repeatable and independent of the batch size.
    """
    prep = model.contract.preprocessing
    conditions = {CLEAN: None, **(degradations or {})}
    scores = {name: np.full(len(table), np.nan) for name in conditions}
    paths = table["crop_path"].tolist()
    unreadable = 0
    for start in tqdm(range(0, len(paths), batch_size), desc="score", unit="batch"):
        rows, crops = [], []
        for row in range(start, min(start + batch_size, len(paths))):
            try:
                crops.append(fit_crop(read_image(paths[row]), prep.input_size))
                rows.append(row)
            except DfdetectError as err:
                unreadable += 1
                log.warning("skipping crop: %s", err.one_line())
        if not rows:
            continue
        for name, degrade in conditions.items():
            batch = crops if degrade is None else [degrade(crop, np.random.default_rng([seed, row]))
                                                   for crop, row in zip(crops, rows)]
            scores[name][rows] = model.logits(prep.to_tensor(np.stack(batch)))
    if unreadable:
        log.warning("%d of %d crops could not be read and have no score", unreadable, len(paths))
    return pd.DataFrame(scores, index=table.index)
