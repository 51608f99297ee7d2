"""An exported detector opened in ONNX Runtime on the best execution provider available.

onnxruntime-gpu falls back to the CPU without raising when CUDA libraries are missing, so the
providers actually active are logged (and warned about when a GPU was asked for) rather than assumed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.export import contract_from_metadata, file_sha256

log = logging.getLogger(__name__)

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = frozenset(PROVIDER_PREFERENCE[:2])
DEVICES = ("auto", "cpu", "cuda")


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Providers to request, best first: GPU ones only for auto/cuda, the CPU always last except for
    an explicit cuda request (which must not silently become a CPU scan)."""
    if device not in DEVICES:
        raise DfdetectError("bad_config", f"unknown device {device!r}", None, f"choose one of {list(DEVICES)}")
    wanted = {"auto": PROVIDER_PREFERENCE, "cpu": PROVIDER_PREFERENCE[2:], "cuda": PROVIDER_PREFERENCE[:2]}[device]
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise DfdetectError("bad_config", f"no ONNX Runtime provider for device {device!r} (available: {available})",
                            None, "install onnxruntime-gpu (pip install dfdetect[gpu]) or use --device cpu")
    return chosen


class OnnxModel:
    """The scanner's view of a model file: its contract, its hash and a logits function."""

    def __init__(self, path: str | Path, device: str = "auto", intra_op_threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise DfdetectError("missing_path", "model file not found", self.path, "check --model")
        providers = choose_providers(device, ort.get_available_providers())
        if GPU_PROVIDERS.intersection(providers) and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, when installed that way
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types for a non-model file
            raise DfdetectError("bad_input", f"ONNX Runtime cannot load the model ({exc.__class__.__name__})",
                                self.path, "export the model with `dfdetect export`") from exc
        self.providers: list[str] = self.session.get_providers()
        log.info("ONNX Runtime providers active for %s: %s", self.path.name, self.providers)
        if device == "cuda" and not GPU_PROVIDERS.intersection(self.providers):
            log.warning("a GPU was requested but ONNX Runtime runs %s on %s", self.path.name, self.providers)
        self.contract = contract_from_metadata(self.session.get_modelmeta().custom_metadata_map, self.path)
        self.sha256 = file_sha256(self.path)

    def logits(self, batch_nchw: np.ndarray) -> np.ndarray:
        """Raw (not temperature-scaled) logits, shape (N,), for a normalised float32 NCHW batch."""
        batch = np.ascontiguousarray(batch_nchw, dtype=np.float32)
        return self.session.run(["logits"], {"images": batch})[0].reshape(-1)
