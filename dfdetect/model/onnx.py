"""A model contract inside an ONNX file: `metadata_props["dfdetect.contract"]` holds its JSON, so the
file alone tells any consumer how to prepare faces and read the scores (docs/model-contract.md)."""

from __future__ import annotations

from pathlib import Path

import onnx

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import CONTRACT_KEY, ModelContract


def embed_contract(proto: onnx.ModelProto, contract: ModelContract) -> None:
    """Store `contract` in the model's metadata, keeping any other metadata the model carries."""
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props},
                                        CONTRACT_KEY: contract.to_json()})


def contract_from_metadata(metadata: dict[str, str], path: str | Path) -> ModelContract:
    """The contract stored in an ONNX file's metadata (as read_contract or an ONNX Runtime session sees it)."""
    if CONTRACT_KEY not in metadata:
        raise DfdetectError("bad_input", f"the ONNX file has no {CONTRACT_KEY!r} metadata", path,
                            "export the model with `dfdetect export`")
    try:
        return ModelContract.from_json(metadata[CONTRACT_KEY])
    except (ValueError, KeyError, TypeError) as exc:
        raise DfdetectError("bad_input", f"the model contract cannot be read ({exc})", path,
                            "re-export the model with this version of `dfdetect export`") from exc


def read_contract(onnx_path: str | Path) -> ModelContract:
    onnx_path = Path(onnx_path)
    if not onnx_path.exists():
        raise DfdetectError("missing_path", "model file not found", onnx_path, "check --model")
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others for a non-ONNX file
        raise DfdetectError("bad_input", f"not an ONNX model ({exc.__class__.__name__})", onnx_path,
                            "export the model with `dfdetect export`") from exc
    return contract_from_metadata({p.key: p.value for p in model.metadata_props}, onnx_path)
