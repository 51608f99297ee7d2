"""MTCNN (Zhang et al., 2016: "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks") in PyTorch, batched over frames, on the GPU when there is one.

Three networks in a cascade: P-Net scans an image pyramid fully convolutionally and proposes boxes,
R-Net rejects and refines them from 24 px crops, O-Net scores the survivors from 48 px crops and
places 5 landmarks. The weights are the original Caffe model as converted for facenet-pytorch
(dfdetect/faces/models/mtcnn_*.pt, see NOTICE there); the networks, pyramid and cascade are
written here. Every network call takes all frames of a batch at once, which is what makes a GPU
pay off: the per-box Python work is small next to the convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms, roi_align

from dfdetect.faces.base import Face

MODEL_DIR = Path(__file__).parent / "models"
PNET_CELL, PNET_STRIDE = 12, 2  # P-Net sees 12×12 windows, one every 2 pixels of the scaled image


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    """Flatten in the width-major order the Caffe weights were trained with."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Face probability (N, H', W') and box offsets (N, 4, H', W') for every 12 px window."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Face probability, box offsets, and landmarks as 5 x then 5 y fractions of the box."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def pyramid_scales(height: int, width: int, min_face: float, factor: float = 0.709) -> list[float]:
    """Scales that map faces from `min_face` pixels up to the whole image onto P-Net's 12 px window."""
    scale = PNET_CELL / min_face
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each box edge by its offset, in units of the box's width and height."""
    size = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=1).repeat(1, 2)
    return boxes + offsets * size


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre, so the next network sees an undistorted face."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS that measures overlap against the smaller box, so a box nested inside a stronger
    one is dropped even when their IoU is small (the cascade's last step)."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for i in range(len(order)):
        if not keep[i]:
            continue
        lo = torch.maximum(boxes[i, :2], boxes[i + 1 :, :2])
        hi = torch.minimum(boxes[i, 2:], boxes[i + 1 :, 2:])
        inter = (hi - lo).clamp(min=0).prod(dim=1)
        overlap = inter / torch.minimum(area[i], area[i + 1 :]).clamp(min=1e-9)
        keep[i + 1 :] &= overlap <= threshold
    return order[keep]


class MtcnnDetector:
    """Batched MTCNN: boxes and 5 landmarks (eyes, nose, mouth corners) in image pixels."""

    def __init__(self, device: str = "auto", min_face: float = 20.0, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 num_threads: int | None = None):
        self.name = "mtcnn"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if num_threads:
            torch.set_num_threads(num_threads)  # process-wide: extract workers ask for one thread each
        self.min_face = min_face
        self.thresholds = tuple(thresholds)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, name in ((self.pnet, "pnet"), (self.rnet, "rnet"), (self.onet, "onet")):
            state = torch.load(MODEL_DIR / f"mtcnn_{name}.pt", map_location="cpu", weights_only=True)
            net.load_state_dict(state)
            net.to(self.device).eval()

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray],
               hints: Sequence[tuple[float, float, float, float] | None] | None = None) -> list[list[Face]]:
        """Faces in each HxWx3 uint8 RGB image, largest first. Images of one size share every P-Net
        call; all images share the R-Net and O-Net calls. `hints` is not needed: the image pyramid
        already reaches small faces anywhere in the frame."""
        if len(images) == 0:
            return []
        pixels = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float() for im in images]
        results: list[list[Face]] = [[] for _ in images]
        boxes, owner = self._propose(pixels)

        boxes, owner, (probs, offsets) = self._run_on_crops(self.rnet, pixels, boxes, owner, 24)
        keep = torch.nonzero(probs >= self.thresholds[1]).flatten()
        keep = keep[batched_nms(boxes[keep], probs[keep], owner[keep], 0.7)]
        boxes, owner = square(regress(boxes[keep], offsets[keep])), owner[keep]

        boxes, owner, (probs, offsets, fractions) = self._run_on_crops(self.onet, pixels, boxes, owner, 48)
        keep = probs >= self.thresholds[2]
        boxes, owner, probs, offsets, fractions = boxes[keep], owner[keep], probs[keep], offsets[keep], fractions[keep]
        size = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=1)
        landmarks = torch.stack([fractions[:, :5], fractions[:, 5:]], dim=2) * size[:, None] + boxes[:, None, :2]
        boxes = regress(boxes, offsets)

        for i, image in enumerate(images):
            mine = torch.nonzero(owner == i).flatten()
            h, w = image.shape[:2]
            for k in mine[nms_min(boxes[mine], probs[mine], 0.7)].tolist():
                x0, y0, x1, y1 = boxes[k].tolist()
                face = Face(box=(max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)),
                            score=float(probs[k]), landmarks=landmarks[k].cpu().numpy().astype(np.float32))
                if face.area > 0:
                    results[i].append(face)
            results[i].sort(key=lambda f: f.area, reverse=True)
        return results

    def _propose(self, pixels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over each image's pyramid: squared candidate boxes (M, 4) and the index of the image
        each came from."""
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(pixels):
            by_shape.setdefault(tuple(t.shape[1:]), []).append(i)
        all_boxes, all_owner = [], []
        for (height, width), members in by_shape.items():
            batch = torch.stack([pixels[i] for i in members])
            members_t = torch.tensor(members, device=self.device)
            level_boxes, level_owner = [], []
            for scale in pyramid_scales(height, width, self.min_face):
                size = (int(height * scale + 1), int(width * scale + 1))
                probs, offsets = self.pnet(_normalise(F.interpolate(batch, size=size, mode="area")))
                where = torch.nonzero(probs >= self.thresholds[0])  # (image, row, col)
                if len(where) == 0:
                    continue
                corner = where[:, [2, 1]].float() * PNET_STRIDE
                windows = torch.cat([(corner + 1) / scale, (corner + PNET_CELL) / scale], dim=1).floor()
                score = probs[where[:, 0], where[:, 1], where[:, 2]]
                offset = offsets[where[:, 0], :, where[:, 1], where[:, 2]]
                keep = batched_nms(windows, score, where[:, 0], 0.5)
                level_boxes.append(torch.cat([windows[keep], offset[keep], score[keep, None]], dim=1))
                level_owner.append(members_t[where[keep, 0]])
            if not level_boxes:
                continue
            found, owner = torch.cat(level_boxes), torch.cat(level_owner)
            keep = batched_nms(found[:, :4], found[:, 8], owner, 0.7)
            all_boxes.append(square(regress(found[keep, :4], found[keep, 4:8])))
            all_owner.append(owner[keep])
        if not all_boxes:
            return torch.zeros((0, 4), device=self.device), torch.zeros(0, dtype=torch.long, device=self.device)
        return torch.cat(all_boxes), torch.cat(all_owner)

    def _run_on_crops(self, net: nn.Module, pixels: list[torch.Tensor], boxes: torch.Tensor, owner: torch.Tensor,
                      side: int) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """`net` on side×side crops of every box of every image in one call; boxes and owners come
        back in the order of the outputs. Crop pixels outside the image are black, as in the
        original cascade."""
        images = owner.unique().tolist()
        order = torch.cat([torch.nonzero(owner == i).flatten() for i in images]) if images else owner
        boxes, owner = boxes[order], owner[order]
        if len(boxes) == 0:
            return boxes, owner, net(torch.zeros((0, 3, side, side), device=self.device))
        crops = torch.cat([roi_align(pixels[i][None], [boxes[owner == i]], output_size=side, aligned=True)
                           for i in images])
        return boxes, owner, net(_normalise(crops))


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    """0..255 to the [-1, 1] range the networks were trained on."""
    return (pixels - 127.5) * 0.0078125
