"""An exported detector opened in ONNX Runtime on the best execution provider available.

onnxruntime-gpu falls back to the CPU without raising when CUDA libraries are missing, so the
providers actually active are logged (and warned about when a GPU was asked for) rather than assumed.
On a GPU the session prefers the half-precision sibling `model.fp16.onnx` when one exists (export
writes both with `--fp16`; inputs and outputs stay float32), and runs through IO binding so only the
logits output is copied back, not the calibrated probabilities the scanner recomputes in float64.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.export import contract_from_metadata
from dfdetect.records import file_sha256

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

    def __init__(self, path: str | Path, device: str = "auto", intra_op_threads: int | None = None,
                 fp16: bool | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise DfdetectError("missing_path", "model file not found", self.path, "check --model")
        providers = choose_providers(device, ort.get_available_providers())
        on_gpu = bool(GPU_PROVIDERS.intersection(providers))
        if on_gpu and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, when installed that way
        self.path = choose_model_file(self.path, on_gpu, fp16)
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        # Idle ORT threads spin for a while by default; beside decode workers and the detector on the
        # same cores that spinning takes the CPU time they need (measured: the scan ran 1.4x slower).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self.on_gpu = bool(GPU_PROVIDERS.intersection(self.providers))
        self._ort = ort

    def warm_up(self, batch_size: int) -> None:
        """Run one full batch before the first file: ONNX Runtime sizes its memory arena for the
        largest batch it has seen, so memory reaches its plateau (or runs out) at start-up rather
        than hours into a scan, and the first files' timings do not include the allocation."""
        size = self.contract.preprocessing.input_size
        self.logits(np.zeros((batch_size, 3, size, size), np.float32))

    def logits(self, batch_nchw: np.ndarray) -> np.ndarray:
        """Raw (not temperature-scaled) logits, shape (N,), for a normalised float32 NCHW batch."""
        batch = np.ascontiguousarray(batch_nchw, dtype=np.float32)
        if not self.on_gpu:
            return self.session.run(["logits"], {"images": batch})[0].reshape(-1)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("images", self._ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
        binding.bind_output("logits", "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0].reshape(-1)


def fp16_sibling(path: Path) -> Path:
    """model.onnx → model.fp16.onnx, the name `dfdetect export --fp16` is expected to use."""
    return path.with_name(f"{path.stem}.fp16{path.suffix}")


def choose_model_file(path: Path, on_gpu: bool, fp16: bool | None) -> Path:
    """The file to load: fp16=None takes the fp16 sibling on a GPU when it exists (fp16 on a CPU is
    slower, not faster); fp16=True insists on it; fp16=False never uses it."""
    sibling = path if path.name.endswith(".fp16.onnx") else fp16_sibling(path)
    if fp16 is False or (fp16 is None and not on_gpu):
        return path
    if sibling.exists():
        return sibling
    if fp16:
        raise DfdetectError("missing_path", "no fp16 model beside the model file", sibling,
                            "export one with `dfdetect export --fp16 --out " + sibling.name + "`")
    return path
