"""Image quality must never be the cue: a model trained on the SBI pipeline moves its scores on real faces
degraded to video quality far less than a model whose fakes alone were degraded.

Measured here (mean p(fake) shift on the 24 real crops): pipeline ≈ 0.20, control ≈ 0.89. The pipeline's
remaining shift is not zero — see docs/train.md — so this guards the ratio, which a change that stopped
degrading the reals would break.

Both models are the same cheap detector — a logistic-regression head on the ImageNet EfficientNet-Lite0
features, which are sensitive to sharpness — trained the same way on the same real crops and their fakes;
the only difference is whether the degradations reach the reals too. The second model is the control: it
shows that this test can see a quality cue when there is one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dfdetect.media.quality import video_quality
from dfdetect.model.backbones import LITE0_PYPI, create_backbone
from dfdetect.records import REAL
from dfdetect.train.data import DeepfakeDataModule, read_rgb
from dfdetect.train.degrade import VIDEO_QUALITY_FACTORS, degrade

DEGRADATIONS = {"downscale": 0.5, "h264": 0.5}
INPUT_SIZE = 96
EPOCHS = 4


@pytest.fixture(scope="module")
def lite0_features():
    network = create_backbone("efficientnet_lite0", pretrained=LITE0_PYPI, num_classes=1000).eval()

    @torch.no_grad()
    def features(images: list[np.ndarray], transform) -> np.ndarray:
        batch = torch.stack([transform(image=image)["image"] for image in images])
        return network.forward_head(network.forward_features(batch), pre_logits=True).numpy()

    return features


def mean_score_shift(detector, featurize, reals: list[np.ndarray], transform) -> float:
    """Mean over real faces of p(fake | video quality) − p(fake | clean)."""
    rng = np.random.default_rng(0)
    degraded = [video_quality(image, float(rng.uniform(*VIDEO_QUALITY_FACTORS))) for image in reals]
    clean_scores = detector.predict_proba(featurize(reals, transform))[:, 1]
    degraded_scores = detector.predict_proba(featurize(degraded, transform))[:, 1]
    return float((degraded_scores - clean_scores).mean())


@pytest.fixture(scope="module")
def training_sets(real_face_crops) -> dict:
    """EPOCHS passes over the SBI training items: as the pipeline makes them (degradations for all), and
    the control with the same degradations applied to the fakes only."""
    datamodule = DeepfakeDataModule(str(real_face_crops), input_size=INPUT_SIZE, augment="none", synthesis="sbi",
                                    degradations=DEGRADATIONS)
    datamodule.setup("fit")
    pipeline = datamodule.split_dataset("train")
    clean = DeepfakeDataModule(str(real_face_crops), input_size=INPUT_SIZE, augment="none", synthesis="sbi")
    clean.setup("fit")
    undegraded = clean.split_dataset("train")
    rng = np.random.default_rng(1)
    sets = {"pipeline": ([], []), "fakes_only": ([], [])}
    for _ in range(EPOCHS):
        for index in range(len(pipeline)):
            image, label = pipeline.load_image(index)
            sets["pipeline"][0].append(image)
            sets["pipeline"][1].append(label)
            image, label = undegraded.load_image(index)
            sets["fakes_only"][0].append(image if label == REAL else degrade(image, DEGRADATIONS, rng))
            sets["fakes_only"][1].append(label)
    crops = pd.read_parquet(real_face_crops / "crops.parquet")
    reals = [read_rgb(str(real_face_crops / path)) for path in crops["crop_path"]]
    return {"sets": sets, "reals": reals, "transform": pipeline.transform}


def test_pipeline_model_moves_far_less_on_degraded_reals_than_the_control(training_sets, lite0_features):
    transform, reals = training_sets["transform"], training_sets["reals"]
    shifts = {}
    for name, (images, labels) in training_sets["sets"].items():
        detector = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        detector.fit(lite0_features(images, transform), labels)
        shifts[name] = mean_score_shift(detector, lite0_features, reals, transform)
    print(shifts)
    assert shifts["fakes_only"] > 0.5, shifts  # the control learned "degraded = fake"
    assert abs(shifts["pipeline"]) < 0.3 * shifts["fakes_only"], shifts
