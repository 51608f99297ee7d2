"""An exported detector opened in ONNX Runtime on the best execution provider available.

onnxruntime-gpu falls back to the CPU without raising when CUDA libraries are missing, so the
providers actually active are logged (and warned about when a GPU was asked for) rather than assumed.
A model may have siblings at lower precision beside it, written by `dfdetect export`: `model.fp16.onnx`
(half-precision weights) and `model.int8.onnx` (statically quantized, for CPUs); inputs and outputs
stay float32 in all. `precision="auto"` takes the one that is faster where the session runs, when it
exists: fp16 on a GPU, int8 on a CPU (fp16 on a CPU is slower than fp32). On a GPU the session runs
through IO binding, so only the logits output is copied back, not the calibrated probabilities the
scanner recomputes in float64; TensorRT keeps its built engines in a cache folder, as building one
takes minutes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import ModelContract
from dfdetect.model.onnx import contract_from_metadata
from dfdetect.records import file_sha256

log = logging.getLogger(__name__)

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = frozenset(PROVIDER_PREFERENCE[:2])
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
SIBLING_PRECISIONS = ("fp16", "int8")  # written beside model.onnx as model.<precision>.onnx


def default_trt_cache() -> Path:
    """Where TensorRT's engines are kept between runs: $DFDETECT_TRT_CACHE, else ~/.cache/dfdetect/tensorrt."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("DFDETECT_TRT_CACHE", cache_home / "dfdetect" / "tensorrt"))


def provider_options(providers: list[str], precision: str, trt_cache: Path) -> list[str | tuple[str, dict]]:
    """Providers with their options: TensorRT caches its engines (and timing data) in `trt_cache`
    and builds fp16 engines unless fp32 was asked for."""
    trt = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache),
           "trt_timing_cache_enable": True, "trt_timing_cache_path": str(trt_cache),
           "trt_fp16_enable": precision != "fp32"}
    return [(name, trt) if name == "TensorrtExecutionProvider" else name for name in providers]


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


def check_contract_fits_graph(contract: ModelContract, session: ort.InferenceSession, path: Path) -> None:
    """Refuse, when the model opens, a contract that parses but cannot drive its graph: no `images`
    input or `logits` output, an input size that is not a positive integer or differs from the
    graph's, logits that are not one per image, a temperature that is not positive, a default
    threshold that is not among the thresholds. Each would otherwise be a traceback at the first file."""
    def refuse(problem: str) -> None:
        raise DfdetectError("bad_input", f"the model contract does not fit the model: {problem}", path,
                            "re-export it with `dfdetect export`")

    size = contract.preprocessing.input_size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        refuse(f"input_size {size!r} is not a positive whole number of pixels")
    inputs = {node.name: node.shape for node in session.get_inputs()}
    outputs = {node.name: node.shape for node in session.get_outputs()}
    if "images" not in inputs:
        refuse(f"the graph has no 'images' input (inputs: {sorted(inputs)})")
    if "logits" not in outputs:
        refuse(f"the graph has no 'logits' output (outputs: {sorted(outputs)})")
    expected = [None, 3, size, size]
    shape = inputs["images"]
    if len(shape) != 4 or any(isinstance(d, int) and e is not None and d != e for d, e in zip(shape, expected)):
        refuse(f"the graph takes images of shape {shape}, the contract says [N, 3, {size}, {size}]")
    logits = outputs["logits"]
    if not (len(logits) == 1 or (len(logits) == 2 and not (isinstance(logits[1], int) and logits[1] != 1))):
        refuse(f"logits have shape {logits}, not one per image ([N] or [N, 1])")
    temperature = contract.temperature
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        refuse(f"temperature {temperature!r} is not a positive number")
    if contract.default_threshold not in contract.thresholds:
        refuse(f"default_threshold {contract.default_threshold!r} is not among the thresholds "
               f"{sorted(contract.thresholds)}")


class OnnxModel:
    """The scanner's view of a model file: its contract, its hash and a logits function."""

    def __init__(self, path: str | Path, device: str = "auto", intra_op_threads: int | None = None,
                 precision: str = "auto", trt_cache: str | Path | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise DfdetectError("missing_path", "model file not found", self.path, "check --model")
        providers = choose_providers(device, ort.get_available_providers())
        on_gpu = bool(GPU_PROVIDERS.intersection(providers))
        if on_gpu and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, when installed that way
        self.path, self.precision = choose_model_file(self.path, on_gpu, precision)
        if "TensorrtExecutionProvider" in providers:
            trt_cache = Path(trt_cache) if trt_cache is not None else default_trt_cache()
            trt_cache.mkdir(parents=True, exist_ok=True)
            providers = provider_options(providers, self.precision, trt_cache)
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        # Idle ORT threads spin for a while by default; beside decode workers and the detector on the
        # same cores that spinning takes the CPU time they need (measured: the scan ran 1.4x slower).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types for a non-model file
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            raise DfdetectError("bad_input", f"ONNX Runtime cannot load the model ({exc.__class__.__name__}: "
                                f"{reason})", self.path, "export the model with `dfdetect export`") from exc
        self.providers: list[str] = self.session.get_providers()
        log.info("ONNX Runtime providers active for %s (%s): %s", self.path.name, self.precision, self.providers)
        if device == "cuda" and not GPU_PROVIDERS.intersection(self.providers):
            log.warning("a GPU was requested but ONNX Runtime runs %s on %s", self.path.name, self.providers)
        self.contract = contract_from_metadata(self.session.get_modelmeta().custom_metadata_map, self.path)
        check_contract_fits_graph(self.contract, self.session, self.path)
        self.sha256 = file_sha256(self.path)
        self.on_gpu = bool(GPU_PROVIDERS.intersection(self.providers))

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
        binding.bind_ortvalue_input("images", ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
        binding.bind_output("logits", "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0].reshape(-1)


def precision_sibling(path: Path, precision: str) -> Path:
    """model.onnx (or any of its siblings) → the file holding `precision`: model.onnx for fp32,
    model.fp16.onnx / model.int8.onnx, the names `dfdetect export --fp16 / --int8` write."""
    stem = path.stem
    for known in SIBLING_PRECISIONS:
        stem = stem.removesuffix(f".{known}")
    return path.with_name(f"{stem}{path.suffix}" if precision == "fp32" else f"{stem}.{precision}{path.suffix}")


def file_precision(path: Path) -> str:
    """The precision a model file's name says it holds."""
    return next((p for p in SIBLING_PRECISIONS if path.name.endswith(f".{p}{path.suffix}")), "fp32")


def choose_model_file(path: Path, on_gpu: bool, precision: str = "auto") -> tuple[Path, str]:
    """The file to load and its precision. "auto" keeps a sibling named explicitly as --model, and
    otherwise takes the fast sibling where it exists (fp16 on a GPU, int8 on a CPU), else the float
    model; an explicit precision insists on its file."""
    if precision not in PRECISIONS:
        raise DfdetectError("bad_config", f"unknown precision {precision!r}", None, f"choose one of {list(PRECISIONS)}")
    if precision == "auto":
        if file_precision(path) != "fp32":
            return path, file_precision(path)
        fast = precision_sibling(path, "fp16" if on_gpu else "int8")
        return (fast, file_precision(fast)) if fast.exists() else (path, "fp32")
    wanted = precision_sibling(path, precision)
    if not wanted.exists():
        raise DfdetectError("missing_path", f"no {precision} model beside the model file", wanted,
                            f"export one with `dfdetect export --{precision}`" if precision != "fp32"
                            else "pass the float model as --model")
    return wanted, precision
