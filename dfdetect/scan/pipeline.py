"""The scanner: inputs → decode ▶ detect ▶ crop ▶ infer ▶ aggregate → one record per file.

Decoding runs in worker processes (`decode.DecodePool`) that stream sampled frames through bounded
pipes. This process batches detection over frames of many files (`DetectionBatcher`), cuts the crops,
and `ScoringQueue` scores crops in fixed-size batches that mix files, emitting each file's record once
its last crop is scored. Records are appended to a JSONL file as they finish, so a crash loses at most
the files in flight and `--resume` re-runs exactly those.
"""

from __future__ import annotations

import dataclasses
import platform
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.special import expit
from tqdm import tqdm

from dfdetect import __version__
from dfdetect.contract import Preprocessing
from dfdetect.errors import DfdetectError
from dfdetect.faces import FaceDetector, create_detector, crop_face
from dfdetect.media.io import DEFAULT_MAX_PIXELS, Frame
from dfdetect.records import ScanRecord, file_sha256
from dfdetect.scan.aggregate import aggregate
from dfdetect.scan.decode import DecodePool, DecodeSettings, FileDecoded, FrameChunk, worker_count
from dfdetect.scan.inputs import expand_inputs
from dfdetect.scan.session import OnnxModel
from dfdetect.scan.writers import (
    HASH_RESUME_KEY,
    RESUME_KEY,
    JsonlWriter,
    journal_path,
    output_format,
    read_jsonl,
    recorded_keys,
    write_json_atomic,
    write_table,
)

TOP_FACES = 5
GPU_BATCH_SIZE, CPU_BATCH_SIZE = 32, 8
DETECT_BATCH = 8  # frames per detector call: BlazeFace on LiteRT (CPU) gains nothing from more
ENGINES = ("local", "ray")
MANIFEST_SCHEMA = "dfdetect.scan-manifest/v1"


@dataclass
class FileTask:
    """A file to scan with the identity `--resume` compares: (path, size, mtime), or sha256 with --hash."""

    path: str
    size: int
    mtime: float
    sha256: str = ""


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
    sha256: str = ""
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
    faces: int = 0  # face crops scored
    manifest: str = ""

    @property
    def scanned(self) -> int:
        return self.ok + self.no_face + self.error

    @property
    def files_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0


def file_key(path: Path) -> tuple[str, int, float]:
    """(path, size, mtime): the identity --resume compares, so a file changed since is scanned again."""
    info = path.stat()
    return str(path), info.st_size, info.st_mtime


def make_task(path: Path, with_hash: bool) -> FileTask:
    """The task for a path; a missing or unreadable file still gets one (its record will say why)."""
    try:
        key = file_key(path)
        regular = stat.S_ISREG(path.stat().st_mode)  # reading a FIFO to hash it would block forever
        return FileTask(*key, sha256=file_sha256(path) if with_hash and regular else "")
    except OSError:
        return FileTask(str(path), 0, 0.0)


@dataclass
class _Collecting:
    """A file whose frames are still arriving or waiting for the detector."""

    prepared: PreparedFile
    crops: list[np.ndarray] = field(default_factory=list)
    waiting_frames: int = 0
    decoded: bool = False


class DetectionBatcher:
    """Runs the face detector on batches of `batch_frames` frames gathered across files, cuts each
    face's crop as the contract says, and hands a file to `finished` once it is decoded and all its
    frames are through the detector. Frames are dropped as soon as they are cropped."""

    def __init__(self, detector: FaceDetector, preprocessing: Preprocessing, batch_frames: int,
                 finished: Callable[[PreparedFile], None]):
        if batch_frames < 1:
            raise DfdetectError("bad_config", f"detection batch must be >= 1, got {batch_frames}", None,
                                "use e.g. 32")
        self.detector = detector
        self.preprocessing = preprocessing
        self.batch_frames = batch_frames
        self.finished = finished
        self._files: dict[int, _Collecting] = {}
        self._frames: list[tuple[int, Frame]] = []

    def add_frames(self, task_id: int, task: FileTask, media_type: str, frames: list[Frame]) -> None:
        state = self._state(task_id, task)
        state.prepared.media_type = media_type
        state.waiting_frames += len(frames)
        self._frames.extend((task_id, frame) for frame in frames)
        if len(self._frames) >= self.batch_frames:
            self._detect()

    def file_decoded(self, task_id: int, task: FileTask, event: FileDecoded) -> None:
        state = self._state(task_id, task)
        prepared = state.prepared
        prepared.media_type = event.media_type or prepared.media_type
        prepared.frames_decoded = event.frames_decoded
        prepared.timings["decode"] = prepared.timings.get("decode", 0.0) + event.decode_seconds
        if event.error_code:
            prepared.error = DfdetectError(event.error_code, event.error_message, prepared.path)
            self._frames = [(i, frame) for i, frame in self._frames if i != task_id]  # no use scoring them
            state.waiting_frames = 0
        state.decoded = True
        self._finish_ready()

    def flush(self) -> None:
        while self._frames:
            self._detect()

    def _state(self, task_id: int, task: FileTask) -> _Collecting:
        if task_id not in self._files:
            self._files[task_id] = _Collecting(PreparedFile(task.path, task.size, task.mtime, sha256=task.sha256))
        return self._files[task_id]

    def _detect(self) -> None:
        batch, self._frames = self._frames[: self.batch_frames], self._frames[self.batch_frames :]
        started = time.perf_counter()
        prep = self.preprocessing
        for (task_id, frame), faces in zip(batch, self.detector.detect([frame.image for _, frame in batch])):
            state = self._files[task_id]
            for rank, face in enumerate(faces):
                state.crops.append(crop_face(frame.image, face, size=prep.input_size, margin=prep.crop_margin,
                                             align=prep.alignment == "eyes")[0])
                state.prepared.faces.append(ScoredFace(frame.index, rank, tuple(round(float(v), 1) for v in face.box)))
            state.waiting_frames -= 1
        share = (time.perf_counter() - started) / max(1, len(batch))  # each file pays for its frames
        for task_id, _ in batch:
            timings = self._files[task_id].prepared.timings
            timings["detect"] = timings.get("detect", 0.0) + share
        self._finish_ready()

    def _finish_ready(self) -> None:
        for task_id in [i for i, s in self._files.items() if s.decoded and s.waiting_frames == 0]:
            state = self._files.pop(task_id)
            prepared = state.prepared
            if prepared.error is not None:
                prepared.faces = []
            elif state.crops:
                prepared.crops = np.stack(state.crops)
            prepared.timings.setdefault("detect", 0.0)
            self.finished(prepared)


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
            job.prepared.crops = None  # the record keeps boxes and scores, not pixels
            self.emit(job.prepared, job.logits)


def build_record(prepared: PreparedFile, logits: np.ndarray, model: OnnxModel, details: bool = False) -> ScanRecord:
    """The file's result: raw face logits are calibrated (temperature, bias), aggregated by the contract's rule,
    and thresholded at the contract's default threshold."""
    contract = model.contract
    record = ScanRecord(path=prepared.path, size=prepared.size, mtime=prepared.mtime, media_type=prepared.media_type,
                        status="ok", frames_decoded=prepared.frames_decoded, faces_scored=len(logits),
                        timings={k: round(v, 6) for k, v in prepared.timings.items()},
                        model_sha256=model.sha256, toolkit_version=__version__, sha256=prepared.sha256)
    if prepared.error is not None:
        return dataclasses.replace(record, status="error", error_code=prepared.error.code,
                                   error_message=prepared.error.message, faces_scored=0)
    if len(logits) == 0:
        return dataclasses.replace(record, status="no_face")
    calibrated = contract.scaling().calibrated(logits)
    probabilities = expit(calibrated)
    file_logit = aggregate(calibrated, contract.aggregation)
    probability = float(expit(file_logit))
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


def scan_tasks(tasks: Iterable[FileTask], model: OnnxModel, detector: FaceDetector, settings: DecodeSettings,
               workers: int = 0, batch_size: int = CPU_BATCH_SIZE, detect_batch: int = DETECT_BATCH,
               details: bool = False, warm_up: bool = False) -> Iterator[ScanRecord]:
    """Records for `tasks`, each as soon as its last crop is scored (completion order, not input
    order). The stages run one after another in this process; only decoding is parallel, in
    `workers` processes (0: decode here too). `warm_up` runs one full inference batch first (see
    OnnxModel.warm_up)."""
    tasks = list(tasks)
    ready: deque[ScanRecord] = deque()
    scoring = ScoringQueue(model, batch_size, lambda prepared, logits: ready.append(
        build_record(prepared, logits, model, details)))
    batcher = DetectionBatcher(detector, model.contract.preprocessing, detect_batch, finished=scoring.add)
    with DecodePool(settings, workers) as pool:
        if warm_up:
            model.warm_up(batch_size)  # while the decode workers start
        for task_id, event in pool.run((i, task.path) for i, task in enumerate(tasks)):
            if isinstance(event, FrameChunk):
                batcher.add_frames(task_id, tasks[task_id], event.media_type, event.frames)
            else:
                batcher.file_decoded(task_id, tasks[task_id], event)
            while ready:
                yield ready.popleft()
    batcher.flush()
    scoring.flush()
    yield from ready


@dataclass
class _Output:
    """The files of one scan: results, the journal records are appended to, the run manifest."""

    out: Path
    format: str
    journal: Path
    manifest: Path

    @classmethod
    def for_path(cls, out: str | Path) -> _Output:
        out = Path(out).absolute()
        return cls(out, output_format(out), journal_path(out), out.with_name(out.name + ".manifest.json"))

    def check(self, resume: bool) -> None:
        if not resume and (self.out.exists() or self.journal.exists()):
            raise DfdetectError("bad_config", "the output file already exists", self.out,
                                "pass --resume to continue that scan, or choose another --out")
        if resume and self.out.exists() and not self.journal.exists():
            raise DfdetectError("bad_config", f"cannot resume: its journal {self.journal.name} is gone", self.out,
                                "resume needs the journal written beside a .csv/.parquet output; start a new --out")

    def finish(self) -> None:
        """Rewrite a CSV/Parquet output from the whole journal (JSONL needs nothing)."""
        if self.format != "jsonl":
            write_table(read_jsonl(self.journal), self.out)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pending_tasks(files: list[Path], output: _Output, resume: bool, with_hash: bool,
                   progress: bool) -> list[FileTask]:
    """Tasks for the files not yet in the journal (all of them without --resume)."""
    key_fields = HASH_RESUME_KEY if with_hash else RESUME_KEY
    done = recorded_keys(output.journal, key_fields) if resume else set()
    tasks = []
    for path in tqdm(files, desc="hash" if with_hash else "stat", unit="file", disable=not progress or not with_hash):
        task = make_task(path, with_hash)
        key = (task.sha256,) if with_hash else (task.path, task.size, task.mtime)
        if key not in done or (with_hash and not task.sha256):  # unreadable now: no hash to match, try again
            tasks.append(task)
    return tasks


def default_batch_size(on_gpu: bool) -> int:
    """Crops per inference batch when none is given. A GPU wants large batches; on a CPU large ones
    are slower per crop once activations outgrow the caches (EfficientNet-B0 at 224 px on 2 cores:
    124 crops/s at batch 8, 82 at batch 1, 57 at batch 32)."""
    return GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE


def scan_paths(paths: Iterable[str | Path], model_path: str | Path, out: str | Path, device: str = "auto",
               batch_size: int | None = None, detector: str | None = None, frames: int | None = None,
               resume: bool = False, details: bool = False, intra_op_threads: int | None = None,
               progress: bool = True, *, workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
               timeout: float | None = 600.0, hash_files: bool = False, engine: str = "local",
               fp16: bool | None = None, detect_batch: int = DETECT_BATCH,
               ray_address: str | None = None, ray_actors: int = 1, ray_actor_cpus: float = 1.0,
               ray_actor_gpus: float = 0.0) -> ScanSummary:
    """Scan images and videos (files, directories, globs, .txt/.csv manifests) into `out` (.jsonl,
    .csv or .parquet; one record per file) and write `<out>.manifest.json`. Without `resume` an
    existing `out` is refused rather than appended to or overwritten."""
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()}
    arguments["paths"] = [str(p) for p in paths]
    started_at, started = _now(), time.perf_counter()
    if engine not in ENGINES:
        raise DfdetectError("bad_config", f"unknown engine {engine!r}", None, f"choose one of {list(ENGINES)}")
    output = _Output.for_path(out)
    output.check(resume)
    files = expand_inputs(arguments["paths"], exclude=[output.out, output.journal, output.manifest])
    if not files:
        raise DfdetectError("empty_dataset", "no files to scan", None, "check the paths")
    model = OnnxModel(model_path, device=device if engine == "local" else "cpu", intra_op_threads=intra_op_threads,
                      fp16=fp16 if engine == "local" else False)
    contract = model.contract
    aggregate([0.0], contract.aggregation)  # a bad rule in the contract fails here, not on the first face
    frames_per_video = contract.frames_per_video if frames is None else frames
    if frames_per_video < 1:
        raise DfdetectError("bad_config", f"frames per video must be >= 1, got {frames_per_video}", None,
                            "use e.g. --frames 32")
    if max_pixels < 1:
        raise DfdetectError("bad_config", f"max pixels must be >= 1, got {max_pixels}", None, "use e.g. 50000000")
    settings = DecodeSettings(frames_per_video=frames_per_video, max_pixels=max_pixels, timeout_s=timeout)
    if batch_size is None:
        batch_size = default_batch_size(model.on_gpu if engine == "local" else ray_actor_gpus > 0)
    arguments["batch_size"] = batch_size
    detector_name = detector or contract.detector
    tasks = _pending_tasks(files, output, resume, hash_files, progress)

    manifest = {"schema": MANIFEST_SCHEMA, "status": "running", "arguments": arguments, "engine": engine,
                "command": sys.argv, "host": platform.node(), "toolkit_version": __version__,
                "model": {"path": str(model.path), "sha256": model.sha256, "providers": model.providers,
                          "contract": dataclasses.asdict(contract)},
                "output": {"path": str(output.out), "format": output.format, "journal": str(output.journal)},
                "started_at": started_at}
    write_json_atomic(manifest, output.manifest)  # a crash leaves status "running": the scan did not finish

    if engine == "ray":
        from dfdetect.scan.ray_engine import ray_records

        records = ray_records(tasks, model.path, settings, detector_name, batch_size=batch_size,
                              detect_batch=detect_batch, details=details, address=ray_address, actors=ray_actors,
                              actor_cpus=ray_actor_cpus, actor_gpus=ray_actor_gpus, device=device, fp16=fp16)
        providers = [f"ray ({ray_actors} actors)"]
    else:
        records = (dataclasses.asdict(r) for r in scan_tasks(
            tasks, model, create_detector(detector_name), settings, worker_count(workers), batch_size, detect_batch,
            details, warm_up=True))
        providers = model.providers
    counts = {"ok": 0, "no_face": 0, "error": 0, "flagged": 0}
    faces = 0
    with JsonlWriter(output.journal) as writer, tqdm(total=len(tasks), unit="file", disable=not progress,
                                                     desc="scan", smoothing=0.1) as bar:
        for record in records:
            writer.write(record)
            counts[record["status"]] += 1
            counts["flagged"] += bool(record["decision"])
            faces += record["faces_scored"]
            bar.update(1)
            bar.set_postfix(faces_per_s=f"{faces / max(time.perf_counter() - started, 1e-9):.1f}",
                            errors=counts["error"], refresh=False)
    output.finish()
    seconds = time.perf_counter() - started
    summary = ScanSummary(out=str(output.out), files=len(files), skipped=len(files) - len(tasks), seconds=seconds,
                          providers=providers, faces=faces, manifest=str(output.manifest), **counts)
    manifest.update(status="finished", finished_at=_now(), seconds=round(seconds, 3),
                    counts={"inputs": len(files), "skipped": summary.skipped, "scanned": summary.scanned,
                            "faces": faces, **counts},
                    throughput={"files_per_second": round(summary.files_per_second, 4),
                                "faces_per_second": round(faces / seconds, 4) if seconds > 0 else 0.0})
    write_json_atomic(manifest, output.manifest)
    return summary
