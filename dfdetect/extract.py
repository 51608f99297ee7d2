"""index.parquet → face crops + crops.parquet + extract_summary.json (`dfdetect extract`).

Every source file is processed on its own and leaves a small parquet part under `parts/` that is
renamed into place only when all its crops are on disk. A killed run restarted with the same
arguments skips the sources that have a part and redoes the rest, so there are no duplicates and no
half-written files; the final crops.parquet is the concatenation of the parts in index order.

With `reuse_source_boxes`, a fake whose index row names its source video (present in the same
index) takes the source's faces at the same frame indices instead of running the detector: real and
fake crops then cover exactly the same pixels, so a classifier cannot learn the detector's reaction
to manipulation artefacts, and the fakes cost no detection. Sources therefore run first.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from dfdetect.errors import DfdetectError
from dfdetect.faces import DEFAULT_DETECTOR, DETECTORS, Face, create_detector
from dfdetect.faces.tracking import IouTracker, main_track_mask, track_ids
from dfdetect.media import Frame, iter_media_frames
from dfdetect.media.io import available_cores
from dfdetect.model.contract import DEFAULT_CROP_MARGIN
from dfdetect.model.crops import EXTRACT_OPTIONS_FILE, ExtractOptions
from dfdetect.records import CROP_COLUMNS, EXTRACT_SUMMARY_NAME, CropRow, file_sha256, read_index

DETECT_BATCH = 8  # frames per detector call: enough to amortise the call, small enough for memory


@dataclass
class SourceResult:
    """What one source file produced; the counts feed extract_summary.json."""

    path: str
    rows: list[CropRow] = field(default_factory=list)
    image_landmarks: list[list[float]] = field(default_factory=list)  # per row, source pixels, for fakes to reuse
    frame_indices: list[int] = field(default_factory=list)  # every frame looked at, faces or not
    frames: int = 0
    no_face_frames: int = 0
    reused_frames: int = 0  # frames whose faces came from the source video instead of the detector
    error_code: str = ""
    error_message: str = ""


def source_key(path: str) -> str:
    """A stable, filesystem-safe folder name for a source: readable stem plus a hash of the full path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)[:60]
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:10]}"


_detectors: dict[str, object] = {}


def _detector(name: str):
    if name not in _detectors:
        _detectors[name] = create_detector(name, num_threads=1)
    return _detectors[name]


def _batched(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_jpeg(path: Path, crop: np.ndarray, quality: int) -> None:
    tmp = path.with_name(path.name + ".tmp.jpg")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write {tmp}")
    tmp.replace(path)


def _detect_or_reuse(detector, batch: list[Frame], source_faces: dict[int, list[Face]] | None,
                     hint: tuple[float, float, float, float] | None, follow: bool) -> tuple[list[list[Face]], int]:
    """Faces for each frame of a batch: the source video's where it looked at that frame, the
    detector's for the rest (in one call; when `follow`ing one face through a video, told where it
    last was). Also returns how many frames were reused."""
    reused = {i: source_faces[frame.index] for i, frame in enumerate(batch)
              if source_faces is not None and frame.index in source_faces}
    to_detect = [i for i in range(len(batch)) if i not in reused]
    hints = [hint] * len(to_detect) if follow else None
    found = detector.detect([batch[i].image for i in to_detect], hints=hints) if to_detect else []
    detected = dict(zip(to_detect, found))
    return [reused[i] if i in reused else detected[i] for i in range(len(batch))], len(reused)


def extract_source(row: dict, crops_dir: Path, options: ExtractOptions,
                   source_faces: dict[int, list[Face]] | None = None) -> SourceResult:
    """Detect (or take from `source_faces`, frame index → faces), track and crop the faces of one
    image or video; errors become the result's error."""
    result = SourceResult(path=row["path"])
    key = source_key(row["path"])
    out_dir = crops_dir / "crops" / key
    detector = _detector(options.detector)
    preprocessing = options.preprocessing()
    tracker = IouTracker()
    last_box = None  # where the face was in the latest frame: a video's next frames are searched there first
    follow = row["media_type"] == "video" and not options.all_faces  # every face wanted: search every frame whole
    video_faces: list[list[tuple[int, Face, np.ndarray, np.ndarray | None]]] = []  # main-track candidates, cropped

    def write(frame_index: int, face_index: int, track: int, face: Face, crop: np.ndarray,
              points: np.ndarray | None) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"f{frame_index:06d}_t{track:02d}_n{face_index:02d}.jpg"
        _write_jpeg(out_dir / name, crop, options.jpeg_quality)
        result.rows.append(CropRow(
            crop_path=f"crops/{key}/{name}", source_path=row["path"], media_type=row["media_type"],
            frame_index=frame_index, face_index=face_index, track_id=track,
            x0=face.box[0], y0=face.box[1], x1=face.box[2], y1=face.box[3], score=float(face.score),
            label=int(row["label"]), split=row["split"], group=row["group"], dataset=row["dataset"],
            method=row.get("method", "") or "",
            landmarks=[] if points is None else [round(float(v), 2) for v in points.ravel()],
        ))
        result.image_landmarks.append([] if face.landmarks is None else [float(v) for v in np.ravel(face.landmarks)])

    try:
        frames = iter_media_frames(row["path"], row["media_type"], num_frames=options.frames, every=options.every)
        for batch in _batched(frames, DETECT_BATCH):
            detections, reused = _detect_or_reuse(detector, batch, source_faces, last_box, follow)
            result.reused_frames += reused
            for frame, faces in zip(batch, detections):
                frame_index, image = frame.index, frame.image
                result.frames += 1
                result.frame_indices.append(frame_index)
                if not faces:
                    result.no_face_frames += 1
                    continue
                last_box = faces[0].box
                if follow:  # a video keeps its main track, chosen once every frame is seen
                    video_faces.append([(frame_index, face, *preprocessing.crop(image, face)) for face in faces])
                    continue
                for face_index, (face, track) in enumerate(zip(faces, tracker.assign(faces))):
                    write(frame_index, face_index, track, face, *preprocessing.crop(image, face))
        faces_of = [[face for _, face, _, _ in frame] for frame in video_faces]
        for frame, keep, ids in zip(video_faces, main_track_mask(faces_of), track_ids(faces_of)):
            for face_index, ((frame_index, face, crop, points), kept, track) in enumerate(zip(frame, keep, ids)):
                if kept:
                    write(frame_index, face_index, track, face, crop, points)
    except DfdetectError as exc:
        result.error_code, result.error_message = exc.code, exc.message
    except Exception as exc:  # one bad file must never stop a batch of a million
        result.error_code, result.error_message = "internal", f"{exc.__class__.__name__}: {exc}"
    return result


def _part_path(crops_dir: Path, path: str) -> Path:
    return crops_dir / "parts" / f"{source_key(path)}.parquet"


def _save_part(crops_dir: Path, result: SourceResult) -> None:
    """Persist a source's rows and counts atomically; its existence marks the source as done."""
    frame = pd.DataFrame([dataclasses.asdict(r) for r in result.rows], columns=CROP_COLUMNS)
    meta = {"frames": result.frames, "no_face_frames": result.no_face_frames, "reused_frames": result.reused_frames,
            "frame_indices": result.frame_indices, "image_landmarks": result.image_landmarks,
            "error_code": result.error_code, "error_message": result.error_message}
    part = _part_path(crops_dir, result.path)
    tmp = part.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    table = pq.read_table(tmp)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"dfdetect.extract": json.dumps(meta)})
    pq.write_table(table, tmp)
    tmp.replace(part)


def _load_part(part: Path) -> tuple[pd.DataFrame, dict]:
    table = pq.read_table(part)
    return table.to_pandas(), json.loads(table.schema.metadata[b"dfdetect.extract"])


def load_source_faces(crops_dir: Path, source_path: str) -> dict[int, list[Face]] | None:
    """The faces a finished source left in its part, by frame index (an empty list where it found
    none); None when the source failed, so its fakes fall back to detection."""
    part, meta = _load_part(_part_path(crops_dir, source_path))
    if meta["error_code"]:
        return None
    faces: dict[int, list[Face]] = {index: [] for index in meta["frame_indices"]}
    part = part.assign(image_landmarks=meta["image_landmarks"]).sort_values(["frame_index", "face_index"])
    for row in part.itertuples():
        landmarks = np.asarray(row.image_landmarks, np.float32).reshape(-1, 2) if row.image_landmarks else None
        faces[row.frame_index].append(Face(box=(row.x0, row.y0, row.x1, row.y1), score=row.score, landmarks=landmarks))
    return faces


def _waits_for_source(row: dict, paths: set[str], options: ExtractOptions) -> bool:
    source = row.get("source") or ""
    return options.reuse_source_boxes and row["media_type"] == "video" and source in paths and source != row["path"]


def _work(job: tuple[dict, str, ExtractOptions, bool]) -> str:
    row, crops_dir, options, reuse = job
    source_faces = load_source_faces(Path(crops_dir), row["source"]) if reuse else None
    result = extract_source(row, Path(crops_dir), options, source_faces)
    _save_part(Path(crops_dir), result)
    return result.path


def extract(index_path: str | Path, crops_dir: str | Path, options: ExtractOptions | None = None,
            workers: int = 1, limit: int | None = None) -> dict:
    """Run extraction over an index (resuming if parts exist) and return the summary dict."""
    options = options or ExtractOptions()
    crops_dir = Path(crops_dir)
    index = read_index(index_path)
    if limit:
        index = index.head(limit)
    if index.empty:
        raise DfdetectError("empty_dataset", "the index has no rows", index_path,
                            "check the dataset root given to `dfdetect index`")
    (crops_dir / "parts").mkdir(parents=True, exist_ok=True)
    options_file = crops_dir / EXTRACT_OPTIONS_FILE
    options_json = options.to_json()
    if options_file.exists() and options_file.read_text() != options_json:
        raise DfdetectError("bad_config", "this crops directory was made with other extract options", crops_dir,
                            "use a new --out directory, or the same options to resume")
    options_file.write_text(options_json)

    rows = index.to_dict("records")
    paths = {r["path"] for r in rows}
    todo = [r for r in rows if not _part_path(crops_dir, r["path"]).exists()]
    start = time.time()
    # two waves: every source is finished before the fakes that reuse its faces start
    waves = [[(r, str(crops_dir), options, wait) for r in todo if _waits_for_source(r, paths, options) == wait]
             for wait in (False, True)]
    with tqdm(total=len(rows), initial=len(rows) - len(todo), desc="extract", unit="file") as bar:
        if workers > 1 and len(todo) > 1:
            # spawn: LiteRT interpreters and forked threads don't mix
            with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=200) as pool:
                for wave in waves:
                    for _ in pool.imap_unordered(_work, wave, chunksize=1):
                        bar.update()
        else:
            for job in waves[0] + waves[1]:
                _work(job)
                bar.update()
    elapsed = time.time() - start

    frames, errors = [], []
    totals = {"sources": len(rows), "videos": 0, "images": 0, "frames": 0, "faces": 0, "no_face_frames": 0,
              "reused_frames": 0}
    for r in rows:
        part, meta = _load_part(_part_path(crops_dir, r["path"]))
        frames.append(part)
        totals["videos" if r["media_type"] == "video" else "images"] += 1
        totals["frames"] += meta["frames"]
        totals["no_face_frames"] += meta["no_face_frames"]
        totals["reused_frames"] += meta.get("reused_frames", 0)  # parts written before reuse existed
        totals["faces"] += len(part)
        if meta["error_code"]:
            errors.append({"path": r["path"], "code": meta["error_code"], "message": meta["error_message"]})
    crops = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CROP_COLUMNS)
    tmp = crops_dir / "crops.parquet.tmp"
    crops.to_parquet(tmp, index=False)
    tmp.replace(crops_dir / "crops.parquet")
    # the index by path and content, so a model trained on these crops can name the data it came from
    index_record = {"path": str(Path(index_path).resolve()), "sha256": file_sha256(index_path)}
    summary = {**totals, "errors": errors, "sources_processed_now": len(todo),
               "seconds": round(elapsed, 2), "options": dataclasses.asdict(options), "index": index_record}
    (crops_dir / EXTRACT_SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index.parquet written by `dfdetect index`")
    parser.add_argument("--out", required=True, help="crops directory (crops.parquet, crops/, summary)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled uniformly per video")
    parser.add_argument("--every", type=int, default=None, help="take every k-th frame instead of --frames")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS), help="face detector")
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels (224/299/380)")
    parser.add_argument("--margin", type=float, default=DEFAULT_CROP_MARGIN, help="crop side = margin × face box side")
    parser.add_argument("--all-faces", action="store_true",
                        help="keep every face in videos, not only the main track (the person seen in the most frames)")
    parser.add_argument("--align", action="store_true", help="rotate crops so the eyes are level")
    parser.add_argument("--reuse-source-boxes", action="store_true",
                        help="fakes take the faces of their source video (index column `source`) instead of detecting")
    parser.add_argument("--workers", type=int, default=available_cores(),
                        help="worker processes (default: one per core)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N index rows (for a quick look)")


def run(args: argparse.Namespace) -> None:
    options = ExtractOptions(frames=args.frames, every=args.every, detector=args.detector, size=args.size,
                             margin=args.margin, all_faces=args.all_faces, align=args.align,
                             reuse_source_boxes=args.reuse_source_boxes)
    create_detector(options.detector)  # fail on a bad name before starting workers
    summary = extract(args.index, args.out, options, workers=args.workers, limit=args.limit)
    print(f"extract: {summary['sources']} sources ({summary['images']} images, {summary['videos']} videos), "
          f"{summary['frames']} frames, {summary['faces']} faces, {summary['no_face_frames']} frames without a face, "
          f"{summary['reused_frames']} frames with faces reused from their source, "
          f"{len(summary['errors'])} errors → {Path(args.out) / 'crops.parquet'}")
    for err in summary["errors"][:10]:
        print(f"  error {err['code']}: {err['path']}: {err['message']}")
