"""The scanner: files → decode ▶ detect ▶ crop ▶ infer ▶ aggregate → one JSONL record per file.

Two stages with one hand-off: `FilePreparer` turns a path into a `PreparedFile` (face crops or an
error, never an exception), and `ScoringQueue` scores crops in fixed-size batches that mix files and
emits each file's record, in input order, once its last crop is scored. Preparing is per-file and
self-contained, so it can move to worker processes feeding the queue through a bounded queue without
touching the scoring or the records.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfdetect import __version__
from dfdetect.contract import ModelContract
from dfdetect.errors import DfdetectError
from dfdetect.faces import FaceDetector, create_detector, crop_face
from dfdetect.media.io import Frame, iter_video_frames, read_image, sniff_media_type
from dfdetect.records import ScanRecord
from dfdetect.scan.aggregate import aggregate, sigmoid
from dfdetect.scan.session import OnnxModel
from dfdetect.scan.writers import RESUME_KEY, JsonlWriter, recorded_keys

TOP_FACES = 5


@dataclass
class ScoredFace:
    frame_index: int
    face_index: int  # rank within its frame, largest first
    box: tuple[float, float, float, float]


@dataclass
class PreparedFile:
    """A file after decoding and detection: its crops ready for the model, or the error that stopped it."""

    path: str
    size: int
    mtime: float
    media_type: str = ""
    frames_decoded: int = 0
    faces: list[ScoredFace] = field(default_factory=list)
    crops: np.ndarray | None = None  # (len(faces), S, S, 3) uint8
    error: DfdetectError | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class ScanSummary:
    out: str
    files: int  # inputs found
    skipped: int  # already in the output (--resume)
    ok: int
    no_face: int
    error: int
    flagged: int  # ok files whose decision is "fake"
    seconds: float
    providers: list[str]

    @property
    def scanned(self) -> int:
        return self.ok + self.no_face + self.error

    @property
    def files_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0


def discover_files(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Files named directly plus every file under named directories (hidden ones skipped), without
    duplicates, in a stable order. A missing path stays in the list so it gets its own error record."""
    excluded = {Path(p).absolute() for p in exclude}
    found: dict[Path, None] = {}
    for given in paths:
        given = Path(given).absolute()
        if given.is_dir():
            for root, dirs, names in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.update((Path(root) / n, None) for n in sorted(names) if not n.startswith("."))
        else:
            found[given] = None
    return [p for p in found if p not in excluded]


def file_key(path: Path) -> tuple[str, int, float]:
    """(path, size, mtime): the identity --resume compares, so a file changed since is scanned again."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime


class FilePreparer:
    """Decodes a file, finds its faces and cuts the crops the model expects (from the contract)."""

    def __init__(self, contract: ModelContract, detector: FaceDetector, frames_per_video: int):
        self.preprocessing = contract.preprocessing
        self.detector = detector
        self.frames_per_video = frames_per_video

    def __call__(self, path: Path) -> PreparedFile:
        try:
            _, size, mtime = file_key(path)
        except OSError:
            return PreparedFile(str(path), 0, 0.0, error=DfdetectError("missing_path", "file not found", path,
                                                                         "check the path"))
        prepared = PreparedFile(str(path), size, mtime)
        try:
            self._fill(prepared, path)
        except DfdetectError as exc:
            prepared.error = exc
        except Exception as exc:  # one broken file must not stop the scan: record what happened
            prepared.error = DfdetectError("internal", f"{exc.__class__.__name__}: {exc}", path,
                                           "please report this file")
        return prepared

    def _fill(self, prepared: PreparedFile, path: Path) -> None:
        if prepared.size == 0:
            raise DfdetectError("unreadable_media", "the file is empty", path, "it was truncated or never written")
        media_type = sniff_media_type(path)
        if media_type is None:
            raise DfdetectError("unsupported_media", "the content is neither an image nor a video we read", path,
                                "scan image or video files")
        prepared.media_type = media_type
        started = time.perf_counter()
        frames = self._decode(path, media_type)
        prepared.frames_decoded = len(frames)
        prepared.timings["decode"] = time.perf_counter() - started

        started = time.perf_counter()
        prep = self.preprocessing
        crops = []
        for frame, faces in zip(frames, self.detector.detect([f.image for f in frames])):
            for rank, face in enumerate(faces):
                crops.append(crop_face(frame.image, face, size=prep.input_size, margin=prep.crop_margin,
                                       align=prep.alignment == "eyes")[0])
                prepared.faces.append(ScoredFace(frame.index, rank, tuple(round(float(v), 1) for v in face.box)))
        if crops:
            prepared.crops = np.stack(crops)
        prepared.timings["detect"] = time.perf_counter() - started

    def _decode(self, path: Path, media_type: str) -> list[Frame]:
        if media_type == "image":
            return [Frame(index=0, image=read_image(path))]
        return list(iter_video_frames(path, self.frames_per_video))


@dataclass
class _ScoringJob:
    prepared: PreparedFile
    logits: np.ndarray  # one per crop, filled in as batches are scored
    scored: int = 0


class ScoringQueue:
    """Scores crops in batches of exactly `batch_size` (the last may be short) across file borders,
    and hands each finished file to `emit` in the order files were added."""

    def __init__(self, model: OnnxModel, batch_size: int, emit: Callable[[PreparedFile, np.ndarray], None]):
        if batch_size < 1:
            raise DfdetectError("bad_config", f"batch size must be >= 1, got {batch_size}", None, "use e.g. 32")
        self.model = model
        self.batch_size = batch_size
        self.emit = emit
        self._jobs: deque[_ScoringJob] = deque()
        self._pending: deque[tuple[_ScoringJob, int]] = deque()  # crops waiting for a batch: job, crop index

    def add(self, prepared: PreparedFile) -> None:
        count = 0 if prepared.crops is None else len(prepared.crops)
        job = _ScoringJob(prepared, np.full(count, np.nan, np.float64))
        self._jobs.append(job)
        self._pending.extend((job, i) for i in range(count))
        while len(self._pending) >= self.batch_size:
            self._score(self.batch_size)
        self._emit_finished()

    def flush(self) -> None:
        while self._pending:
            self._score(min(self.batch_size, len(self._pending)))
        self._emit_finished()

    def _score(self, count: int) -> None:
        batch = [self._pending.popleft() for _ in range(count)]
        crops = np.stack([job.prepared.crops[i] for job, i in batch])
        started = time.perf_counter()
        logits = self.model.logits(self.model.contract.preprocessing.to_tensor(crops))
        share = (time.perf_counter() - started) / count  # each file is charged for its crops in the batch
        for (job, i), value in zip(batch, logits, strict=True):
            job.logits[i] = value
            job.scored += 1
            job.prepared.timings["infer"] = job.prepared.timings.get("infer", 0.0) + share

    def _emit_finished(self) -> None:
        while self._jobs and self._jobs[0].scored == len(self._jobs[0].logits):
            job = self._jobs.popleft()
            self.emit(job.prepared, job.logits)


def build_record(prepared: PreparedFile, logits: np.ndarray, model: OnnxModel, details: bool = False) -> ScanRecord:
    """The file's result: raw face logits are temperature-scaled, aggregated by the contract's rule,
    and thresholded at the contract's default threshold."""
    contract = model.contract
    record = ScanRecord(path=prepared.path, size=prepared.size, mtime=prepared.mtime, media_type=prepared.media_type,
                        status="ok", frames_decoded=prepared.frames_decoded, faces_scored=len(logits),
                        timings={k: round(v, 6) for k, v in prepared.timings.items()},
                        model_sha256=model.sha256, toolkit_version=__version__)
    if prepared.error is not None:
        return dataclasses.replace(record, status="error", error_code=prepared.error.code,
                                   error_message=prepared.error.message)
    if len(logits) == 0:
        return dataclasses.replace(record, status="no_face")
    calibrated = np.asarray(logits, np.float64) / contract.temperature
    probabilities = sigmoid(calibrated)
    file_logit = aggregate(calibrated, contract.aggregation)
    probability = float(sigmoid(file_logit))
    threshold_name, threshold = contract.decision_threshold()
    face_scores = [{"frame_index": face.frame_index, "face_index": face.face_index, "box": list(face.box),
                    "logit": float(value), "probability": float(p)}
                   for face, value, p in zip(prepared.faces, calibrated, probabilities)]
    top = sorted(face_scores, key=lambda s: s["logit"], reverse=True)[:TOP_FACES]
    return dataclasses.replace(
        record, probability=probability, logit=file_logit, decision=probability >= threshold,
        threshold_name=threshold_name, threshold=threshold,
        top_faces=[{k: s[k] for k in ("frame_index", "box", "probability")} for s in top],
        frame_scores=face_scores if details else None)


def _files_to_scan(files: list[Path], out: Path, resume: bool) -> Iterator[Path]:
    done = recorded_keys(out, RESUME_KEY) if resume else set()
    for path in files:
        try:
            key = file_key(path)
        except OSError:
            key = None
        if key not in done:
            yield path


def scan_paths(paths: Iterable[str | Path], model_path: str | Path, out: str | Path, device: str = "auto",
               batch_size: int = 32, detector: str | None = None, frames: int | None = None, resume: bool = False,
               details: bool = False, intra_op_threads: int | None = None, progress: bool = True) -> ScanSummary:
    """Scan images and videos (files or directories, recursively) into `out` (JSONL, one record per
    file). Without `resume` an existing `out` is refused rather than appended to or overwritten."""
    started = time.perf_counter()
    out = Path(out).absolute()
    if out.exists() and not resume:
        raise DfdetectError("bad_config", "the output file already exists", out,
                            "pass --resume to continue that scan, or choose another --out")
    files = discover_files(paths, exclude=[out])
    if not files:
        raise DfdetectError("empty_dataset", "no files to scan", None, "check the paths")
    model = OnnxModel(model_path, device=device, intra_op_threads=intra_op_threads)
    contract = model.contract
    aggregate([0.0], contract.aggregation)  # a bad rule in the contract fails here, not on the first face
    frames_per_video = contract.frames_per_video if frames is None else frames
    if frames_per_video < 1:
        raise DfdetectError("bad_config", f"frames per video must be >= 1, got {frames_per_video}", None,
                            "use e.g. --frames 32")
    prepare = FilePreparer(contract, create_detector(detector or contract.detector), frames_per_video)
    to_scan = list(_files_to_scan(files, out, resume))
    counts = {"ok": 0, "no_face": 0, "error": 0, "flagged": 0}

    with JsonlWriter(out) as writer, tqdm(total=len(to_scan), unit="file", disable=not progress,
                                          desc="scan") as bar:
        def emit(prepared: PreparedFile, logits: np.ndarray) -> None:
            record = build_record(prepared, logits, model, details)
            writer.write(dataclasses.asdict(record))
            counts[record.status] += 1
            counts["flagged"] += bool(record.decision)
            bar.update(1)

        queue = ScoringQueue(model, batch_size, emit)
        for path in to_scan:
            queue.add(prepare(path))
        queue.flush()
    seconds = time.perf_counter() - started
    return ScanSummary(out=str(out), files=len(files), skipped=len(files) - len(to_scan), seconds=seconds,
                       providers=model.providers, **counts)
