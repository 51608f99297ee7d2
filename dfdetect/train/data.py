"""crops.parquet → DataLoaders for Lightning.

Every item carries the index of the video/image it came from, because a deepfake detector is judged
per video as much as per frame: the model's validation step groups frames by that index.

With `synthesis: sbi` the training fakes are made on the fly from the real crops alone (self-blended
images, and identity swaps between people), so a detector can be trained from real faces only. A
training item then passes through: read → (make the fake) → degrade → augment → resize + normalise,
and the degrade step treats reals and fakes alike, so image quality never tells them apart.
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

from dfdetect.errors import DfdetectError
from dfdetect.media.quality import video_face
from dfdetect.model.contract import DEFAULT_CROP_MARGIN, IMAGENET_MEAN, IMAGENET_STD
from dfdetect.model.crops import EXTRACT_OPTIONS_FILE, ExtractOptions, read_extract_options
from dfdetect.records import FAKE, REAL, SPLITS, read_crops
from dfdetect.train.augment import build_transforms
from dfdetect.train.degrade import (
    DOWNSCALE_FACTORS,
    H264_CRFS,
    check_degradations,
    check_strengths,
    degrade,
)
from dfdetect.train.sbi import MIN_LANDMARKS, Box, identity_swap, mean_change, self_blend

log = logging.getLogger(__name__)

SYNTHESIS_MODES = ("none", "sbi")
MIN_SWAP_CHANGE = 2.0  # grey levels over the face core, the same floor self_blend enforces


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


def reseed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own random streams (augmentation, fakes, degradations): workers
    start from copies of one seeded dataset, which would otherwise repeat the same draws in every
    worker. torch derives the worker seed from the (seed_everything-controlled) main RNG, so runs stay
    reproducible."""
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(info.seed % 2**32)


def read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise DfdetectError("unreadable_media", "crop image could not be decoded", path,
                            "re-run `dfdetect extract` or remove the row from crops.parquet")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_landmarks(values) -> np.ndarray | None:
    """A crops.parquet landmarks cell ([x, y]*K) as a (K, 2) array; None when too few points to outline a face."""
    if values is None:
        return None
    points = np.asarray(values, np.float32).reshape(-1, 2)
    return points if len(points) >= MIN_LANDMARKS else None


def crop_face_box(size: int, margin: float) -> Box:
    """The face box inside a square crop of `size` px cut at `margin` × the box side around its centre."""
    half = size / (2.0 * margin)
    return (size / 2.0 - half, size / 2.0 - half, size / 2.0 + half, size / 2.0 + half)


class FakeMaker:
    """Pseudo-fakes from real crops: self-blended images, and identity swaps with another person's crop.

    A swap needs landmarks on both faces and a donor from another `group` (the identity in folder and
    FF++ indexes); when a crop has no landmarks, its self-blend mask is the ellipse of the face box.
    """

    def __init__(self, crop_paths: Sequence[str], landmarks: Sequence[np.ndarray | None], groups: np.ndarray,
                 margin: float, swap_fraction: float, match_sharpness: bool = True):
        self.crop_paths = list(crop_paths)
        self.landmarks = list(landmarks)
        self.groups = np.asarray(groups)
        self.margin = margin
        self.swap_fraction = swap_fraction
        self.match_sharpness = match_sharpness
        self.point_counts = np.array([0 if points is None else len(points) for points in self.landmarks])
        swappable = self.point_counts >= MIN_LANDMARKS
        self.can_swap = swap_fraction > 0 and len(set(self.groups[swappable].tolist())) >= 2

    def make(self, image: np.ndarray, landmarks: np.ndarray | None, group: str, rng: np.random.Generator
             ) -> np.ndarray:
        if self.can_swap and landmarks is not None and rng.random() < self.swap_fraction:
            swapped = self._swap(image, landmarks, group, rng)
            if swapped is not None:
                return swapped
        box = None if landmarks is not None else crop_face_box(image.shape[0], self.margin)
        return self_blend(image, landmarks, rng, box=box, match_sharpness=self.match_sharpness)[0]

    def _swap(self, image: np.ndarray, landmarks: np.ndarray, group: str, rng: np.random.Generator
              ) -> np.ndarray | None:
        """Another person's face on this head, or None when no donor fits or the result is too close to
        the real (two look-alikes): a fake label on an unchanged face would teach the wrong thing."""
        donors = np.flatnonzero((self.point_counts == len(landmarks)) & (self.groups != group))
        if not len(donors):
            return None
        donor = int(rng.choice(donors))
        fake, mask = identity_swap(image, landmarks, read_rgb(self.crop_paths[donor]), self.landmarks[donor], rng,
                                   match_sharpness=self.match_sharpness)
        return fake if mean_change(fake, image, mask >= 0.5) >= MIN_SWAP_CHANGE else None


class CropDataset(Dataset):
    """(normalised CHW float tensor, label as float, source index) for each item.

    An item is a crop, or — where `synthetic` is set — a fake that `fake_maker` makes from that real crop
    when the item is read. `degradations` (step → probability) then applies to every item alike. With
    `fixed_draws` each item draws from its own seeded generator, so validation sees the same fakes every
    epoch; otherwise items draw from one stream per worker.

    With `clean_pairs` each item also carries its undegraded version under the same augmentation and
    a flag that is 1 when a degradation changed it. The model trains on those clean copies too, reals
    and fakes alike, and compares each degraded real with its copy (DetectorModule.quality_consistency).

    `video_face_px` (one per item, 0 = as it is) shrinks an item until its face — the crop's side over
    `crop_margin` — is that many px wide and passes it through H.264 at VIDEO_QUALITY_CRF, after the fake
    is made: a fixed video-quality version for evaluation.
    """

    def __init__(self, crop_paths: Sequence[str], labels: np.ndarray, source_ids: np.ndarray, transform,
                 synthetic: np.ndarray | None = None, landmarks: Sequence[np.ndarray | None] | None = None,
                 groups: np.ndarray | None = None, fake_maker: FakeMaker | None = None,
                 degradations: dict[str, float] | None = None, seed: int = 0, fixed_draws: bool = False,
                 clean_pairs: bool = False, video_face_px: np.ndarray | None = None,
                 crop_margin: float = DEFAULT_CROP_MARGIN,
                 downscale_factors: tuple[float, float] = DOWNSCALE_FACTORS, h264_crfs: tuple[int, ...] = H264_CRFS):
        self.crop_paths = list(crop_paths)
        self.labels = labels.astype(np.float32)
        self.source_ids = source_ids.astype(np.int64)
        self.transform = transform
        self.synthetic = np.zeros(len(self.crop_paths), bool) if synthetic is None else np.asarray(synthetic, bool)
        self.landmarks = list(landmarks) if landmarks is not None else [None] * len(self.crop_paths)
        self.groups = np.asarray(groups) if groups is not None else np.full(len(self.crop_paths), "")
        self.fake_maker = fake_maker
        self.degradations = degradations or {}
        self.downscale_factors = downscale_factors
        self.h264_crfs = h264_crfs
        self.seed = seed
        self.fixed_draws = fixed_draws
        self.clean_pairs = clean_pairs
        self.video_face_px = np.zeros(len(self.crop_paths)) if video_face_px is None else np.asarray(video_face_px)
        self.crop_margin = crop_margin
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.transform.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.crop_paths)

    def load_image(self, index: int) -> tuple[np.ndarray, float]:
        """The uint8 RGB item before augmentation (the fake made, the degradations applied) and its label."""
        image, label, _ = self.load_views(index)
        return image, label

    def load_views(self, index: int) -> tuple[np.ndarray, float, np.ndarray]:
        """The item as `load_image` gives it, its label, and the same item before degradation.

        A fake that cannot be made (a face too flat or off the crop) comes back as its real, labelled
        real: one odd crop must not stop a training run, and must never be a real under a fake label.
        """
        rng = np.random.default_rng((self.seed, index)) if self.fixed_draws else self.rng
        image = read_rgb(self.crop_paths[index])
        label = float(self.labels[index])
        if self.synthetic[index]:
            try:
                image = self.fake_maker.make(image, self.landmarks[index], self.groups[index], rng)
            except DfdetectError as exc:
                log.warning("no fake from %s (%s); used as a real", self.crop_paths[index], exc.message)
                label = float(REAL)
        undegraded = image
        if self.degradations:
            image = degrade(image, self.degradations, rng, self.downscale_factors, self.h264_crfs)
        if self.video_face_px[index]:
            image = video_face(image, float(self.video_face_px[index]), self.crop_margin)
        return image, label, undegraded

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, label, undegraded = self.load_views(index)
        item = (torch.tensor(label, dtype=torch.float32), torch.tensor(self.source_ids[index]))
        if not self.clean_pairs:
            return self.transform(image=image)["image"], *item
        views = self.transform(image=image, clean=undegraded)
        degraded = image is not undegraded  # degrade returns its input when no step ran
        return views["image"], *item, views["clean"], torch.tensor(float(degraded))


def crops_margin(crops: str | Path, recorded: ExtractOptions | None, configured: float | None) -> float:
    """The crop margin training works with: the one the crops were cut with. A configured margin that
    contradicts the crops' record is refused, naming both, since the model's contract (and so every
    scan) would cut faces differently from the faces it learnt from."""
    if recorded is None:
        return DEFAULT_CROP_MARGIN if configured is None else configured
    if configured is not None and configured != recorded.margin:
        raise DfdetectError("bad_config", f"crop_margin {configured:g} contradicts the crops, which were cut at "
                            f"margin {recorded.margin:g}", Path(crops) / EXTRACT_OPTIONS_FILE,
                            f"drop model.crop_margin from the config (or set it to {recorded.margin:g}), "
                            f"or extract again with --margin {configured:g}")
    return recorded.margin


class DeepfakeDataModule(pl.LightningDataModule):
    """Train/val/test loaders over the crops written by `dfdetect extract`.

    input_size, mean, std and crop_margin follow the model (the CLI links them), so data and network
    cannot disagree; the crops' own record (extract_options.json) decides the margin, and a configured
    one that contradicts it is refused (`crops_margin`).

    synthesis: "none" trains on the crops' own labels; "sbi" drops the training fakes and pairs every
    real training crop with a fake made from it on the fly (a self-blend, or with probability
    `swap_fraction` an identity swap when two or more people have landmarks); `match_sharpness` brings
    each fake face to the sharpness of its real (see dfdetect.train.sbi.paste; False is the published
    SBI recipe). A validation or test
    split without fakes then gets one fixed-seed fake per real crop, so model selection works on real
    faces alone; a split that has fakes is evaluated as it is.
    degradations: step → probability (see dfdetect.train.degrade), applied to training items only;
    downscale_factors ([low, high]) and h264_crfs set how hard the downscale and H.264 steps hit.
    val_video_face_px: validation also scores every item at video quality — its face shrunk to this
    many px and through H.264 at CRF 35 — as separate sources (a fake copy draws its own fixed fake),
    so val/video_auc (the checkpoint monitor) ranks clean and degraded faces together: a model that
    calls soft reals fake, or misses soft fakes, loses there, while clean-only validation cannot see
    either.
    clean_pairs: training items also carry their undegraded view (see CropDataset); set by the CLI
    from the model's quality_consistency.
    """

    def __init__(self, crops: str, batch_size: int = 32, num_workers: int = 0, augment: str = "dfb",
                 input_size: int = 224, frames_per_video: int | None = None, balance: bool = True,
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                 seed: int = 0, synthesis: str = "none", swap_fraction: float = 0.25,
                 degradations: dict[str, float] | None = None, crop_margin: float | None = None,
                 clean_pairs: bool = False, val_video_face_px: int | None = None,
                 downscale_factors: tuple[float, float] = DOWNSCALE_FACTORS, h264_crfs: tuple[int, ...] = H264_CRFS,
                 match_sharpness: bool = True):
        super().__init__()
        self.save_hyperparameters()
        if frames_per_video is not None and frames_per_video < 1:
            raise DfdetectError("bad_config", f"frames_per_video must be ≥ 1, got {frames_per_video}", None,
                                "leave it unset to use every crop")
        if synthesis not in SYNTHESIS_MODES:
            raise DfdetectError("bad_config", f"unknown synthesis {synthesis!r}", None,
                                f"choose one of {list(SYNTHESIS_MODES)}")
        if val_video_face_px is not None and val_video_face_px < 16:
            raise DfdetectError("bad_config", f"val_video_face_px must be ≥ 16, got {val_video_face_px}", None,
                                "give the face width in px of the video-quality validation copies, or leave it unset")
        if not 0.0 <= swap_fraction <= 1.0:
            raise DfdetectError("bad_config", f"swap_fraction must be in [0, 1], got {swap_fraction}", None,
                                "set the share of identity swaps among the synthetic fakes")
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
        self.synthesis = synthesis
        self.swap_fraction = swap_fraction
        self.match_sharpness = match_sharpness
        self.degradations = check_degradations(degradations)
        self.downscale_factors, self.h264_crfs = check_strengths(downscale_factors, h264_crfs)
        self.extract_options = read_extract_options(crops)
        self.crop_margin = crops_margin(crops, self.extract_options, crop_margin)
        self.clean_pairs = clean_pairs
        self.val_video_face_px = val_video_face_px
        self.frame: pd.DataFrame | None = None
        self.source_paths: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.frame is None:
            self.frame, self.source_paths = self._read()
        verb = str(getattr(stage, "value", stage) or "fit")  # Lightning passes TrainerFn members, not text
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(verb, ()):
            rows = self._split_rows(split)
            if rows.empty:
                raise DfdetectError("empty_dataset", f"no usable crops in split {split!r}", self.crops,
                                    f"`dfdetect {verb}` needs {split} rows"
                                    + (" with real faces" if self.synthesis == "sbi" else "")
                                    + "; check the index split options")

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
        landmarks = frame["landmarks"] if "landmarks" in frame.columns else [None] * len(frame)
        frame = frame.assign(source_id=frame["source_path"].map({p: i for i, p in enumerate(source_paths)}),
                             points=[parse_landmarks(v) for v in landmarks])
        return frame.reset_index(drop=True), source_paths

    def _split_rows(self, split: str) -> pd.DataFrame:
        """The crop rows a split reads; SBI training keeps only the reals, as the fakes are made from them."""
        rows = self.frame[self.frame["split"] == split]
        if split == "train" and self.synthesis == "sbi":
            rows = rows[rows["label"] == REAL]
        return rows

    def split_dataset(self, split: str) -> CropDataset:
        train = split == "train"
        rows = self._split_rows(split)
        if not train:
            rows = rows.iloc[select_per_source(rows["source_id"].to_numpy(), self.frames_per_video, None)]
        transform = build_transforms(self.augment, self.input_size, self.mean, self.std, train=train, seed=self.seed,
                                     crop_margin=self.crop_margin)
        synthesise = self.synthesis == "sbi" and (train or not (rows["label"] == FAKE).any())
        if synthesise:
            fakes = rows.assign(label=FAKE, source_id=rows["source_id"] + len(self.source_paths))
            rows = pd.concat([rows, fakes], ignore_index=True)
        synthetic = np.r_[np.zeros(len(rows) // 2, bool), np.ones(len(rows) // 2, bool)] if synthesise else None
        video_face_px = None
        if split == "val" and self.val_video_face_px is not None:
            # every item again at video quality, as its own source: the monitor ranks both versions together
            copies = rows.assign(source_id=rows["source_id"] + rows["source_id"].max() + 1)
            video_face_px = np.r_[np.zeros(len(rows)), np.full(len(rows), self.val_video_face_px)]
            rows = pd.concat([rows, copies], ignore_index=True)
            synthetic = None if synthetic is None else np.r_[synthetic, synthetic]
        fake_maker = FakeMaker(rows["crop_path"].tolist(), rows["points"].tolist(), rows["group"].to_numpy(),
                               self.crop_margin, self.swap_fraction, self.match_sharpness) if synthesise else None
        return CropDataset(rows["crop_path"].tolist(), rows["label"].to_numpy(), rows["source_id"].to_numpy(),
                           transform, synthetic=synthetic, landmarks=rows["points"].tolist(),
                           groups=rows["group"].to_numpy(), fake_maker=fake_maker,
                           degradations=self.degradations if train else None,
                           seed=self.seed + SPLITS.index(split), fixed_draws=not train,
                           clean_pairs=train and self.clean_pairs and bool(self.degradations),
                           video_face_px=video_face_px, crop_margin=self.crop_margin,
                           downscale_factors=self.downscale_factors, h264_crfs=self.h264_crfs)

    def summary(self) -> dict:
        """Counts per split and label, recorded in the model contract as its training data."""
        if self.frame is None:
            self.frame, self.source_paths = self._read()
        counts = self.frame.groupby(["split", "label"]).size()
        return {
            "crops": str(self.crops),
            "datasets": sorted(self.frame["dataset"].unique().tolist()),
            "synthesis": self.synthesis,
            **{f"{split}_{name}": int(counts.get((split, label), 0))
               for split in SPLITS for name, label in (("real", REAL), ("fake", FAKE))},
        }

    def _loader(self, dataset: CropDataset, sampler: Sampler | None) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          worker_init_fn=reseed_worker, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        dataset = self.split_dataset("train")
        sampler = SourceBalancedSampler(dataset.source_ids, dataset.labels, self.frames_per_video, self.balance,
                                        self.seed)
        return self._loader(dataset, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("val"), None)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("test"), None)
