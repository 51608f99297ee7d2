"""Explanations must point at the evidence. A small CNN is trained here (about 15 s on 2 CPU cores) to tell
real London faces from the same faces with a colour-shifted patch of their own skin blended in (a local
self-blend), until it separates held-out faces; then on held-out faces with a patch at a known place,
Grad-CAM (the checkpoint path) and occlusion (through the exported ONNX file alone) must both peak on
the patch. A timm CNN and ViT checkpoint check the layer choice and the ViT token grid."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dfdetect.explain import explain_images, grad_cam_map, is_vision_transformer, last_spatial_module, load_explainer
from dfdetect.media.io import read_image
from dfdetect.model.backbones import create_backbone
from dfdetect.model.contract import ModelContract, Preprocessing
from dfdetect.model.heatmaps import occlusion_map, peak, window_starts, write_heatmap_png
from dfdetect.sample_data import london_images

SIZE = 64
PREP = Preprocessing(input_size=SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
TRAIN_PEOPLE = 80
GAINS = (np.array([1.25, 0.85, 0.85], np.float32), np.array([0.8, 1.1, 1.2], np.float32))


def face_crops(paths) -> list[np.ndarray]:
    return [cv2.resize(read_image(p)[40:216, 40:216], (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in paths]


def blend_patch(face: np.ndarray, x: int, y: int, side: int, gain: np.ndarray) -> np.ndarray:
    """The face with a side×side square of itself, colour-shifted by `gain`, blended in at (x, y)
    through a feathered mask: a local self-blend, whose only trace is the colour seam."""
    mask = np.zeros(face.shape[:2], np.float32)
    mask[y:y + side, x:x + side] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[..., None]
    shifted = np.clip(face.astype(np.float32) * gain, 0, 255)
    return np.clip(face * (1.0 - mask) + shifted * mask, 0, 255).astype(np.uint8)


def random_batch(faces: list[np.ndarray], rng: np.random.Generator, count: int):
    images, labels, boxes = [], [], []
    for _ in range(count):
        face = faces[rng.integers(len(faces))]
        if rng.random() < 0.5:
            images.append(face)
            labels.append(0)
            boxes.append(None)
            continue
        side = int(rng.integers(12, 20))
        x, y = (int(v) for v in rng.integers(8, SIZE - side - 8, 2))
        images.append(blend_patch(face, x, y, side, GAINS[rng.integers(2)]))
        labels.append(1)
        boxes.append((x, y, side))
    return np.stack(images), np.array(labels), boxes


def tiny_cnn() -> nn.Sequential:
    def stage(channels_in: int, channels_out: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1), nn.BatchNorm2d(channels_out),
                nn.ReLU()]

    return nn.Sequential(*stage(3, 16, 1), *stage(16, 32, 2), *stage(32, 32, 2), *stage(32, 32, 1),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 1))


@pytest.fixture(scope="module")
def patch_detector():
    """(network, held-out faces): trained until it separates held-out patched faces (AUC > 0.95)."""
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(0)
    people = london_images("neutral") + london_images("smiling")
    train = face_crops([p for p in people if int(p.name[:3]) <= TRAIN_PEOPLE])
    held_out = face_crops([p for p in people if int(p.name[:3]) > TRAIN_PEOPLE])
    network = tiny_cnn()
    optimiser = torch.optim.Adam(network.parameters(), 3e-3)
    rng = np.random.default_rng(0)
    for _ in range(160):
        images, labels, _ = random_batch(train, rng, 32)
        loss = nn.functional.binary_cross_entropy_with_logits(
            network(torch.from_numpy(PREP.to_tensor(images))).squeeze(1), torch.from_numpy(labels).float())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network.eval()
    images, labels, _ = random_batch(held_out, np.random.default_rng(1), 100)
    with torch.no_grad():
        scores = network(torch.from_numpy(PREP.to_tensor(images))).squeeze(1).numpy()
    assert roc_auc_score(labels, scores) > 0.95, "the patch detector did not learn; the peak test would mean nothing"
    return network, held_out


def patched_examples(faces: list[np.ndarray], count: int = 12):
    """Held-out faces with a patch at a known place, the places spread over the face."""
    rng = np.random.default_rng(7)
    examples = []
    for i in range(count):
        side = 16
        x, y = (int(v) for v in rng.integers(8, SIZE - side - 8, 2))
        examples.append((blend_patch(faces[i], x, y, side, GAINS[i % 2]), (x, y, side)))
    return examples


def inside(point: tuple[int, int], box: tuple[int, int, int], tolerance: int) -> bool:
    (px, py), (x, y, side) = point, box
    return x - tolerance <= px < x + side + tolerance and y - tolerance <= py < y + side + tolerance


@pytest.mark.slow
def test_grad_cam_peaks_on_the_blended_patch(patch_detector):
    network, held_out = patch_detector
    examples = patched_examples(held_out)
    hits = [inside(peak(grad_cam_map(network, image, PREP)), box, 2) for image, box in examples]
    assert sum(hits) >= len(examples) - 1, hits
    # the layer Grad-CAM used is the last conv stage (before pooling), found by running the network
    assert last_spatial_module(network, torch.zeros(1, 3, SIZE, SIZE)) is network[11]


@pytest.mark.slow
def test_occlusion_from_the_onnx_file_alone_peaks_on_the_patch(patch_detector, tmp_path):
    from dfdetect.export import export_onnx

    network, held_out = patch_detector
    export_onnx(network, ModelContract(preprocessing=PREP, backbone="tiny"), tmp_path / "tiny.onnx")
    explainer = load_explainer(tmp_path / "tiny.onnx")
    assert explainer.method == "occlusion" and explainer.network is None
    examples = patched_examples(held_out)
    hits = [inside(peak(explainer.heatmap(image)), box, SIZE // 16) for image, box in examples]
    assert sum(hits) >= len(examples) - 1, hits
    # occluding the patch is what lowers the score: the map is positive there and the fake outscores its real
    image, (x, y, side) = examples[0]
    heatmap = explainer.heatmap(image)
    assert heatmap[y:y + side, x:x + side].mean() > 0 > -abs(heatmap).max()
    assert explainer.probability(image) > explainer.probability(held_out[0])


def test_occlusion_windows_cover_every_pixel():
    assert window_starts(64, 8, 4)[-1] == 56 and window_starts(10, 4, 4) == [0, 4, 6]
    # a "model" whose logit is the mean red of the top-left quarter: only that quarter matters
    def logits(batch: np.ndarray) -> np.ndarray:
        return batch[:, 0, :16, :16].mean(axis=(1, 2)).astype(np.float64)

    crop = np.zeros((32, 32, 3), np.uint8)
    crop[:16, :16, 0] = 255
    heatmap = occlusion_map(logits, crop, Preprocessing(input_size=32), window=4, stride=2)
    assert heatmap[:12, :12].min() > 0 and np.allclose(heatmap[20:, 20:], 0)


def fit_checkpoint(backbone: str, path, input_size: int = 64):
    """A checkpoint in `dfdetect fit`'s format, with untrained weights: enough to test the layer choice."""
    network = create_backbone(backbone, pretrained=False, drop_rate=0.0)
    hparams = {"backbone": backbone, "input_size": input_size, "crop_margin": 1.3, "drop_rate": 0.0}
    torch.save({"hyper_parameters": hparams, "state_dict": {f"net.{k}": v for k, v in network.state_dict().items()}},
               path)
    return path


def test_vit_checkpoint_maps_its_token_grid(tmp_path):
    explainer = load_explainer(fit_checkpoint("test_vit", tmp_path / "vit.ckpt"))
    assert explainer.method == "gradcam" and is_vision_transformer(explainer.network)
    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    heatmap = explainer.heatmap(crop)
    assert heatmap.shape == (64, 64) and np.isfinite(heatmap).all()
    # the forward hook is gone afterwards: the network scores as before
    assert explainer.network.blocks[-1]._forward_hooks == {}


def test_explain_verb_writes_crop_and_overlay_per_face(tmp_path):
    checkpoint = fit_checkpoint("test_efficientnet", tmp_path / "cnn.ckpt")
    entries = explain_images([london_images()[0]], checkpoint, tmp_path / "out")
    assert [e["status"] for e in entries] == ["ok"]
    entry = entries[0]
    assert entry["method"] == "gradcam" and 0.0 <= entry["probability"] <= 1.0
    png = np.asarray(Image.open(entry["heatmap"]))
    assert png.shape == (64, 128, 3)  # the crop and its overlay side by side
    assert json.loads((tmp_path / "out" / "explain.json").read_text())[0]["peak"] == list(entry["peak"])


def test_overlay_png_keeps_the_crop_on_the_left(tmp_path):
    crop = np.full((8, 8, 3), 100, np.uint8)
    heatmap = np.zeros((8, 8))
    heatmap[2, 5] = 1.0
    pixels = np.asarray(Image.open(write_heatmap_png(crop, heatmap, tmp_path / "h.png")))
    assert (pixels[:, :8] == 100).all()
    assert (pixels[2, 8 + 5] != 100).any() and (pixels[0, 8] == 100).all()
