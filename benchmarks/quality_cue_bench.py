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

import numpy as np
import pandas as pd

from dfdetect.media.quality import downscale, gaussian_blur, h264, jpeg
from dfdetect.model.resources import default_model
from dfdetect.model.scoring import CLEAN, load_scoring_model, score_crops
from dfdetect.records import read_crops

CONDITIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "blur σ1": lambda image, _rng: gaussian_blur(image, 1.0),
    "blur σ2": lambda image, _rng: gaussian_blur(image, 2.0),
    "sharpen": lambda image, _rng: np.clip(image + 1.5 * (image.astype(np.float32) - gaussian_blur(image, 1.0)),
                                           0, 255).astype(np.uint8),
    "shrunk ×2": lambda image, _rng: downscale(image, 2.0),
    "shrunk ×3": lambda image, _rng: downscale(image, 3.0),
    "H.264 CRF 35": lambda image, _rng: h264(image, 35),
    "JPEG q30": lambda image, _rng: jpeg(image, 30),
}


def quality_table(model_path: Path, crops: pd.DataFrame) -> list[str]:
    """Rows of the table for one model (an .onnx file or a fit checkpoint), scored as evaluate scores crops."""
    model = load_scoring_model(model_path)
    logits = score_crops(model, crops, CONDITIONS)
    probability = {name: model.contract.scaling().probability(column.to_numpy()) for name, column in logits.items()}
    clean = probability.pop(CLEAN)
    rows = [f"| {model_path.parent.name}/{model_path.name} | clean | {clean.mean():.3f} | – |"]
    rows += [f"| | {name} | {scores.mean():.3f} | {(scores > clean).mean():.0%} |"
             for name, scores in probability.items()]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--crops", type=Path, required=True, help="crops of real faces (`dfdetect extract`)")
    parser.add_argument("--model", type=Path, nargs="+", default=None,
                        help="model.onnx files or fit checkpoints (default: the starter)")
    args = parser.parse_args(argv)
    crops = read_crops(args.crops)
    crops = crops[crops["split"].isin(["val", "test"]) & (crops["label"] == 0)]
    print(f"{len(crops)} real faces of held-out people from {args.crops}")
    print("| model | condition | mean P(fake) | faces scoring higher than clean |\n|---|---|---|---|")
    for model in args.model or [default_model()]:
        print("\n".join(quality_table(model, crops)), flush=True)


if __name__ == "__main__":
    main()
