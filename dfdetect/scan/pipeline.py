"""The scanner: inputs → decode ▶ detect ▶ crop ▶ infer ▶ aggregate → one record per file.

Decoding runs in worker processes (`decode.DecodePool`) that stream sampled frames through bounded
pipes. This process batches detection over frames of many files (`DetectionBatcher`), cuts the crops,
and `ScoringQueue` scores crops in fixed-size batches that mix files, emitting each file's record once
its last crop is scored. Records are appended to a JSONL file as they finish, so a crash loses at most
the files in flight and `--resume` re-runs exactly those.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
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
from dfdetect.errors import DfdetectError
from dfdetect.faces import DETECTORS, Face, FaceDetector, create_detector
from dfdetect.faces.rotation import detect_any_orientation, turned
from dfdetect.faces.tracking import faces_between, faces_linked, main_track_mask
from dfdetect.media.io import DEFAULT_MAX_PIXELS, Frame
from dfdetect.model.aggregate import aggregate
from dfdetect.model.contract import DecisionRule, Preprocessing
from dfdetect.model.session import OnnxModel
from dfdetect.records import ScanRecord, file_sha256, path_bytes_hex, utf8_text
from dfdetect.results import (
    HASH_RESUME_KEY,
    RESUME_KEY,
    JsonlWriter,
    OutputLock,
    journal_path,
    output_format,
    read_jsonl,
    recorded_keys,
    write_json_atomic,
    write_table,
)
from dfdetect.scan.decode import DecodePool, DecodeSettings, FileDecoded, FrameChunk, worker_count
from dfdetect.scan.evidence import explain_top_faces, with_provenance
from dfdetect.scan.inputs import expand_inputs
from dfdetect.scan.ray_engine import ray_records

TOP_FACES = 5
GPU_BATCH_SIZE, CPU_BATCH_SIZE = 32, 8
DETECT_BATCH = 8  # frames per detector call: BlazeFace on LiteRT (CPU) gains nothing from more
DETECT_EVERY = 1  # sampled frames per detector call within a video (see DetectionBatcher)
ENGINES = ("local", "ray")
MANIFEST_SCHEMA = "dfdetect.scan-manifest/v1"


@dataclass
class FileTask:
    """A file to scan with the identity `--resume` compares: (path, size, mtime), or (path, sha256) with --hash."""

    path: str
    size: int
    mtime: float
    sha256: str = ""


@dataclass
class ScoredFace:
    frame_index: int
    face_index: int  # rank within its frame, largest first
    box: tuple[float, float, float, float]  # in the frame turned by `rotation`
    rotation: int = 0  # degrees counter-clockwise the frame was turned for the detector to find the face


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
    review: int = 0  # ok files between the clear and flag thresholds, left for a person to decide
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
    received: int = 0  # frames so far; every detect_every-th goes to the detector, the first always
    skipped: list[Frame] = field(default_factory=list)  # frames since the last one sent to the detector
    detected: tuple[int, list[Face]] = (0, [])  # the last detected frame: its index and faces


class DetectionBatcher:
    """Runs the face detector on batches of `batch_frames` frames gathered across files, cuts each
    face's crop as the contract says, and hands a file to `finished` once it is decoded and all its
    frames are through the detector. Frames are dropped as soon as they are cropped.

    With `detect_every` K > 1 the detector sees a file's first frame, every K-th and its last; the
    frames between two detected ones wait for the second and take the faces the tracker carries
    between them (`faces_between`), which saves K - 1 of every K detector calls; when the tracker
    cannot link every face of the two (`faces_linked`: one appeared or left, or moved too far), the
    frames between go through the detector too. A video keeps only
    its main track's faces (`main_track_mask`) unless `all_faces`: the person the clip is about, not
    whoever comes nearest the camera; an image keeps every face (each may be the fake one)."""

    def __init__(self, detector: FaceDetector, preprocessing: Preprocessing, batch_frames: int,
                 finished: Callable[[PreparedFile], None], detect_every: int = 1, all_faces: bool = False):
        if batch_frames < 1:
            raise DfdetectError("bad_config", f"detection batch must be >= 1, got {batch_frames}", None,
                                "use e.g. 32")
        if detect_every < 1:
            raise DfdetectError("bad_config", f"--detect-every must be >= 1, got {detect_every}", None,
                                "use 1 to detect on every sampled frame")
        self.detector = detector
        self.preprocessing = preprocessing
        self.batch_frames = batch_frames
        self.detect_every = detect_every
        self.all_faces = all_faces
        self.finished = finished
        self._files: dict[int, _Collecting] = {}
        self._frames: list[tuple[int, Frame, list[Frame]]] = []  # task, frame to detect, frames skipped before it

    def add_frames(self, task_id: int, task: FileTask, media_type: str, frames: list[Frame]) -> None:
        state = self._state(task_id, task)
        state.prepared.media_type = media_type
        state.waiting_frames += len(frames)
        for frame in frames:
            if state.received % self.detect_every == 0:
                self._frames.append((task_id, frame, state.skipped))
                state.skipped = []
            else:
                state.skipped.append(frame)
            state.received += 1
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
            self._frames = [queued for queued in self._frames if queued[0] != task_id]  # no use scoring them
            state.waiting_frames, state.skipped = 0, []
        elif state.skipped:  # the last frame is detected too, so no frame is carried past the last detection
            self._frames.append((task_id, state.skipped[-1], state.skipped[:-1]))
            state.skipped = []
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
        detections = detect_any_orientation(self.detector, [queued[1].image for queued in batch])
        for (task_id, frame, skipped), faces, quarter_turns in zip(batch, *detections):
            state = self._files[task_id]
            last_index, last_faces = state.detected
            if faces_linked(last_faces, faces):  # the skipped frames lie between the last detected frame and this
                for between in skipped:
                    fraction = (between.index - last_index) / max(1, frame.index - last_index)
                    self._crop(state, between, faces_between(last_faces, faces, fraction), quarter_turns)
                state.waiting_frames -= len(skipped)
            else:  # a face appeared, left or moved too far to follow (a fast move, a cut): detect them after all
                self._frames.extend((task_id, between, []) for between in skipped)
            self._crop(state, frame, faces, quarter_turns)
            if frame.index >= last_index:  # frames detected after all come later and carry nothing
                state.detected = (frame.index, faces)
            state.waiting_frames -= 1
        share = (time.perf_counter() - started) / max(1, len(batch))  # each file pays for its frames
        for task_id, _, _ in batch:
            timings = self._files[task_id].prepared.timings
            timings["detect"] = timings.get("detect", 0.0) + share
        self._finish_ready()

    def _crop(self, state: _Collecting, frame: Frame, faces: list[Face], quarter_turns: int = 0) -> None:
        prep = self.preprocessing
        image = turned(frame.image, quarter_turns) if faces else frame.image
        for rank, face in enumerate(faces):
            state.crops.append(prep.crop(image, face)[0])
            state.prepared.faces.append(ScoredFace(frame.index, rank, tuple(round(float(v), 1) for v in face.box),
                                                   rotation=90 * quarter_turns))

    def _finish_ready(self) -> None:
        for task_id in [i for i, s in self._files.items() if s.decoded and s.waiting_frames == 0]:
            state = self._files.pop(task_id)
            prepared = state.prepared
            if prepared.error is not None:
                prepared.faces = []
            elif state.crops:  # frames between detections were cropped after the next one: back in frame order
                order = sorted(range(len(state.crops)),
                               key=lambda i: (prepared.faces[i].frame_index, prepared.faces[i].face_index))
                if prepared.media_type == "video" and not self.all_faces:
                    order = _main_track(order, prepared.faces)
                prepared.faces = [prepared.faces[i] for i in order]
                prepared.crops = np.stack([state.crops[i] for i in order])
            prepared.timings.setdefault("detect", 0.0)
            self.finished(prepared)


def _main_track(order: list[int], faces: list[ScoredFace]) -> list[int]:
    """The indices in `order` (faces in frame order) that belong to the video's main track."""
    frames = [list(group) for _, group in itertools.groupby(order, key=lambda i: faces[i].frame_index)]
    mask = main_track_mask([[Face(box=faces[i].box, score=1.0) for i in frame] for frame in frames])
    return [i for frame, keep in zip(frames, mask) for i, kept in zip(frame, keep) if kept]


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
            self.emit(job.prepared, job.logits)  # `emit` may still draw heatmaps from the crops
            job.prepared.crops = None  # the record keeps boxes and scores, not pixels


def build_record(prepared: PreparedFile, logits: np.ndarray, model: OnnxModel, details: bool = False,
                 rule: DecisionRule | None = None) -> ScanRecord:
    """The file's result: raw face logits are calibrated (temperature, bias), aggregated by the contract's rule,
    and decided by `rule` (default: the contract's thresholds)."""
    contract = model.contract
    rule = rule or contract.decision_rule()
    record = ScanRecord(path=utf8_text(prepared.path), size=prepared.size, mtime=prepared.mtime,
                        media_type=prepared.media_type, status="ok", frames_decoded=prepared.frames_decoded,
                        faces_scored=len(logits), timings={k: round(v, 6) for k, v in prepared.timings.items()},
                        model_sha256=model.sha256, toolkit_version=__version__, sha256=prepared.sha256,
                        path_bytes=path_bytes_hex(prepared.path))
    if prepared.error is not None:
        return dataclasses.replace(record, status="error", error_code=prepared.error.code,
                                   error_message=utf8_text(prepared.error.message), faces_scored=0)
    if len(logits) == 0:
        return dataclasses.replace(record, status="no_face")
    calibrated = contract.scaling().calibrated(logits)
    probabilities = expit(calibrated)
    file_logit = aggregate(calibrated, contract.aggregation)
    probability = float(expit(file_logit))
    face_scores = [{"frame_index": face.frame_index, "face_index": face.face_index, "box": list(face.box),
                    "rotation": face.rotation, "logit": float(value), "probability": float(p)}
                   for face, value, p in zip(prepared.faces, calibrated, probabilities)]
    top = sorted(face_scores, key=lambda s: s["logit"], reverse=True)[:TOP_FACES]
    return dataclasses.replace(
        record, probability=probability, logit=file_logit, decision=probability >= rule.flag,
        threshold_name=rule.flag_name, threshold=rule.flag, clear_threshold_name=rule.clear_name,
        clear_threshold=rule.clear, triage=rule.triage(probability),
        top_faces=[{k: s[k] for k in ("frame_index", "box", "rotation", "probability")} for s in top],
        frame_scores=face_scores if details else None)


def scan_tasks(tasks: Iterable[FileTask], model: OnnxModel, detector: FaceDetector, settings: DecodeSettings,
               workers: int = 0, batch_size: int = CPU_BATCH_SIZE, detect_batch: int = DETECT_BATCH,
               details: bool = False, warm_up: bool = False, rule: DecisionRule | None = None,
               detect_every: int = DETECT_EVERY, provenance: bool = True,
               explain_dir: Path | None = None, all_faces: bool = False) -> Iterator[ScanRecord]:
    """Records for `tasks`, each as soon as its last crop is scored (completion order, not input
    order). The stages run one after another in this process; only decoding is parallel, in
    `workers` processes (0: decode here too). `warm_up` runs one full inference batch first (see
    OnnxModel.warm_up). `rule` decides each file (default: the contract's thresholds). `detect_every`:
    see DetectionBatcher. `provenance` adds the file's C2PA / watermark evidence, `explain_dir` a heatmap
    PNG there per top face (scan.evidence). `all_faces` scores every face of a video, not only its
    main track's (see DetectionBatcher)."""
    tasks = list(tasks)
    ready: deque[ScanRecord] = deque()

    def finished(prepared: PreparedFile, logits: np.ndarray) -> None:
        record = build_record(prepared, logits, model, details, rule)
        if provenance:
            record = with_provenance(record, prepared.path)
        if explain_dir is not None and prepared.crops is not None and record.top_faces:
            record = explain_top_faces(record, prepared.crops, logits, model.logits, model.contract.preprocessing,
                                       explain_dir)
        ready.append(record)

    scoring = ScoringQueue(model, batch_size, finished)
    batcher = DetectionBatcher(detector, model.contract.preprocessing, detect_batch, finished=scoring.add,
                               detect_every=detect_every, all_faces=all_faces)
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
    lock: Path

    @classmethod
    def for_path(cls, out: str | Path) -> _Output:
        out = Path(out).absolute()
        if out.is_dir():
            raise DfdetectError("bad_config", "--out is a folder", out, "name a results file, e.g. --out "
                                f"{out / 'results.jsonl'}")
        return cls(out, output_format(out), journal_path(out), out.with_name(out.name + ".manifest.json"),
                   out.with_name(out.name + ".lock"))

    def create_folder(self) -> None:
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DfdetectError("bad_config", f"cannot create the output folder ({exc.strerror})", self.out.parent,
                                "choose an --out in a folder you can write") from exc

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
        if tuple(getattr(task, f) for f in key_fields) not in done:
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
               precision: str = "auto", detect_batch: int = DETECT_BATCH,
               ray_address: str | None = None, ray_actors: int = 1, ray_actor_cpus: float = 1.0,
               ray_actor_gpus: float = 0.0, flag: str | None = None, clear: str | None = None,
               detect_every: int = DETECT_EVERY, provenance: bool = True, explain: bool = False,
               all_faces: bool = False) -> ScanSummary:
    """Scan images and videos (files, directories, globs, .txt/.csv manifests) into `out` (.jsonl,
    .csv or .parquet; one record per file) and write `<out>.manifest.json`. `flag` and `clear` name
    the contract thresholds of the three-way decision (contract.DecisionRule; default: the contract's).
    `provenance` records each file's C2PA / watermark evidence; `explain` writes an occlusion heatmap PNG
    per top face into `<out>.explain/` (one inference per window: about 200 per face at 128 px).
    Without `resume` an existing `out` is refused rather than appended to or overwritten. Every
    argument is checked before anything is written, and `out` is locked for the whole scan: a second
    scan of the same `out` is refused in one line that names the process holding it."""
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()}
    arguments["paths"] = [str(p) for p in paths]
    started_at, started = _now(), time.perf_counter()
    check_scan_arguments(engine=engine, batch_size=batch_size, detect_batch=detect_batch, workers=workers,
                         timeout=timeout, max_pixels=max_pixels, frames=frames, detector=detector,
                         detect_every=detect_every)
    output = _Output.for_path(out)
    files = expand_inputs(arguments["paths"], exclude=[output.out, output.journal, output.manifest, output.lock])
    if not files:
        raise DfdetectError("empty_dataset", "no files to scan", None, "check the paths")
    model = OnnxModel(model_path, device=device if engine == "local" else "cpu", intra_op_threads=intra_op_threads,
                      precision=precision if engine == "local" else "fp32")
    contract = model.contract
    rule = contract.decision_rule(flag, clear)
    aggregate([0.0], contract.aggregation)  # a bad rule in the contract fails here, not on the first face
    frames_per_video = contract.frames_per_video if frames is None else frames
    detector_name = detector or contract.detector
    check_scan_arguments(frames=frames_per_video, detector=detector_name)  # the contract's own values
    settings = DecodeSettings(frames_per_video=frames_per_video, max_pixels=max_pixels, timeout_s=timeout)
    if batch_size is None:
        batch_size = default_batch_size(model.on_gpu if engine == "local" else ray_actor_gpus > 0)
    arguments["batch_size"] = batch_size
    output.create_folder()
    explain_dir = output.out.with_name(output.out.name + ".explain") if explain else None
    with OutputLock(output.lock, holder=f"pid {os.getpid()} on {platform.node()}, started {started_at}: "
                                        f"{' '.join(sys.argv)}"):
        output.check(resume)
        tasks = _pending_tasks(files, output, resume, hash_files, progress)

        manifest = {"schema": MANIFEST_SCHEMA, "status": "running", "arguments": arguments, "engine": engine,
                    "command": sys.argv, "host": platform.node(), "toolkit_version": __version__,
                    "model": {"path": str(model.path), "sha256": model.sha256, "providers": model.providers,
                              "precision": model.precision if engine == "local" else precision,
                              "contract": dataclasses.asdict(contract)},
                    "decisions": dataclasses.asdict(rule),
                    "output": {"path": str(output.out), "format": output.format, "journal": str(output.journal)},
                    "started_at": started_at}
        write_json_atomic(manifest, output.manifest)  # a crash leaves status "running": the scan did not finish

        if engine == "ray":
            scan = functools.partial(scan_tasks, settings=settings, workers=0, batch_size=batch_size,
                                     detect_batch=detect_batch, details=details, rule=rule, detect_every=detect_every,
                                     provenance=provenance, explain_dir=explain_dir, all_faces=all_faces)
            records = ray_records(tasks, model.path, scan, detector_name, batch_size=batch_size, address=ray_address,
                                  actors=ray_actors, actor_cpus=ray_actor_cpus, actor_gpus=ray_actor_gpus,
                                  device=device, precision=precision)
            providers = [f"ray ({ray_actors} actors)"]
        else:
            records = (dataclasses.asdict(r) for r in scan_tasks(
                tasks, model, create_detector(detector_name), settings, worker_count(workers), batch_size, detect_batch,
                details, warm_up=True, rule=rule, detect_every=detect_every, provenance=provenance,
                explain_dir=explain_dir, all_faces=all_faces))
            providers = model.providers
        counts = {"ok": 0, "no_face": 0, "error": 0, "flagged": 0, "review": 0}
        faces = 0
        with JsonlWriter(output.journal) as writer, tqdm(total=len(tasks), unit="file", disable=not progress,
                                                         desc="scan", smoothing=0.1) as bar:
            for record in records:
                writer.write(record)
                counts[record["status"]] += 1
                counts["flagged"] += bool(record["decision"])
                counts["review"] += record["triage"] == "review"
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


def check_scan_arguments(*, engine: str = "local", batch_size: int | None = None, detect_batch: int = DETECT_BATCH,
                         workers: int | None = None, timeout: float | None = None, max_pixels: int = 1,
                         frames: int | None = None, detector: str | None = None,
                         detect_every: int = DETECT_EVERY) -> None:
    """Refuse a bad option in one line before any output exists, so fixing it and running again is
    not refused as 'output already exists'."""
    def refuse(message: str, hint: str) -> None:
        raise DfdetectError("bad_config", message, None, hint)

    if engine not in ENGINES:
        refuse(f"unknown engine {engine!r}", f"choose one of {list(ENGINES)}")
    if batch_size is not None and batch_size < 1:
        refuse(f"--batch-size must be >= 1, got {batch_size}", "use e.g. --batch-size 8")
    if detect_batch < 1:
        refuse(f"--detect-batch must be >= 1, got {detect_batch}", f"use e.g. --detect-batch {DETECT_BATCH}")
    if detect_every < 1:
        refuse(f"--detect-every must be >= 1, got {detect_every}", "use 1 to detect on every sampled frame")
    if workers is not None and workers < 0:
        refuse(f"--workers must be >= 0, got {workers}", "use 0 to decode in the scanning process")
    if timeout is not None and not timeout > 0:
        refuse(f"--timeout must be > 0 seconds, got {timeout:g}", "use e.g. --timeout 600")
    if max_pixels < 1:
        refuse(f"--max-pixels must be >= 1, got {max_pixels}", "use e.g. --max-pixels 50000000")
    if frames is not None and frames < 1:
        refuse(f"frames per video must be >= 1, got {frames}", "use e.g. --frames 32")
    if detector is not None and detector not in DETECTORS:
        refuse(f"unknown face detector {detector!r}", f"choose one of {sorted(DETECTORS)}")
