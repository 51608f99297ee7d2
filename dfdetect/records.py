"""Typed records that flow between stages, and the files that hold them.

Each stage reads the previous stage's file through these helpers, never its internals, so a stage
can be re-run or replaced by another tool that writes the same columns. The README's "File
schemas" section documents the same fields; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dfdetect.errors import DfdetectError

REAL, FAKE = 0, 1
LABELS = {"real": REAL, "fake": FAKE}
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".avif")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")


@dataclass
class IndexRow:
    """One media file of a dataset (a row of index.parquet)."""

    path: str  # absolute path of the image or video
    media_type: str  # "image" | "video"
    label: int  # 0 = real, 1 = fake
    dataset: str  # e.g. "folder", "ffpp", "celebdf"
    split: str  # "train" | "val" | "test"
    group: str  # leakage unit: items sharing a group always share a split
    method: str = ""  # manipulation method for fakes ("" for reals or unknown)
    compression: str = ""  # e.g. "c23" for FF++
    identity: str = ""  # person id when the layout carries one
    source: str = ""  # for a fake: path of the real video it was made from, when known


@dataclass
class CropRow:
    """One face crop (a row of crops.parquet); crop_path is relative to the crops directory."""

    crop_path: str
    source_path: str  # the media file the face came from (IndexRow.path)
    media_type: str
    frame_index: int  # decoded frame number in the video; 0 for images
    face_index: int  # rank of the face within its frame (0 = largest)
    track_id: int  # same face across frames of one video
    x0: float  # face box in source pixel coordinates
    y0: float
    x1: float
    y1: float
    score: float  # detector confidence
    label: int
    split: str
    group: str
    dataset: str
    method: str = ""
    landmarks: list[float] = field(default_factory=list)  # [x, y]*K in crop pixel coordinates


INDEX_COLUMNS = [f.name for f in dataclasses.fields(IndexRow)]
EXTRACT_SUMMARY_NAME = "extract_summary.json"  # beside crops.parquet: what extract did, and the index it read
RUN_MANIFEST_NAME = "run_manifest.json"  # beside a fit's checkpoints: what the model was made from
CROP_COLUMNS = [f.name for f in dataclasses.fields(CropRow)]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks: models, checkpoints and inputs name themselves by it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_rows(rows: list, path: str | Path, columns: list[str]) -> Path:
    """Write dataclass rows as parquet via a temp file, so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=columns)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_table(path: str | Path, columns: list[str], what: str, made_by: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DfdetectError("missing_path", f"{what} not found", path, f"create it with `{made_by}`")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise DfdetectError("bad_input", f"not a parquet file ({exc.__class__.__name__})", path,
                            f"re-create it with `{made_by}`") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DfdetectError("bad_input", f"{what} lacks columns {missing}", path,
                            f"re-create it with `{made_by}`")
    return frame


def read_index(path: str | Path) -> pd.DataFrame:
    required = [f.name for f in dataclasses.fields(IndexRow) if f.default is dataclasses.MISSING]
    return read_table(path, required, "index file", "dfdetect index")


def read_crops(path: str | Path) -> pd.DataFrame:
    """Read crops.parquet (or a directory holding it); crop_path is made absolute."""
    path = Path(path)
    if path.is_dir():
        path = path / "crops.parquet"
    required = [f.name for f in dataclasses.fields(CropRow)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    frame = read_table(path, required, "crops file", "dfdetect extract")
    frame["crop_path"] = [str(path.parent / p) for p in frame["crop_path"]]
    return frame


@dataclass
class ScanRecord:
    """One scanned file (a line of results.jsonl). `logit` is the aggregated, calibrated (temperature, bias)
    face logit, so probability == sigmoid(logit) and decision == probability >= threshold."""

    path: str  # absolute path as given (symlinks kept)
    size: int  # bytes; with mtime, the key `--resume` uses to skip a file already scanned
    mtime: float  # seconds since the epoch
    media_type: str  # "image" | "video" | "" when the content is neither
    status: str  # "ok" | "no_face" | "error"
    error_code: str = ""  # a dfdetect.errors.ERROR_CODES key when status is "error"
    error_message: str = ""
    frames_decoded: int = 0
    faces_scored: int = 0
    probability: float | None = None
    logit: float | None = None
    decision: bool | None = None  # True = flagged as fake (probability >= the flag threshold)
    threshold_name: str = ""  # the flag threshold
    threshold: float | None = None
    clear_threshold_name: str = ""  # below it a file is cleared as real; equal to the flag threshold = two-way
    clear_threshold: float | None = None
    triage: str = ""  # "fake" | "review" | "real" (contract.DecisionRule); "" without a score
    # {frame_index, box, probability[, heatmap: PNG of the crop and its occlusion map, with scan --explain]},
    # highest first
    top_faces: list[dict] = field(default_factory=list)
    frame_scores: list[dict] | None = None  # every scored face, only with --details
    timings: dict[str, float] = field(default_factory=dict)  # decode / detect / infer seconds
    model_sha256: str = ""
    toolkit_version: str = ""
    sha256: str = ""  # of the file's bytes, only with `scan --hash` (with path, the key `--resume` uses)
    path_bytes: str = ""  # hex of the path's bytes when they are not UTF-8 (then `path` shows them as \xNN)
    # evidence the file carries, beside the score and never merged into it (dfdetect.media.provenance):
    # {"c2pa": {"status": absent|unsupported|valid|invalid, signer, claim_generator, ai_generated, …},
    #  "watermark": {"status": found|absent|not_checked, "mark", …}}; None for error records or --no-provenance
    provenance: dict | None = None


SCAN_COLUMNS = [f.name for f in dataclasses.fields(ScanRecord)]


def utf8_text(text: str) -> str:
    """Text that encodes as UTF-8 whatever file name it came from. Python keeps the bytes of a
    non-UTF-8 file name as surrogate escapes, which no UTF-8 writer (JSON, CSV, Arrow) accepts; they
    are written as `\\xNN` instead, so one such name cannot stop a scan."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def path_bytes_hex(path: str) -> str:
    """The path's bytes in hex when they are not UTF-8 (its text form then loses them), else ""."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return ""


def record_path(record: dict) -> str:
    """The path a scan record names, as the operating system spells it (the inverse of writing
    `path` with utf8_text and `path_bytes`): what `--resume` compares with the files it finds."""
    raw = record.get("path_bytes")
    return os.fsdecode(bytes.fromhex(raw)) if raw else record["path"]
