"""Train a detector from real faces alone and check that it does not call video-quality reals fake.

Pipeline, every stage the real one: the bundled real faces (London, Canada, variation and ORL sets: 183
people) are indexed with an identity-disjoint split, cropped by the extract stage (BlazeFace, 128 px),
and `configs/sbi_lite0_faces.yaml` trains EfficientNet-Lite0 on self-blends and identity swaps made on
the fly. Then, with the best checkpoint:

- AUC on the held-out people's validation set (their reals and fixed-seed fakes made from them);
- the validation EER threshold, and the false-positive rate on those reals at it, clean and degraded to
  video quality (downscaled ×2–3, H.264 at CRF 35). A model that learned "soft = fake" fails the second.

Acceptance (issue 4): AUC ≥ 0.95 within 15 CPU minutes, degraded FPR ≤ 2 × clean FPR.

    .venv/bin/python benchmarks/train_bench.py [--out runs/train_bench] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from dfdetect.extract import extract
from dfdetect.media.quality import VIDEO_QUALITY_CRF, video_quality
from dfdetect.metrics import eer, roc_auc
from dfdetect.model.checkpoint import load_checkpoint
from dfdetect.model.crops import ExtractOptions
from dfdetect.model.resources import recipe_path
from dfdetect.recipes.starter import index_bundled_faces
from dfdetect.records import REAL
from dfdetect.train.cli import run_lightning
from dfdetect.train.data import DeepfakeDataModule
from dfdetect.train.degrade import VIDEO_QUALITY_FACTORS

REPO = Path(__file__).resolve().parents[1]
CONFIG = recipe_path("sbi_lite0_faces")
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
SECTION = "## Training: SBI on real faces (benchmarks/train_bench.py)"
CROP_SIZE = 128


def prepare_crops(out: Path) -> Path:
    """index.parquet and crops/ for the bundled real faces, split by person (as the starter model's are)."""
    extract(index_bundled_faces(out / "index.parquet"), out / "crops", ExtractOptions(size=CROP_SIZE), workers=1)
    return out / "crops"


def best_checkpoint(fit_dir: Path) -> Path:
    return max((p for p in fit_dir.rglob("*.ckpt") if p.name != "last.ckpt"), key=lambda p: p.stat().st_mtime)


@torch.no_grad()
def probabilities(network: torch.nn.Module, images: list[np.ndarray], transform) -> np.ndarray:
    batch = torch.stack([transform(image=image)["image"] for image in images])
    return torch.sigmoid(network(batch)[:, 0]).numpy()


def evaluate(checkpoint: Path, crops: Path, seed: int = 0) -> dict:
    """AUC, EER threshold and the false-positive rates on clean and video-quality held-out reals."""
    network, contract = load_checkpoint(checkpoint)
    prep = contract.preprocessing
    datamodule = DeepfakeDataModule(str(crops), input_size=prep.input_size, mean=prep.mean, std=prep.std,
                                    synthesis="sbi", crop_margin=prep.crop_margin)
    datamodule.setup("validate")
    val = datamodule.split_dataset("val")
    items = [val.load_image(i) for i in range(len(val))]
    images = [image for image, _ in items]
    labels = np.array([label for _, label in items])
    scores = probabilities(network, images, val.transform)
    auc = roc_auc(labels, scores)
    _, threshold = eer(labels, scores)
    reals = [image for image, label in items if label == REAL]
    rng = np.random.default_rng(seed)
    degraded = [video_quality(image, float(rng.uniform(*VIDEO_QUALITY_FACTORS))) for image in reals]
    clean_fpr = float((scores[labels == REAL] >= threshold).mean())
    degraded_fpr = float((probabilities(network, degraded, val.transform) >= threshold).mean())
    return {"val_auc": auc, "threshold": threshold, "clean_fpr": clean_fpr, "degraded_fpr": degraded_fpr,
            "val_reals": len(reals), "val_fakes": int((labels != REAL).sum()),
            "train_reals": datamodule.summary()["train_real"]}


def record(result: dict, command: str) -> None:
    """Append this run under the training section of BENCHMARKS.md (other sections are left as they are)."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    entry = (f"\n### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — {platform.node()}, "
             f"{os.cpu_count()} CPUs, torch {torch.__version__}\n\n"
             f"`{command}`\n\n"
             f"| metric | value |\n|---|---|\n"
             f"| train reals / val reals / val fakes | {result['train_reals']} / {result['val_reals']} / "
             f"{result['val_fakes']} |\n"
             f"| validation AUC (held-out people, SBI fakes) | {result['val_auc']:.4f} |\n"
             f"| EER threshold (p) | {result['threshold']:.4f} |\n"
             f"| FPR clean reals | {result['clean_fpr']:.4f} |\n"
             f"| FPR video-quality reals (×2–3 down, CRF {VIDEO_QUALITY_CRF}) | {result['degraded_fpr']:.4f} |\n"
             f"| fit wall time | {result['fit_seconds']:.0f} s |\n"
             f"| total wall time (index + extract + fit + evaluation) | {result['total_seconds']:.0f} s |\n"
             f"| load average at the end (1, 5, 15 min) | {load} |\n"
             f"| acceptance (AUC ≥ 0.95, fit ≤ 15 min, degraded FPR ≤ 2 × clean) | "
             f"{'pass' if result['passed'] else 'FAIL'} |\n")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n"
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)  # the entry goes last in its own section, before the next one
    end = len(text) if end < 0 else end
    BENCHMARKS_MD.write_text(text[:end].rstrip("\n") + "\n" + entry + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "train_bench")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args, fit_args = parser.parse_known_args()  # the rest goes to `dfdetect fit`, e.g. --trainer.max_epochs=8
    os.environ.setdefault("WANDB_MODE", "offline")
    started = time.time()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    crops = prepare_crops(args.out)
    fit_started = time.time()
    run_lightning(["fit", "--config", str(CONFIG), "--data.crops", str(crops),
                   "--trainer.default_root_dir", str(args.out / "fit"), *fit_args])
    fit_seconds = time.time() - fit_started
    result = evaluate(best_checkpoint(args.out / "fit"), crops)
    result.update(fit_seconds=fit_seconds, total_seconds=time.time() - started)
    result["passed"] = (result["val_auc"] >= 0.95 and fit_seconds <= 15 * 60
                        and result["degraded_fpr"] <= 2 * result["clean_fpr"])
    print(f"validation AUC {result['val_auc']:.4f} ({result['val_reals']} reals, {result['val_fakes']} fakes)")
    print(f"EER threshold {result['threshold']:.4f}: FPR clean {result['clean_fpr']:.4f}, "
          f"video quality {result['degraded_fpr']:.4f}")
    print(f"fit {fit_seconds:.0f} s, total {result['total_seconds']:.0f} s; "
          f"acceptance {'pass' if result['passed'] else 'FAIL'}")
    if not args.no_record:
        record(result, "python benchmarks/train_bench.py " + " ".join(fit_args))


if __name__ == "__main__":
    main()
