"""An int8 sibling of an exported model for CPUs: `model.onnx` → `model.int8.onnx`.

ONNX Runtime's static quantization stores the weights as int8 (one scale per output channel: a
depthwise convolution's channels differ too much for one scale) and quantizes activations to uint8
with ranges measured on real face crops run through the float model (QDQ format; the CPU provider
fuses it into integer convolutions). The file is written only when the int8 model scores a parity
sample like the float one: its AUC (with labels) within INT8_AUC_TOLERANCE, and every probability
within INT8_TOLERANCE. Quantization error depends on the trained weights, so a model that fails is
refused rather than shipped with decisions that silently moved; the float model then stays the one
that runs (`dfdetect scan --precision auto` takes the int8 file only when it exists).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from dfdetect.errors import DfdetectError
from dfdetect.metrics import roc_auc
from dfdetect.model.contract import ModelContract
from dfdetect.model.onnx import embed_contract, read_contract
from dfdetect.model.session import precision_sibling
from dfdetect.records import file_sha256

INT8_AUC_TOLERANCE = 0.005  # |AUC_int8 − AUC_fp32| on the labelled parity sample
# Every face's calibrated probability within 0.1 of the float model's. Measured on the starter model
# (benchmarks/int8_bench.py): calibrated on frames of real and fake videos, the largest move was 0.09
# (mean 0.011); calibrated on real studio photos alone, 0.34 (mean 0.078), as activations that only
# fakes produce fell outside the calibrated ranges. The limit refuses the second kind.
INT8_TOLERANCE = 0.1
CALIBRATION_BATCH = 8


@dataclass
class Int8Report:
    path: str
    calibration_faces: int
    parity_faces: int
    max_abs_diff: float  # max |p_int8 − p_fp32| over the parity sample
    mean_abs_diff: float
    sha256: str
    auc_fp32: float | None = None  # AUC of the parity sample, when it holds both labels
    auc_int8: float | None = None


def _probabilities(path: str | Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probability"], {"images": batch})[0].reshape(-1).astype(np.float64)


class _CropReader(CalibrationDataReader):
    """Feeds calibration crops to the quantizer in small batches."""

    def __init__(self, contract: ModelContract, crops: np.ndarray):
        prep = contract.preprocessing
        self._batches = iter([{"images": prep.to_tensor(crops[i : i + CALIBRATION_BATCH])}
                              for i in range(0, len(crops), CALIBRATION_BATCH)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(float_model: str | Path, calibration: np.ndarray, sample: np.ndarray,
                  sample_labels: np.ndarray | None = None, tolerance: float = INT8_TOLERANCE,
                  auc_tolerance: float = INT8_AUC_TOLERANCE) -> Int8Report:
    """Write `model.int8.onnx` beside `float_model`, calibrated on `calibration` (uint8 NHWC RGB face
    crops at the contract's input size), after checking it against the float model on `sample`
    (and `sample_labels` for the AUC). Refused, with nothing written, when it scores differently."""
    float_model = Path(float_model)
    contract = read_contract(float_model)
    out = precision_sibling(float_model, "int8")
    prep = contract.preprocessing
    for name, crops in (("calibration", calibration), ("parity", sample)):
        if crops.ndim != 4 or crops.shape[1:] != (prep.input_size, prep.input_size, 3) or len(crops) == 0:
            raise DfdetectError("bad_input", f"{name} crops have shape {crops.shape}, expected (N, {prep.input_size}, "
                                f"{prep.input_size}, 3)", float_model, "pass uint8 RGB crops at the model's input size")
    with tempfile.TemporaryDirectory(prefix="int8_", dir=out.parent) as work:
        prepared, quantized = Path(work) / "prepared.onnx", Path(work) / "int8.onnx"
        quant_pre_process(str(float_model), str(prepared))  # shapes inferred and the graph folded first
        quantize_static(str(prepared), str(quantized), _CropReader(contract, calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load(str(quantized))
        embed_contract(proto, contract)  # the quantizer drops the model's metadata
        onnx.save(proto, str(quantized))
        batch = prep.to_tensor(sample)
        expected, got = _probabilities(float_model, batch), _probabilities(quantized, batch)
        gaps = np.abs(got - expected)
        report = Int8Report(path=str(out), calibration_faces=len(calibration), parity_faces=len(sample),
                            max_abs_diff=float(np.max(gaps)), mean_abs_diff=float(np.mean(gaps)), sha256="")
        if sample_labels is not None and len(np.unique(sample_labels)) == 2:
            report.auc_fp32, report.auc_int8 = roc_auc(sample_labels, expected), roc_auc(sample_labels, got)
        if not report.max_abs_diff <= tolerance:  # also catches NaN
            raise DfdetectError("internal", f"int8 probabilities differ from the float model's by up to "
                                f"{report.max_abs_diff:.3g} (mean {report.mean_abs_diff:.3g}; limit {tolerance:g}) on "
                                f"{len(sample)} faces; {out.name} not written", float_model,
                                "scan with the float model (it is what --precision auto runs without the int8 file)")
        if report.auc_fp32 is not None and not abs(report.auc_int8 - report.auc_fp32) <= auc_tolerance:
            raise DfdetectError("internal", f"the parity sample's AUC moves from {report.auc_fp32:.4f} to "
                                f"{report.auc_int8:.4f} in int8 (limit ±{auc_tolerance:g}); {out.name} not written",
                                float_model, "scan with the float model")
        os.replace(quantized, out)
    report.sha256 = file_sha256(out)
    return report
