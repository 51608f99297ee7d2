"""int8 against fp32 on this CPU: crops/s, and how far int8 moves the scores and the AUC of a
labelled sample, for a trained model (default: the shipped starter model).

    .venv/bin/python benchmarks/int8_bench.py [--model model.onnx] [--batch-size 8]

Labelled sample: the faces of the bundled demo images (`dfdetect/sample_data/demo_scan`, real and
fake photos of people the starter never saw). Calibration, either the export default (`london`: 128
bundled London faces, all real) or `demo-videos`: frames of the demo's real and fake videos (the same
people, re-encoded as H.264, none of the photos). The int8 file is written to a scratch copy; the
verdict is what `dfdetect export --int8` would decide with its stated limits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dfdetect.export import CALIBRATION_CROPS, london_parity_crops  # noqa: E402
from dfdetect.faces import create_detector  # noqa: E402
from dfdetect.media.io import iter_media_frames, read_image  # noqa: E402
from dfdetect.model.contract import ModelContract  # noqa: E402
from dfdetect.model.onnx import read_contract  # noqa: E402
from dfdetect.model.quantize import INT8_AUC_TOLERANCE, INT8_TOLERANCE, quantize_int8  # noqa: E402
from dfdetect.model.resources import default_model  # noqa: E402
from dfdetect.model.session import OnnxModel  # noqa: E402

DEMO = REPO / "dfdetect" / "sample_data" / "demo_scan"
VIDEO_FRAMES = 8
CALIBRATIONS = ["london", "demo-videos"]


def face_crops(contract: ModelContract, images: list[np.ndarray]) -> np.ndarray:
    detector = create_detector(contract.detector)
    prep = contract.preprocessing
    return np.stack([prep.crop(image, faces[0])[0] for image, faces in zip(images, detector.detect(images)) if faces])


def labelled_sample(contract: ModelContract) -> tuple[np.ndarray, np.ndarray]:
    real = face_crops(contract, [read_image(p) for p in sorted((DEMO / "real").glob("*.jpg"))])
    fake = face_crops(contract, [read_image(p) for p in sorted((DEMO / "fake").glob("*.jpg"))])
    return np.concatenate([real, fake]), np.r_[np.zeros(len(real)), np.ones(len(fake))]


def demo_video_crops(contract: ModelContract) -> np.ndarray:
    frames = [frame.image for label in ("real", "fake") for video in sorted((DEMO / label).glob("*.mp4"))
              for frame in iter_media_frames(video, "video", VIDEO_FRAMES)]
    return face_crops(contract, frames)


def crops_per_second(model: OnnxModel, crops: np.ndarray, batch_size: int, seconds: float = 8.0) -> tuple[float, float]:
    """Crops per wall second and per CPU second of the session alone."""
    batch = model.contract.preprocessing.to_tensor(np.resize(crops, (batch_size, *crops.shape[1:])))
    model.logits(batch)
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        model.logits(batch)
        done += batch_size
    return done / (time.perf_counter() - started), done / (time.process_time() - cpu_started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="float ONNX model (default: the starter)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--calibration", nargs="+", default=CALIBRATIONS, choices=CALIBRATIONS)
    args = parser.parse_args()
    source = args.model or default_model()
    contract = read_contract(source)
    sample, labels = labelled_sample(contract)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}; {source.name}: {contract.backbone} at {contract.preprocessing.input_size} px; "
          f"labelled sample {int((labels == 0).sum())} real + {int(labels.sum())} fake demo faces", flush=True)
    with tempfile.TemporaryDirectory(prefix="int8_bench_") as work:
        model = Path(work) / "model.onnx"
        shutil.copy(source, model)
        for name in args.calibration:
            calibration = (london_parity_crops(contract, limit=CALIBRATION_CROPS) if name == "london"
                           else demo_video_crops(contract))
            report = quantize_int8(model, calibration, sample, labels, tolerance=np.inf, auc_tolerance=np.inf)
            auc_moved = abs(report.auc_int8 - report.auc_fp32)
            passes = report.max_abs_diff <= INT8_TOLERANCE and auc_moved <= INT8_AUC_TOLERANCE
            print(f"calibrated on {name} ({report.calibration_faces} faces): max |Δp| {report.max_abs_diff:.3f}, mean "
                  f"{report.mean_abs_diff:.4f}; AUC fp32 {report.auc_fp32:.4f} → int8 {report.auc_int8:.4f} "
                  f"(Δ {report.auc_int8 - report.auc_fp32:+.4f}); export --int8 would "
                  f"{'write it' if passes else 'refuse it'} (limits |Δp| ≤ {INT8_TOLERANCE}, |ΔAUC| ≤ "
                  f"{INT8_AUC_TOLERANCE})", flush=True)
        fp32 = crops_per_second(OnnxModel(model, device="cpu", precision="fp32"), sample, args.batch_size)
        int8 = crops_per_second(OnnxModel(model, device="cpu", precision="int8"), sample, args.batch_size)
        print(f"batch {args.batch_size}: fp32 {fp32[0]:.1f} crops/s ({fp32[1]:.1f} per CPU s), int8 {int8[0]:.1f} "
              f"crops/s ({int8[1]:.1f} per CPU s): int8/fp32 = {int8[0] / fp32[0]:.2f}x per second, "
              f"{int8[1] / fp32[1]:.2f}x per CPU second; load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
