"""`dfdetect export`: a trained detector → one ONNX file that carries its own model contract.

The graph takes the normalised float32 NCHW batch `images` and returns `logits` and the calibrated
`probability` (sigmoid(logits / temperature + logit_bias)), so a consumer needs nothing but the file. Export is
refused unless ONNX Runtime reproduces the PyTorch raw logits, their ranking and the probabilities on
real face crops: a silent operator mismatch would otherwise ship as a model that scores everything
wrong. Raw logits, because calibrated probabilities can hide it: at temperature 1000 every probability
is 0.5 ± 1e-4, and any graph would agree with any other.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxslim
import pandas as pd
import torch
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from dfdetect import __version__
from dfdetect.errors import DfdetectError
from dfdetect.faces import create_detector
from dfdetect.media.io import read_image
from dfdetect.metrics import auc_with_ties
from dfdetect.model.calibration import apply_calibration, read_calibration
from dfdetect.model.checkpoint import load_checkpoint
from dfdetect.model.contract import LogitScaling, ModelContract
from dfdetect.model.onnx import embed_contract
from dfdetect.model.quantize import Int8Report, quantize_int8
from dfdetect.model.scoring import fit_crop
from dfdetect.records import RUN_MANIFEST_NAME, file_sha256, read_crops
from dfdetect.sample_data import london_images

FP32_TOLERANCE = 1e-4  # on probabilities, and on raw logits relative to their scale (max(1, max |z|))
# fp16 carries ~3 significant digits, and the error grows through ~80 layers: measured 0.009 (64 px,
# T = 1) and 0.007 (224 px, T = 1.7) on an EfficientNet-B0 with face-fitted BatchNorm statistics, and
# keeping pooling, Gemm or Sigmoid in fp32 does not lower it (the convolutions' weights carry it). A
# larger gap means the conversion broke an operator, not rounding.
FP16_TOLERANCE = 1e-2
# Raw fp16 logits drift further than the squashed probabilities show: measured 0.33 on logits up to 9.3
# (3.5 % of their scale) for the same network. The ranking check below holds them to their order.
FP16_LOGIT_TOLERANCE = 5e-2
PARITY_BATCH = 32
CALIBRATION_CROPS = 128  # crops whose activations set the int8 ranges (half real, half fake when both exist)
AUC_DECIMALS = 3
# The torch.export-based exporter only emits opset >= 18 (it silently keeps 18 when asked for less);
# lower opsets, still needed by older runtimes, come from the TorchScript exporter.
DYNAMO_MIN_OPSET = 18


@dataclass
class ExportReport:
    path: str
    opset: int
    fp16: bool
    parity_max_abs_diff: float  # max |p_onnx − p_torch| over the parity batch
    parity_faces: int
    parity_max_logit_diff: float  # max |z_onnx − z_torch| of the raw logits, over the parity batch
    parity_same_ranking: bool  # ONNX orders the parity faces as PyTorch does (pairs within tolerance aside)
    sha256: str
    contract: ModelContract
    parity_auc_torch: float | None = None  # AUC of the parity batch, when it holds both labels
    parity_auc_onnx: float | None = None
    simplified: bool = False


def calibrated_detector(network: torch.nn.Module, scaling: LogitScaling) -> torch.nn.Module:
    """The network plus the contract's calibration, so the exported graph emits both outputs."""
    class CalibratedDetector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network
            self.register_buffer("inverse_temperature", torch.tensor(1.0 / scaling.temperature, dtype=torch.float32))
            self.register_buffer("bias", torch.tensor(scaling.bias, dtype=torch.float32))

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.network(images).reshape(-1, 1)
            return logits, torch.sigmoid(logits * self.inverse_temperature + self.bias)

    return CalibratedDetector().eval()


def _torch_to_onnx(module: torch.nn.Module, example: torch.Tensor, out: Path, opset: int) -> None:
    names = {"input_names": ["images"], "output_names": ["logits", "probability"], "opset_version": opset}
    if opset >= DYNAMO_MIN_OPSET:
        torch.onnx.export(module, (example,), str(out), dynamo=True, verbose=False,
                          dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, **names)
        return
    batch_axis = {"images": {0: "batch"}, "logits": {0: "batch"}, "probability": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter announces its retirement
        torch.onnx.export(module, (example,), str(out), dynamo=False, dynamic_axes=batch_axis, **names)


def _onnx_outputs(path: Path, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw logits, probabilities) of the exported file, each flat."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, probability = session.run(["logits", "probability"], {"images": batch})
    return logits.reshape(-1), probability.reshape(-1)


def same_ranking(expected: np.ndarray, got: np.ndarray, tolerance: float) -> bool:
    """Whether `got` orders every pair as `expected` does, pairs closer than `tolerance` aside."""
    gap = expected[:, None] - expected[None, :]
    decided = np.abs(gap) > tolerance
    return bool(np.all(np.sign(gap[decided]) == np.sign((got[:, None] - got[None, :])[decided])))


def parity_aucs(labels: np.ndarray | None, expected: np.ndarray, got: np.ndarray,
                tolerance: float) -> tuple[float | None, float | None]:
    """AUC of the parity batch under PyTorch and under ONNX Runtime (Nones without both labels).

    Pairs closer than the parity tolerance count as ties in both: the runtimes may order them
    either way, and an untrained or saturated model has many such pairs.
    """
    if labels is None or len(np.unique(labels)) < 2:
        return None, None

    return auc_with_ties(labels, expected, tolerance), auc_with_ties(labels, got, tolerance)


def export_onnx(model: torch.nn.Module, contract: ModelContract, out: str | Path, opset: int = 17,
                fp16: bool = False, sample: np.ndarray | None = None, sample_labels: np.ndarray | None = None,
                simplify: bool = False) -> ExportReport:
    """Write `model` (float32 NCHW normalised input → N×1 logits) with `contract` to `out`.

    `sample` holds uint8 NHWC RGB face crops at the contract's input size for the parity check;
    without it the check runs on random pixels, which proves the operators but not the real-data
    numerics. With `sample_labels` holding both classes, the sample's AUC (pairs closer than the
    tolerance counted as ties) must also agree to AUC_DECIMALS places.
    `simplify` folds constants and fuses operators with onnxslim before the check, so the check
    covers the simplified graph. The file appears at `out` only after the check passes.
    """
    out = Path(out)
    prep = contract.preprocessing
    scaling = contract.scaling()  # rejects a temperature <= 0
    if sample is None:
        sample = np.random.default_rng(0).integers(0, 256, (4, prep.input_size, prep.input_size, 3), dtype=np.uint8)
    if sample.ndim != 4 or sample.shape[1:] != (prep.input_size, prep.input_size, 3):
        expected_shape = f"(N, {prep.input_size}, {prep.input_size}, 3)"
        raise DfdetectError("bad_input", f"parity sample has shape {sample.shape}, expected {expected_shape}", None,
                            "pass uint8 RGB crops at the contract's input size")
    contract = dataclasses.replace(contract, toolkit_version=__version__,
                                   created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    batch = prep.to_tensor(sample)
    wrapped = calibrated_detector(model.eval(), scaling)
    with torch.no_grad():
        expected_logits, expected = (output.numpy().reshape(-1) for output in wrapped(torch.from_numpy(batch)))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        example = np.concatenate([batch, batch])[:2]  # batch 2: a size-1 axis would be specialised to a constant
        _torch_to_onnx(wrapped, torch.from_numpy(example), tmp, opset)
        proto = onnx.load(str(tmp))
        if simplify:
            proto = onnxslim.slim(proto)
        if fp16:
            converted = OnnxModel(convert_float_to_float16(proto, keep_io_types=True))
            converted.topological_sort()  # the converter appends its input casts after their consumers
            proto = converted.model
        embed_contract(proto, contract)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        got_logits, got = _onnx_outputs(tmp, batch)
        tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
        logit_diff = float(np.max(np.abs(got_logits - expected_logits)))
        logit_tolerance = (FP16_LOGIT_TOLERANCE if fp16 else FP32_TOLERANCE) * max(1.0, float(np.max(np.abs(
            expected_logits))))
        diff = float(np.max(np.abs(got - expected)))
        for what, gap, limit in (("raw logits", logit_diff, logit_tolerance), ("probabilities", diff, tolerance)):
            if not gap <= limit:  # also catches NaN
                raise DfdetectError("internal", f"ONNX and PyTorch {what} differ by {gap:.3g} (> {limit:.3g})", out,
                                    "an operator exports wrongly: try another --opset, or report the backbone")
        ranking = same_ranking(expected_logits, got_logits, logit_tolerance)
        if not ranking:
            raise DfdetectError("internal", "ONNX Runtime ranks the parity faces differently from PyTorch", out,
                                "an operator exports wrongly: try another --opset, or report the backbone")
        auc_torch, auc_onnx = parity_aucs(sample_labels, expected_logits, got_logits, logit_tolerance)
        if auc_torch is not None and f"{auc_torch:.{AUC_DECIMALS}f}" != f"{auc_onnx:.{AUC_DECIMALS}f}":
            raise DfdetectError("internal", f"the parity sample's AUC is {auc_onnx:.4f} in ONNX Runtime but "
                                f"{auc_torch:.4f} in PyTorch", out, "export without --fp16, or try another --opset")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(path=str(out), opset=next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                        fp16=fp16, parity_max_abs_diff=diff, parity_faces=len(sample), parity_max_logit_diff=logit_diff,
                        parity_same_ranking=ranking, sha256=file_sha256(out),
                        contract=contract, parity_auc_torch=auc_torch, parity_auc_onnx=auc_onnx, simplified=simplify)


def london_parity_crops(contract: ModelContract, limit: int = PARITY_BATCH) -> np.ndarray:
    """Real face crops from the bundled London faces, cut exactly as the scanner will cut them."""
    prep = contract.preprocessing
    images = [read_image(p) for p in london_images()[:limit]]
    detector = create_detector(contract.detector)
    crops = [prep.crop(image, faces[0])[0] for image, faces in zip(images, detector.detect(images)) if faces]
    if not crops:
        raise DfdetectError("no_face", "no face found in the bundled London images", None, "pass --crops")
    return np.stack(crops)


def crops_dir_parity_crops(crops: str | Path, input_size: int,
                           limit: int = PARITY_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Up to `limit` crops written by `dfdetect extract` and their labels, half real and half fake
    when both exist (so the sample's AUC is defined), spread over the file rather than taken from
    its first video, and resized to the model's input like evaluation and the scanner do."""
    table = read_crops(crops)
    if table.empty:
        raise DfdetectError("empty_dataset", "the crops file lists no crops", crops, "run `dfdetect extract` first")
    per_label = max(1, limit // table["label"].nunique())
    picked = pd.concat([rows.iloc[:: max(1, len(rows) // per_label)][:per_label]
                        for _, rows in table.groupby("label", sort=True)])
    images = [fit_crop(read_image(p), input_size) for p in picked["crop_path"]]
    return np.stack(images), picked["label"].to_numpy()


def export_checkpoint(checkpoint: str | Path, out: str | Path, crops: str | Path | None = None, opset: int = 17,
                      fp16: bool = False, calibration: str | Path | None = None,
                      simplify: bool = False, clear: str | None = None) -> ExportReport:
    """Load a training checkpoint and export it, with a calibration's temperature and thresholds when
    given, checking parity on extracted crops (and their AUC) or on the London faces. The run manifest
    `dfdetect fit` wrote beside the checkpoint is named in the contract by path and sha256. `clear`
    names the threshold below which scans decide `real` by default (three-way decisions)."""
    model, contract = load_checkpoint(checkpoint)
    contract.training_run = training_run_digest(checkpoint)
    if calibration is not None:
        contract = apply_calibration(contract, read_calibration(calibration))
    if clear is not None:
        contract.decision_rule(clear=clear)  # an unknown name, or one above the default threshold, fails here
        contract.clear_threshold = clear
    if crops is not None:
        sample, labels = crops_dir_parity_crops(crops, contract.preprocessing.input_size)
    else:
        sample, labels = london_parity_crops(contract), None
    return export_onnx(model, contract, out, opset=opset, fp16=fp16, sample=sample, sample_labels=labels,
                       simplify=simplify)


def int8_sibling(report: ExportReport, crops: str | Path | None) -> Int8Report:
    """Quantize an exported float model to model.int8.onnx beside it (dfdetect.model.quantize),
    calibrated on up to CALIBRATION_CROPS crops from `crops` and checked on the float export's
    parity sample from the same crops. Both need real and fake faces: ranges calibrated on real faces
    alone clip what only fakes activate (measured on the starter: fake scores moved by up to 0.34),
    and only a labelled sample shows the AUC moving."""
    if crops is None:
        raise DfdetectError("bad_config", "--int8 needs --crops", None,
                            "pass extracted crops with real and fake faces: they calibrate and check the int8 model")
    prep = report.contract.preprocessing
    sample, labels = crops_dir_parity_crops(crops, prep.input_size)
    if len(np.unique(labels)) < 2:
        raise DfdetectError("bad_config", "--int8 needs real and fake crops; --crops holds one label", crops,
                            "extract crops of both classes")
    calibration = crops_dir_parity_crops(crops, prep.input_size, limit=CALIBRATION_CROPS)[0]
    return quantize_int8(report.path, calibration, sample, labels)


def training_run_digest(checkpoint: str | Path) -> dict:
    """{"manifest": path, "sha256": digest} of the run manifest beside a checkpoint; {} without one
    (a checkpoint from elsewhere, or from before fit wrote manifests)."""
    manifest = Path(checkpoint).resolve().parent / RUN_MANIFEST_NAME
    return {"manifest": str(manifest), "sha256": file_sha256(manifest)} if manifest.is_file() else {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by `dfdetect fit` / `calibrate`")
    parser.add_argument("--out", required=True, help="ONNX file to write, e.g. model.onnx")
    parser.add_argument("--crops", default=None,
                        help="crops directory (from `dfdetect extract`) for the parity check; default: bundled faces")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--fp16", action="store_true", help="store weights in float16 (input/outputs stay float32)")
    parser.add_argument("--calibration", default=None,
                        help="calibration.json from `dfdetect calibrate`: temperature, thresholds and val metrics")
    parser.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim (parity-checked)")
    parser.add_argument("--clear", default=None, metavar="THRESHOLD",
                        help="named threshold (e.g. fpr@0.05) below which scans decide 'real' by default; files "
                             "between it and the default threshold are decided 'review' (default: two-way)")
    parser.add_argument("--int8", action="store_true",
                        help="also write model.int8.onnx beside --out for CPUs (static quantization calibrated on "
                             "--crops, real and fake; refused when it scores their parity sample differently)")


def run(args: argparse.Namespace) -> None:
    if args.int8 and args.crops is None:  # refused before the float export, not after it
        raise DfdetectError("bad_config", "--int8 needs --crops", None,
                            "pass extracted crops with real and fake faces: they calibrate and check the int8 model")
    report = export_checkpoint(args.checkpoint, args.out, crops=args.crops, opset=args.opset, fp16=args.fp16,
                               calibration=args.calibration, simplify=args.simplify, clear=args.clear)
    size_mb = Path(report.path).stat().st_size / 1e6
    variant = "".join((", fp16" if report.fp16 else "", ", simplified" if report.simplified else ""))
    print(f"exported {report.path} ({size_mb:.1f} MB, opset {report.opset}{variant}): "
          f"parity on raw logits: max |Δlogit| = {report.parity_max_logit_diff:.2e}, same ranking of the "
          f"{report.parity_faces} faces, max |Δp| = {report.parity_max_abs_diff:.2e}; "
          f"temperature {report.contract.temperature:g}, bias {report.contract.logit_bias:+g}, "
          f"sha256 {report.sha256[:12]}")
    if report.parity_auc_torch is not None:
        print(f"parity AUC on raw logits: PyTorch {report.parity_auc_torch:.4f}, "
              f"ONNX Runtime {report.parity_auc_onnx:.4f}")
    name, value = report.contract.decision_threshold()
    print(f"decision threshold {name} = {value:.6g} on P(fake); aggregation {report.contract.aggregation}")
    if args.int8:
        int8 = int8_sibling(report, args.crops)
        auc = (f", parity AUC {int8.auc_fp32:.4f} → {int8.auc_int8:.4f}" if int8.auc_fp32 is not None else "")
        size_mb = Path(int8.path).stat().st_size / 1e6
        print(f"int8: {int8.path} ({size_mb:.1f} MB), calibrated on {int8.calibration_faces} faces; "
              f"on {int8.parity_faces} parity faces max |Δp| = {int8.max_abs_diff:.3g} (mean "
              f"{int8.mean_abs_diff:.3g}){auc}; sha256 {int8.sha256[:12]}")
    run = report.contract.training_run
    print(f"training run: {run['manifest']} (sha256 {run['sha256'][:12]})" if run
          else "training run: no run_manifest.json beside the checkpoint; `dfdetect provenance` will say so")
