"""How a crops folder was cut. `dfdetect extract` records its options beside the crops
(extract_options.json); `fit` reads them back, so the model's contract states the detector, margin and
alignment its training faces really had, and scan cuts faces the same way. A config that says
otherwise is refused rather than silently trusted (train/serve skew: scores collapse when the crop differs).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.faces import DEFAULT_DETECTOR
from dfdetect.model.contract import DEFAULT_CROP_MARGIN, Preprocessing

EXTRACT_OPTIONS_FILE = "extract_options.json"


@dataclass(frozen=True)
class ExtractOptions:
    """`dfdetect extract`'s options; the crop geometry among them (detector, size, margin, align) is
    what training and the contract read back."""

    frames: int = 32
    every: int | None = None
    detector: str = DEFAULT_DETECTOR
    size: int = 224
    margin: float = DEFAULT_CROP_MARGIN
    all_faces: bool = False
    align: bool = False
    jpeg_quality: int = 95
    reuse_source_boxes: bool = False

    def preprocessing(self) -> Preprocessing:
        """The crop geometry as a contract states it (normalisation left at its defaults)."""
        return Preprocessing(input_size=self.size, crop_margin=self.margin, alignment="eyes" if self.align else "none")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def read_extract_options(crops: str | Path) -> ExtractOptions | None:
    """The options a crops folder (or its crops.parquet) was extracted with; None for crops another
    tool made, which carry no record."""
    crops = Path(crops)
    path = (crops if crops.is_dir() else crops.parent) / EXTRACT_OPTIONS_FILE
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(ExtractOptions)}
        return ExtractOptions(**{k: v for k, v in recorded.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise DfdetectError("bad_input", f"cannot read the extract options ({exc})", path,
                            "re-run `dfdetect extract` into a new folder") from exc
