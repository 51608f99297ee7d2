"""What one starter-model training sample and one training step cost at each input size.

Sizing a recipe for other hardware (configs/starter_lite0_gpu.yaml) needs two numbers per input size:
the CPU time to make one training sample — read a crop, self-blend or swap it, run the video-quality
chain (downscale, H.264 through PyAV, blur, noise, colour) — which loader workers must keep up with,
and the time of one optimisation step, which the accelerator must. Both come from the recipe's own
data module and LightningModule, on the bundled real faces cropped at that size by the extract stage.

- sample: `CropDataset[i]` over the training split, one thread (as inside one loader worker);
- step: `DetectorModule.training_step` on a real batch, then backward and the optimizer, on all cores.

Prints a Markdown table; append it to BENCHMARKS.md with the date and the machine.

    .venv/bin/python benchmarks/starter_speed.py [--sizes 128 224] [--samples 200] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from dfdetect.extract import extract
from dfdetect.model.crops import ExtractOptions
from dfdetect.recipes.starter import CONFIG, crop_geometry, index_bundled_faces
from dfdetect.train.cli import build_cli
from dfdetect.train.data import CropDataset, DeepfakeDataModule
from dfdetect.train.module import DetectorModule

REPO = Path(__file__).resolve().parents[1]


def recipe_at(config: Path, crops: Path, size: int) -> tuple[DetectorModule, DeepfakeDataModule]:
    """The recipe's model and data module at `size` px, in-process data loading, nothing run."""
    cli = build_cli(["--config", str(config), "--data.crops", str(crops), "--model.input_size", str(size),
                     "--data.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false"],
                    run=False)
    cli.datamodule.setup("fit")
    return cli.model, cli.datamodule


def seconds_per_sample(dataset: CropDataset, samples: int) -> float:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    order = np.random.default_rng(0).permutation(len(dataset))[:samples]
    for index in order[:5]:  # the first reads pay for file caches and codec set-up
        dataset[int(index)]
    started = time.perf_counter()
    for index in order:
        dataset[int(index)]
    return (time.perf_counter() - started) / len(order)


def seconds_per_step(model: DetectorModule, dataset: CropDataset, batch_size: int, steps: int) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    batch = default_collate([dataset[i] for i in range(batch_size)])
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=model.hparams.lr)
    model.train()

    def step() -> None:
        optimizer.zero_grad()
        model.training_step(batch, 0).backward()
        optimizer.step()

    step()  # the first step pays for allocation
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the training recipe (LightningCLI YAML)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 192, 224])
    parser.add_argument("--samples", type=int, default=200, help="training samples timed per size")
    parser.add_argument("--steps", type=int, default=5, help="training steps timed per size (after one warm-up)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "starter_speed")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    warnings.filterwarnings("ignore", message=".*self.log.*")  # the step runs outside a Trainer, on purpose

    index = index_bundled_faces(args.out / "index.parquet")
    _, margin = crop_geometry(args.config)
    rows = []
    for size in args.sizes:
        crops = args.out / f"crops_{size}"
        if not (crops / "crops.parquet").exists():
            extract(index, crops, ExtractOptions(size=size, margin=margin), workers=1)
        model, datamodule = recipe_at(args.config, crops, size)
        train = datamodule.split_dataset("train")
        per_epoch = len(datamodule.train_dataloader().sampler)
        sample = seconds_per_sample(train, args.samples)
        step = seconds_per_step(model, train, args.batch_size, args.steps)
        rows.append((size, sample, step, per_epoch))
        print(f"{size} px: {sample * 1e3:.1f} ms/sample (1 thread), {step:.2f} s/step", flush=True)

    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — {platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, load {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"recipe {args.config.name}, batch {args.batch_size}\n")
    print("| input px | one training sample, 1 thread | one training step, all cores | "
          "samples per epoch | CPU time to make one epoch |\n|---|---|---|---|---|")
    for size, sample, step, per_epoch in rows:
        print(f"| {size} | {sample * 1e3:.1f} ms | {step:.2f} s | {per_epoch} | {sample * per_epoch:.0f} s |")


if __name__ == "__main__":
    main()
