"""The model contract: every fact a consumer of an exported model needs, stored inside the ONNX
file (`metadata_props["dfdetect.contract"]`). Training writes it, export embeds it, scan and
evaluate read it; nothing downstream re-types a preprocessing constant.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from dfdetect.errors import DfdetectError
from dfdetect.faces import DEFAULT_DETECTOR, Face, crop_face

CONTRACT_KEY = "dfdetect.contract"
CONTRACT_SCHEMA = "dfdetect.contract/v1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_MARGIN = 1.3  # the one default of the crop margin, for extract, training and every contract
ALIGNMENTS = ("none", "eyes")


@dataclass
class Preprocessing:
    """How a face becomes the model's input tensor."""

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"
    crop_margin: float = DEFAULT_CROP_MARGIN  # square side = margin × the longer side of the face box
    alignment: str = "none"  # "none" | "eyes" (rotate so the eyes are level)

    def crop(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray | None]:
        """The face cut from a frame as this model takes it — a square input_size crop of crop_margin × the
        face box, eye-aligned when `alignment` says so — and the face's landmarks in crop pixels.
        Extract, export's parity sample and scan all cut here, so a model meets faces cut exactly as the
        faces it learnt from."""
        return crop_face(image, face, self.input_size, self.crop_margin, align=self.alignment == "eyes")

    def to_tensor(self, crops: np.ndarray) -> np.ndarray:
        """uint8 NHWC RGB crops at input_size → float32 NCHW normalised batch."""
        if crops.ndim == 3:
            crops = crops[None]
        x = crops.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class LogitScaling:
    """The calibration map from a raw logit z to the reported one, z / temperature + bias (Platt
    scaling; bias 0 is plain temperature scaling). Increasing and affine, so it never changes a
    ranking, and mean/median/max of mapped logits equal the mapped mean/median/max: only rules
    with probability cut-offs (`confident`) see a difference in where it is applied."""

    temperature: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise DfdetectError("bad_config", f"temperature must be positive, got {self.temperature}",
                                hint="re-run `dfdetect calibrate`")

    def calibrated(self, logits: ArrayLike) -> np.ndarray:
        return np.asarray(logits, np.float64) / self.temperature + self.bias

    def raw(self, calibrated: ArrayLike) -> np.ndarray:
        """The inverse map: the raw logit that calibrates to `calibrated`."""
        return (np.asarray(calibrated, np.float64) - self.bias) * self.temperature

    def probability(self, logits: ArrayLike) -> np.ndarray:
        return expit(self.calibrated(logits))


@dataclass
class ModelContract:
    """Fields are only ever added (with defaults) within schema v1: `from_json` fills a missing field
    with its default and ignores one it does not know, so old files and old readers keep working."""

    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    backbone: str = ""
    detector: str = DEFAULT_DETECTOR
    frames_per_video: int = 32
    aggregation: str = "mean"
    temperature: float = 1.0
    logit_bias: float = 0.0  # P(fake) = sigmoid(logit / temperature + logit_bias)
    thresholds: dict[str, float] = field(default_factory=lambda: {"default": 0.5})
    default_threshold: str = "default"
    training_data: dict = field(default_factory=dict)
    val_metrics: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # what temperature/thresholds were fitted on (calibration.json)
    toolkit_version: str = ""
    created_at: str = ""
    checkpoint_sha256: str = ""
    # the fit run the checkpoint came from: {"manifest": path, "sha256": of run_manifest.json}; {} when unknown
    training_run: dict = field(default_factory=dict)
    clear_threshold: str = ""  # threshold name below which a file is cleared as real; "" = two-way decisions
    schema: str = CONTRACT_SCHEMA

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        data = json.loads(text)
        if data.get("schema") != CONTRACT_SCHEMA:
            raise ValueError(f"unsupported contract schema {data.get('schema')!r}, expected {CONTRACT_SCHEMA}")
        prep = data.pop("preprocessing", {})
        prep["mean"], prep["std"] = tuple(prep["mean"]), tuple(prep["std"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(preprocessing=Preprocessing(**prep), **{k: v for k, v in data.items() if k in known})

    def scaling(self) -> LogitScaling:
        return LogitScaling(self.temperature, self.logit_bias)

    def decision_threshold(self) -> tuple[str, float]:
        return self.default_threshold, float(self.thresholds[self.default_threshold])

    def decision_rule(self, flag: str | None = None, clear: str | None = None) -> DecisionRule:
        """The three-way rule for named thresholds: flag defaults to the contract's default threshold,
        clear to the contract's clear threshold, else to the flag threshold (a two-way rule)."""
        flag = flag or self.default_threshold
        clear = clear or self.clear_threshold or flag
        for name in (flag, clear):
            if name not in self.thresholds:
                raise DfdetectError("bad_config", f"the model has no threshold named {name!r}", None,
                                    f"choose from {sorted(self.thresholds)}")
        return DecisionRule(flag, float(self.thresholds[flag]), clear, float(self.thresholds[clear]))


TRIAGES = ("fake", "review", "real")


@dataclass(frozen=True)
class DecisionRule:
    """Three-way decisions from two thresholds on P(fake): `fake` at or above the flag threshold,
    `real` below the clear threshold, `review` between, where the model is too unsure to act on
    without a person. Equal thresholds give the two-way rule (nothing goes to review)."""

    flag_name: str
    flag: float
    clear_name: str
    clear: float

    def __post_init__(self) -> None:
        if self.clear > self.flag:
            raise DfdetectError("bad_config", f"clear threshold {self.clear_name} = {self.clear:.4g} is above flag "
                                f"threshold {self.flag_name} = {self.flag:.4g}", None,
                                "the clear threshold must be the lower one (e.g. --flag fpr@0.01 --clear fpr@0.05)")

    def triage(self, probability: float) -> str:
        """'fake', 'review' or 'real' for a file's calibrated P(fake)."""
        if probability >= self.flag:
            return "fake"
        return "real" if probability < self.clear else "review"
