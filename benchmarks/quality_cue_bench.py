"""Does a detector's score follow image quality? Score real faces clean and degraded, side by side.

A detector that learned the manipulation scores a real face about the same whether it is sharp, soft,
shrunk or re-encoded; one that learned quality moves with it. Real face swaps paste a face generated at
low resolution, so "softer = fake" would help on them and "softer = real" would point the wrong way.
For each model, every real crop of the held-out people (the val and test splits of the bundled faces,
cut by `dfdetect extract` as the scanner cuts them) is scored clean and under each condition; the table
gives the mean probability and the share of faces whose score rose against their clean copy.

    .venv/bin/python benchmarks/quality_cue_bench.py --crops runs/ablation/crops_128 --model A.onnx [B.onnx ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dfdetect.media.quality import downscale, gaussian_blur, h264, jpeg
from dfdetect.model.resources import default_model
from dfdetect.model.session import OnnxModel
from dfdetect.records import read_crops

CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blur σ1": lambda image: gaussian_blur(image, 1.0),
    "blur σ2": lambda image: gaussian_blur(image, 2.0),
    "sharpen": lambda image: np.clip(image + 1.5 * (image.astype(np.float32) - gaussian_blur(image, 1.0)),
                                     0, 255).astype(np.uint8),
    "shrunk ×2": lambda image: downscale(image, 2.0),
    "shrunk ×3": lambda image: downscale(image, 3.0),
    "H.264 CRF 35": lambda image: h264(image, 35),
    "JPEG q30": lambda image: jpeg(image, 30),
}


def probabilities(model: OnnxModel, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    preprocessing, scaling = model.contract.preprocessing, model.contract.scaling()
    logits = [model.logits(preprocessing.to_tensor(np.stack(images[i:i + batch])))
              for i in range(0, len(images), batch)]
    return scaling.probability(np.concatenate(logits).astype(np.float64))


def quality_table(model_path: Path, images: list[np.ndarray]) -> list[str]:
    model = OnnxModel(model_path, device="cpu")
    size = model.contract.preprocessing.input_size
    images = [cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images]
    clean = probabilities(model, images)
    rows = [f"| {model_path.parent.name}/{model_path.name} | clean | {clean.mean():.3f} | – |"]
    for name, degrade in CONDITIONS.items():
        scores = probabilities(model, [degrade(image) for image in images])
        rows.append(f"| | {name} | {scores.mean():.3f} | {(scores > clean).mean():.0%} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--crops", type=Path, required=True, help="crops of real faces (`dfdetect extract`)")
    parser.add_argument("--model", type=Path, nargs="+", default=None, help="model.onnx files (default: the starter)")
    args = parser.parse_args(argv)
    crops = read_crops(args.crops)
    crops = crops[crops["split"].isin(["val", "test"]) & (crops["label"] == 0)]
    images = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB) for path in crops["crop_path"]]
    print(f"{len(images)} real faces of held-out people from {args.crops}")
    print("| model | condition | mean P(fake) | faces scoring higher than clean |\n|---|---|---|---|")
    for model in args.model or [default_model()]:
        print("\n".join(quality_table(model, images)), flush=True)


if __name__ == "__main__":
    main()
