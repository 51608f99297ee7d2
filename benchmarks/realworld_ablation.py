"""Which part of the self-blend recipe helps on real deepfakes: one training run per variant, same budget,
each scored on its synthetic validation set and on the development set's val half.

Every variant starts from `sbi_lite0_faces` (EfficientNet-Lite0, ImageNet weights, the bundled real faces
only) and trains the same number of epochs; the first is the published self-blend recipe (the source
blurred, resized and colour-shifted against the target and pasted as it is), the others add one of our
changes each, or all of them. Each run goes through the real verbs: `dfdetect fit`, `dfdetect export`,
then `benchmarks/realworld_bench.py` (`dfdetect evaluate --media`) on dev-val. Finished steps are kept,
so a second call resumes; the table goes to BENCHMARKS.md with `--record`.

    .venv/bin/python benchmarks/realworld_ablation.py --devset runs/devset [--only NAME ...] [--epochs 8] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from realworld_bench import BENCHMARKS_MD, evaluate_part

from dfdetect.extract import extract
from dfdetect.model.crops import ExtractOptions
from dfdetect.recipes.starter import index_bundled_faces

RECIPE = "sbi_lite0_faces"
# the published recipe: self-blends only, no sharpness matching, no quality-consistency term, no
# identity swaps, and none of the video-quality degradations on both classes (flips and colour only)
PUBLISHED = ["--data.match_sharpness", "false", "--model.quality_consistency", "0", "--data.swap_fraction", "0",
             "--data.degradations", "{}"]
VIDEO_DEGRADATIONS = '{"downscale": 0.6, "blur": 0.2, "noise": 0.2, "jpeg": 0.3, "h264": 0.6}'


@dataclass
class Variant:
    description: str
    overrides: list[str] = field(default_factory=list)
    input_size: int = 128
    epochs: int | None = None  # None: the run's --epochs


def published(*changes: str) -> list[str]:
    """The published recipe's overrides with some of them replaced (flag, value pairs)."""
    settings = dict(zip(PUBLISHED[::2], PUBLISHED[1::2], strict=True))
    settings.update(dict(zip(changes[::2], changes[1::2], strict=True)))
    return [item for pair in settings.items() for item in pair]


VARIANTS = {
    "published_sbi": Variant("published self-blend recipe", published()),
    "+sharpness": Variant("+ sharpness matching", published("--data.match_sharpness", "true")),
    "+video_degrade": Variant("+ H.264/downscale/blur/noise/JPEG on both classes",
                              published("--data.degradations", VIDEO_DEGRADATIONS)),
    "+swaps": Variant("+ identity swaps (25 %)", published("--data.swap_fraction", "0.25")),
    "+quality_consistency": Variant("+ quality-consistency term", published("--model.quality_consistency", "0.05")),
    "ours_all": Variant("all of ours (sbi_lite0_faces as committed)"),
    "published_sbi@224": Variant("published self-blend recipe at 224 px", published(), 224),
    "+video_degrade_x3": Variant("+ H.264/downscale/blur/noise/JPEG on both classes, 3× the epochs",
                                 published("--data.degradations", VIDEO_DEGRADATIONS), epochs=12),
}


def prepare_crops(work: Path, size: int) -> Path:
    crops = work / f"crops_{size}"
    if not (crops / "crops.parquet").exists():
        extract(index_bundled_faces(work / f"index_{size}.parquet"), crops, ExtractOptions(size=size), workers=1)
    return crops


def best_checkpoint(fit_dir: Path) -> tuple[Path, float]:
    """The checkpoint the run chose and the synthetic validation AUC in its name."""
    chosen = [p for p in fit_dir.rglob("*.ckpt") if p.name != "last.ckpt"]
    if not chosen:
        raise SystemExit(f"no checkpoint under {fit_dir}: see {fit_dir / 'fit.log'}")
    best = max(chosen, key=lambda p: float(re.search(r"auc(\d\.\d+)", p.name)[1]))
    return best, float(re.search(r"auc(\d\.\d+)", best.name)[1])


def run_logged(command: list[str], log: Path) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(command)}\n")
        fh.flush()
        if subprocess.run(command, stdout=fh, stderr=subprocess.STDOUT).returncode:
            raise SystemExit(f"failed: {' '.join(command)} (see {log})")


def run_variant(name: str, variant: Variant, work: Path, devset: Path, epochs: int) -> dict:
    epochs = variant.epochs or epochs
    folder = work / re.sub(r"\W+", "_", name).strip("_")
    result_file = folder / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    crops = prepare_crops(work, variant.input_size)
    dfdetect = [sys.executable, "-m", "dfdetect"]
    if not list(folder.rglob("*.ckpt")):
        run_logged([*dfdetect, "fit", "--config", RECIPE, "--data.crops", str(crops),
                    "--model.input_size", str(variant.input_size), "--trainer.max_epochs", str(epochs),
                    "--trainer.max_time", "00:01:00:00", "--trainer.default_root_dir", str(folder / "fit"),
                    *variant.overrides], folder / "fit.log")
    checkpoint, synthetic_auc = best_checkpoint(folder / "fit")
    model = folder / "model.onnx"
    if not model.exists():
        run_logged([*dfdetect, "export", "--checkpoint", str(checkpoint), "--out", str(model), "--crops", str(crops)],
                   folder / "export.log")
    metrics = evaluate_part(devset, str(model), "val", "video", folder / "dev-val")
    result = {"name": name, "description": variant.description, "input_size": variant.input_size,
              "epochs": epochs, "checkpoint": checkpoint.name,
              "synthetic_val_auc": synthetic_auc, "dev_val": metrics["overall"],
              "dev_val_per_dataset": {k: v["auc"] for k, v in metrics["per_dataset"].items()},
              "dev_val_pairs": metrics["pairs"].get("all"), "model": str(model)}
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(results: list[dict]) -> list[str]:
    rows = ["| variant | px | epochs | synthetic val AUC | dev-val video AUC | 95 % CI | FF++ | Celeb-DF | "
            "FF++ fakes above their original |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ci = r["dev_val"]["auc_ci95"]
        pairs = r["dev_val_pairs"]
        per = r["dev_val_per_dataset"]
        rows.append(f"| {r['description']} | {r['input_size']} | {r['epochs']} | {r['synthetic_val_auc']:.3f} | "
                    f"{r['dev_val']['auc']:.3f} | {f'{ci[0]:.2f}–{ci[1]:.2f}' if ci else '–'} | "
                    f"{per.get('FF++', float('nan')):.3f} | {per.get('Celeb-DF-v2_facecrop', float('nan')):.3f} | "
                    f"{pairs['fake_above_real']:.2f} of {pairs['pairs']} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--devset", type=Path, default=Path("runs/devset"))
    parser.add_argument("--work", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--record", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args(argv)
    results = []
    for name in args.only:
        results.append(run_variant(name, VARIANTS[name], args.work, args.devset, args.epochs))
        print("\n".join(table(results)), flush=True)
    if args.record:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = BENCHMARKS_MD.read_text().rstrip("\n")
        text += (f"\n\n## Real deepfakes: what the recipe learned (benchmarks/realworld_ablation.py, {stamp})\n\n"
                 f"`.venv/bin/python benchmarks/realworld_ablation.py --devset runs/devset --epochs {args.epochs} "
                 f"--record` on {platform.node()} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end, "
                 "shared with other work). Same epochs per run; dev-val is the val part of "
                 "benchmarks/realworld_split.csv.\n\n"
                 + "\n".join(table(results)) + "\n")
        BENCHMARKS_MD.write_text(text)


if __name__ == "__main__":
    main()
