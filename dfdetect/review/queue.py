"""`dfdetect review export RESULTS --out queue/`: the files a person should look at, most uncertain first.

The queue holds the scored files whose decision is in `include` (by default `review`, the band between
the clear and flag thresholds, and `fake`, so a person confirms a flag before anyone acts on it). It
is written twice: `queue.csv` for tools and spreadsheets, and `index.html`, one self-contained page
(face crops, heatmaps and the data inlined; no server, no network) where a reviewer looks at each
file's top faces and scores, the file's content-credential evidence when the scan read it, sets a
verdict, and saves `verdicts.csv` from the browser for `dfdetect review import`.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from dfdetect.errors import DfdetectError
from dfdetect.faces import Face
from dfdetect.faces.crop import crop_transform
from dfdetect.media.io import iter_media_frames
from dfdetect.media.provenance import evidence_summary
from dfdetect.model.contract import TRIAGES
from dfdetect.model.heatmaps import occlusion_map, write_heatmap_png
from dfdetect.model.session import OnnxModel
from dfdetect.records import record_path
from dfdetect.results import read_results

DEFAULT_INCLUDE = ("review", "fake")
FACES_PER_ITEM = 3
FACE_PIXELS = 160  # side of a face crop in the gallery
FACE_MARGIN = 1.6  # wider than a model's crop: a person judges a face with its surroundings
JPEG_QUALITY = 88
QUEUE_CSV_COLUMNS = ("rank", "path", "triage", "probability", "margin_logit", "flag_threshold_name", "flag_threshold",
                     "clear_threshold_name", "clear_threshold", "media_type", "faces_scored", "top_face_probability",
                     "evidence", "model_sha256")


def logit(probability: float) -> float:
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def margin_logit(record: dict) -> float:
    """How far a file's score is from the middle of the review band (between the clear and flag
    thresholds; the flag threshold alone for two-way decisions), in logits. Logits, not
    probabilities, so 0.98 vs 0.99 counts as far apart as the model's evidence says; the smallest
    margin is the most uncertain file."""
    middle = (logit(record["threshold"]) + logit(record["clear_threshold"] if record.get("clear_threshold") is not None
                                                 else record["threshold"])) / 2
    return abs(logit(record["probability"]) - middle)


@dataclass
class QueueFace:
    frame_index: int
    probability: float
    crop_jpeg: str = ""  # data: URI, "" when the frame could not be read again
    heatmap_png: str = ""  # data: URI of the `--explain` overlay, when the scan wrote one


@dataclass
class QueueItem:
    rank: int
    path: str
    triage: str
    probability: float
    margin_logit: float
    flag_threshold_name: str
    flag_threshold: float
    clear_threshold_name: str
    clear_threshold: float
    media_type: str
    faces_scored: int
    model_sha256: str
    faces: list[QueueFace] = field(default_factory=list)
    evidence: str = ""  # the file's C2PA / watermark evidence in one line, shown beside the score, never in it
    note: str = ""  # why the crops are missing, when they are


def select_items(records: Iterable[dict], include: Iterable[str] = DEFAULT_INCLUDE) -> list[QueueItem]:
    """Scored records whose triage is in `include`, most uncertain first (ties by path), without pixels."""
    include = set(include)
    unknown = include - set(TRIAGES)
    if unknown:
        raise DfdetectError("bad_config", f"unknown decisions {sorted(unknown)}", None, f"choose from {list(TRIAGES)}")
    chosen = [r for r in records if r.get("status") == "ok" and r.get("triage") in include]
    chosen.sort(key=lambda r: (margin_logit(r), r["path"]))
    return [QueueItem(rank=rank, path=r["path"], triage=r["triage"], probability=float(r["probability"]),
                      margin_logit=round(margin_logit(r), 4), flag_threshold_name=r["threshold_name"],
                      flag_threshold=float(r["threshold"]), clear_threshold_name=r["clear_threshold_name"],
                      clear_threshold=float(r["clear_threshold"]), media_type=r["media_type"],
                      faces_scored=int(r["faces_scored"]), model_sha256=r["model_sha256"],
                      faces=[QueueFace(int(f["frame_index"]), float(f["probability"]))
                             for f in r.get("top_faces", [])[:FACES_PER_ITEM]],
                      evidence=evidence_summary(r.get("provenance")))
            for rank, r in enumerate(chosen, start=1)]


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def frames_at(path: str, media_type: str, wanted: set[int]) -> dict[int, np.ndarray]:
    """The decoded frames of the file whose index is in `wanted` (decoding stops once all are found)."""
    frames: dict[int, np.ndarray] = {}
    for frame in iter_media_frames(path, media_type, num_frames=None, every=1):
        if frame.index in wanted:
            frames[frame.index] = frame.image
        if len(frames) == len(wanted):
            break
    return frames


def face_crops(path: str, media_type: str, faces: list[dict]) -> list[str]:
    """JPEG data URIs of the faces (frame_index, box) cut again from the media file, in order."""
    frames = frames_at(path, media_type, {int(f["frame_index"]) for f in faces})
    crops = []
    for face in faces:
        image = frames.get(int(face["frame_index"]))
        if image is None:
            crops.append("")
            continue
        matrix = crop_transform(face["box"], FACE_PIXELS, FACE_MARGIN)
        crop = cv2.warpAffine(image, matrix, (FACE_PIXELS, FACE_PIXELS), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_CONSTANT)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        crops.append(data_uri("image/jpeg", jpeg.tobytes()) if ok else "")
    return crops


def scan_model_path(results: Path) -> Path:
    """The model file a results file was scored with, from the scan's `<results>.manifest.json`."""
    manifest = results.with_name(results.name + ".manifest.json")
    if not manifest.is_file():
        raise DfdetectError("missing_path", "no scan manifest beside the results, so the model is unknown", manifest,
                            "pass --model MODEL.onnx")
    return Path(json.loads(manifest.read_text())["model"]["path"])


def explain_faces(items: list[QueueItem], records: dict[str, dict], model_path: Path, folder: Path) -> int:
    """Write an occlusion heatmap (the map `scan --explain` draws, dfdetect.model.heatmaps) for every queued
    face that has none, name it in the record's face, and return how many were made. The face is cut
    again from its frame with the model's own preprocessing, as the scanner cut it; results keep no
    landmarks, so a model trained on eye-aligned crops is refused (scan it with --explain instead)."""
    model = OnnxModel(model_path, device="cpu")
    preprocessing = model.contract.preprocessing
    if preprocessing.alignment != "none":
        raise DfdetectError("bad_config", "the model takes eye-aligned crops, which results cannot cut again "
                            "(they keep no landmarks)", model_path, "scan with --explain instead")
    made = 0
    for item in items:
        record = records[item.path]
        missing = [face for face in record.get("top_faces", [])[:FACES_PER_ITEM] if not face.get("heatmap")]
        if not missing:
            continue
        try:
            frames = frames_at(record_path(record), item.media_type, {int(f["frame_index"]) for f in missing})
        except (DfdetectError, OSError):  # gone since the scan: attach_pixels notes it
            continue
        for number, face in enumerate(missing):
            image = frames.get(int(face["frame_index"]))
            if image is None:
                continue
            crop, _landmarks = preprocessing.crop(image, Face(tuple(face["box"]), 1.0))
            png = folder / f"{item.rank:04d}-f{face['frame_index']}-{number}.png"
            face["heatmap"] = str(write_heatmap_png(crop, occlusion_map(model.logits, crop, preprocessing), png))
            made += 1
    return made


def attach_pixels(item: QueueItem, record: dict) -> None:
    """Fill the item's face crops (re-read from the file) and heatmaps (the PNGs `scan --explain` wrote)."""
    faces = record.get("top_faces", [])[:FACES_PER_ITEM]
    try:
        crops = face_crops(record_path(record), item.media_type, faces)  # the OS spelling of a non-UTF-8 name
    except (DfdetectError, OSError) as exc:  # moved, deleted or changed since the scan
        item.note = f"face crops unavailable: {exc}"
        crops = [""] * len(faces)
    for queue_face, face, crop in zip(item.faces, faces, crops):
        queue_face.crop_jpeg = crop
        heatmap = Path(face["heatmap"]) if face.get("heatmap") else None
        if heatmap is not None and heatmap.is_file():
            queue_face.heatmap_png = data_uri("image/png", heatmap.read_bytes())


def queue_frame(items: list[QueueItem]) -> pd.DataFrame:
    rows = [{**{k: v for k, v in asdict(item).items() if k in QUEUE_CSV_COLUMNS},
             "top_face_probability": item.faces[0].probability if item.faces else None} for item in items]
    return pd.DataFrame(rows, columns=list(QUEUE_CSV_COLUMNS))


def render_gallery(items: list[QueueItem], title: str, source: str) -> str:
    """index.html: the template with the queue inlined as JSON (`</` escaped so no file name can end
    the script element)."""
    template = resources.files("dfdetect.review").joinpath("gallery.html").read_text(encoding="utf-8")
    data = json.dumps({"title": title, "source": source, "items": [asdict(i) for i in items]}, ensure_ascii=False)
    return (template.replace("__TITLE__", html.escape(title))
            .replace("__QUEUE_JSON__", data.replace("</", "<\\/")))


def export_queue(results: str | Path, out: str | Path, include: Iterable[str] = DEFAULT_INCLUDE,
                 limit: int | None = None, explain_model: str | Path | None = None) -> list[QueueItem]:
    """Write `out/queue.csv` and `out/index.html` for the results file's records; returns the items.
    With `explain_model` (a model.onnx), faces the scan drew no heatmap for get one, in `out/heatmaps/`."""
    results, out = Path(results), Path(out)
    records = {r["path"]: r for r in read_results(results)}
    items = select_items(records.values(), include)[:limit]
    if explain_model is not None:
        explain_faces(items, records, Path(explain_model), out / "heatmaps")
    for item in items:
        attach_pixels(item, records[item.path])
    out.mkdir(parents=True, exist_ok=True)
    queue_frame(items).to_csv(out / "queue.csv", index=False)
    title = f"dfdetect review queue: {len(items)} files from {results.name}"
    (out / "index.html").write_text(render_gallery(items, title, str(results.resolve())), encoding="utf-8")
    return items
