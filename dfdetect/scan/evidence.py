"""What a scan record carries beside the score: the provenance evidence the file brings with it
(C2PA manifest, invisible watermark) and, with `scan --explain`, a heatmap PNG per top face.

Both are added after the score is decided and never change it: evidence is shown next to the detector's
judgement so that a person weighs the two, not folded into one number.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dfdetect.media.provenance import provenance_evidence
from dfdetect.model.contract import Preprocessing
from dfdetect.model.heatmaps import occlusion_map, write_heatmap_png
from dfdetect.records import ScanRecord


def heatmap_name(path: str, frame_index: int, crop_index: int) -> str:
    """`<file stem>-<8 hex of the path>-f<frame>-c<crop>.png` (crop: the face's number among the file's
    scored faces): readable, and unique across folders that hold files of the same name."""
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{Path(path).stem}-{digest}-f{frame_index}-c{crop_index}.png"


def explain_top_faces(record: ScanRecord, crops: np.ndarray, logits: np.ndarray,
                      model_logits: Callable[[np.ndarray], np.ndarray], preprocessing: Preprocessing,
                      folder: Path) -> ScanRecord:
    """The record with `heatmap` (a PNG path) on each of its top faces: an occlusion map over the crop
    the model scored. Top faces are the highest logits, in the order build_record lists them."""
    order = np.argsort(-np.asarray(logits), kind="stable")[:len(record.top_faces)]
    top_faces = []
    for face, index in zip(record.top_faces, order):
        heatmap = occlusion_map(model_logits, crops[index], preprocessing)
        png = write_heatmap_png(crops[index], heatmap,
                                folder / heatmap_name(record.path, face["frame_index"], int(index)))
        top_faces.append({**face, "heatmap": str(png)})
    return dataclasses.replace(record, top_faces=top_faces)


def with_provenance(record: ScanRecord, path: str) -> ScanRecord:
    """The record with the C2PA and watermark evidence of the file at `path`; a file that could not be
    decoded has none."""
    if record.status == "error":
        return record
    return dataclasses.replace(record, provenance=provenance_evidence(path, record.media_type))
