"""Batch inference of an exported detector over images and videos (`dfdetect scan`).

Names are loaded on first use: decode worker processes import `dfdetect.scan.decode` through this
package, and must not pay for the detector, ONNX Runtime or torch they never touch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AGGREGATIONS": "aggregate", "aggregate": "aggregate", "register_aggregation": "aggregate",
    "expand_inputs": "inputs", "read_manifest": "inputs",
    "ScanSummary": "pipeline", "scan_paths": "pipeline",
    "OnnxModel": "session",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
