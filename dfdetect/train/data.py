"""crops.parquet → DataLoaders for Lightning.

Every item carries the index of the video/image it came from, because a deepfake detector is judged
per video as much as per frame: the model's validation step groups frames by that index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dfdetect.contract import IMAGENET_MEAN, IMAGENET_STD
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, SPLITS, read_crops
from dfdetect.train.augment import build_transforms

log = logging.getLogger(__name__)


def select_per_source(sources: np.ndarray, limit: int | None, rng: np.random.Generator | None) -> np.ndarray:
    """Row indices keeping at most `limit` rows of each source: a random choice with `rng`, evenly
    spaced rows without it (for evaluation, so every epoch scores the same frames)."""
    if limit is None:
        return np.arange(len(sources))
    chosen = []
    for rows in pd.Series(np.arange(len(sources))).groupby(sources, sort=False).indices.values():
        if len(rows) <= limit:
            chosen.append(rows)
        elif rng is None:
            chosen.append(rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)])
        else:
            chosen.append(np.sort(rng.choice(rows, size=limit, replace=False)))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


def class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row sampling weights that make each present class equally likely to be drawn."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (len(classes) * counts[inverse])


class SourceBalancedSampler(Sampler[int]):
    """Each epoch: keep up to `frames_per_video` crops per source, then draw them either shuffled
    or, with `balance`, with replacement so real and fake are equally likely. Reseeded by epoch
    (Lightning calls set_epoch) so runs are reproducible and epochs differ."""

    def __init__(self, sources: np.ndarray, labels: np.ndarray, frames_per_video: int | None, balance: bool,
                 seed: int = 0):
        self.sources = sources
        self.labels = labels
        self.frames_per_video = frames_per_video
        self.balance = balance
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(select_per_source(self.sources, self.frames_per_video, np.random.default_rng(0)))

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        rows = select_per_source(self.sources, self.frames_per_video, rng)
        if self.balance:
            weights = class_balanced_weights(self.labels[rows])
            drawn = rng.choice(rows, size=len(rows), replace=True, p=weights / weights.sum())
        else:
            drawn = rng.permutation(rows)
        return iter(drawn.tolist())


def reseed_worker_transform(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream: workers start from copies of one
    seeded transform, which would otherwise apply identical augmentations in every worker. torch
    derives the worker seed from the (seed_everything-controlled) main RNG, so runs stay reproducible."""
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


class CropDataset(Dataset):
    """(normalised CHW float tensor, label as float, source index) for each crop row."""

    def __init__(self, crop_paths: Sequence[str], labels: np.ndarray, source_ids: np.ndarray, transform):
        self.crop_paths = list(crop_paths)
        self.labels = labels.astype(np.float32)
        self.source_ids = source_ids.astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.crop_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        path = self.crop_paths[index]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise DfdetectError("unreadable_media", "crop image could not be decoded", path,
                                "re-run `dfdetect extract` or remove the row from crops.parquet")
        image = self.transform(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))["image"]
        return image, torch.tensor(self.labels[index]), torch.tensor(self.source_ids[index])


class DeepfakeDataModule(pl.LightningDataModule):
    """Train/val/test loaders over the crops written by `dfdetect extract`.

    input_size, mean and std follow the model (the CLI links them), so data and network cannot disagree.
    """

    def __init__(self, crops: str, batch_size: int = 32, num_workers: int = 0, augment: str = "dfb",
                 input_size: int = 224, frames_per_video: int | None = None, balance: bool = True,
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                 seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        if frames_per_video is not None and frames_per_video < 1:
            raise DfdetectError("bad_config", f"frames_per_video must be ≥ 1, got {frames_per_video}", None,
                                "leave it unset to use every crop")
        build_transforms(augment, input_size, mean, std, train=True)  # fail at start-up on an unknown preset
        self.crops = crops
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.input_size = input_size
        self.frames_per_video = frames_per_video
        self.balance = balance
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.seed = seed
        self.frame: pd.DataFrame | None = None
        self.source_paths: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.frame is None:
            self.frame, self.source_paths = self._read()
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(stage or "fit", ()):
            if not (self.frame["split"] == split).any():
                raise DfdetectError("empty_dataset", f"no crops in split {split!r}", self.crops,
                                    f"`dfdetect {stage or 'fit'}` needs {split} rows; check the index split options")

    def _read(self) -> tuple[pd.DataFrame, list[str]]:
        frame = read_crops(self.crops)
        bad_labels = sorted(set(frame["label"].unique()) - {REAL, FAKE})
        if bad_labels:
            raise DfdetectError("bad_input", f"labels must be 0 or 1, found {bad_labels}", self.crops,
                                "re-create crops.parquet with `dfdetect extract`")
        frame = frame[frame["split"].isin(SPLITS)]
        exists = np.array([Path(p).is_file() for p in frame["crop_path"]], dtype=bool)
        if not exists.all():
            log.warning("skipping %d crops whose files are missing, e.g. %s", (~exists).sum(),
                        frame["crop_path"][~exists].iloc[0])
            frame = frame[exists]
        if frame.empty:
            raise DfdetectError("empty_dataset", "no usable crops", self.crops, "run `dfdetect extract` first")
        source_paths = sorted(frame["source_path"].unique())
        frame = frame.assign(source_id=frame["source_path"].map({p: i for i, p in enumerate(source_paths)}))
        return frame.reset_index(drop=True), source_paths

    def split_dataset(self, split: str) -> CropDataset:
        rows = self.frame[self.frame["split"] == split]
        if split != "train":
            rows = rows.iloc[select_per_source(rows["source_id"].to_numpy(), self.frames_per_video, None)]
        transform = build_transforms(self.augment, self.input_size, self.mean, self.std, train=split == "train",
                                     seed=self.seed)
        return CropDataset(rows["crop_path"].tolist(), rows["label"].to_numpy(), rows["source_id"].to_numpy(),
                           transform)

    def summary(self) -> dict:
        """Counts per split and label, recorded in the model contract as its training data."""
        if self.frame is None:
            self.frame, self.source_paths = self._read()
        counts = self.frame.groupby(["split", "label"]).size()
        return {
            "crops": str(self.crops),
            "datasets": sorted(self.frame["dataset"].unique().tolist()),
            **{f"{split}_{name}": int(counts.get((split, label), 0))
               for split in SPLITS for name, label in (("real", REAL), ("fake", FAKE))},
        }

    def _loader(self, dataset: CropDataset, sampler: Sampler | None) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          worker_init_fn=reseed_worker_transform, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        dataset = self.split_dataset("train")
        sampler = SourceBalancedSampler(dataset.source_ids, dataset.labels, self.frames_per_video, self.balance,
                                        self.seed)
        return self._loader(dataset, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("val"), None)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("test"), None)
