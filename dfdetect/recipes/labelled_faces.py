"""A small labelled real/fake set made from the bundled London faces, for demos, smoke tests and a
starter model, with no dataset download.

Layout (what the folder indexer reads; every file name starts with the face id and "_", so all files
of one person land in one split):

    out_dir/real/<id>_neutral.jpg, <id>_smiling.jpg, [<id>_video.mp4]
    out_dir/fake/<id>_sbi.jpg, <id>_swap_<other>.jpg, [<id>_sbi_video.mp4, <id>_swap_<other>_video.mp4]
    out_dir/ATTRIBUTION.md   (CC BY 4.0: derived images keep their attribution beside them)

Reals are decoded and re-encoded at the same JPEG quality as the fakes, so both classes carry the
same compression history and a model cannot separate them by it.

    python -m dfdetect.recipes.labelled_faces OUT --ids 001 002 003 --videos
"""

from __future__ import annotations

import argparse
import logging
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from dfdetect.errors import DfdetectError
from dfdetect.media.encode import write_video
from dfdetect.media.io import read_image
from dfdetect.records import FAKE, REAL
from dfdetect.sample_data import LONDON_DIR, london_identity, london_images, london_landmarks
from dfdetect.train.sbi import identity_swap, self_blend

JPEG_QUALITY = 92  # the quality the bundled images were saved at
VIDEO_FPS = 25
VIDEO_CRF = 23
COLUMNS = ["path", "label", "kind", "identity"]

log = logging.getLogger(__name__)


def _resized(image: np.ndarray, landmarks: np.ndarray | None, size: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    if size is None or size == image.shape[0] == image.shape[1]:
        return image, landmarks
    scale_x, scale_y = size / image.shape[1], size / image.shape[0]
    interpolation = cv2.INTER_AREA if size < max(image.shape[:2]) else cv2.INTER_LINEAR
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    if landmarks is None:
        return resized, None
    return resized, (landmarks * np.array([scale_x, scale_y], np.float32)).astype(np.float32)


def _save_jpeg(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)
    return path


def camera_motion(image: np.ndarray, num_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Frames of a still face under a slow hand-held drift: a smooth sway of up to 2 % of the frame,
    a zoom of up to 4 % and a tilt of up to 1.5°, so consecutive frames differ as in a real video."""
    height, width = image.shape[:2]
    centre = (width / 2.0, height / 2.0)
    sway = rng.uniform(0.005, 0.02, size=2) * np.array([width, height])
    phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
    zoom, tilt = rng.uniform(0.01, 0.04), rng.uniform(-1.5, 1.5)
    frames = []
    for step in np.linspace(0.0, 1.0, num_frames):
        matrix = cv2.getRotationMatrix2D(centre, tilt * step, 1.0 + zoom * step)
        matrix[:, 2] += sway * np.sin(2.0 * np.pi * step + phase)
        frames.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101))
    return frames


def _identity_rng(seed: int, face_id: str) -> np.random.Generator:
    """A generator per face, so one face's files do not change when others are added to the list."""
    return np.random.default_rng([seed, zlib.crc32(face_id.encode())])


def _checked_ids(face_ids: list[str]) -> list[str]:
    ids = [face_id.zfill(3) for face_id in face_ids]
    if not ids:
        raise DfdetectError("empty_dataset", "no face ids given", None, "pass ids such as 001 002 003")
    known = london_landmarks()
    unknown = sorted(set(ids) - set(known))
    if unknown:
        raise DfdetectError("bad_config", f"unknown London face ids {unknown}", LONDON_DIR,
                            f"choose from {min(known)}..{max(known)} (some numbers are missing)")
    return list(dict.fromkeys(ids))


def build_labelled_faces(out_dir: str | Path, face_ids: list[str], seed: int = 0, videos: bool = False,
                         video_frames: int = 12, size: int | None = None) -> pd.DataFrame:
    """Write reals, self-blended fakes and identity swaps (and optionally H.264 clips) for the given
    London face ids; returns one row per written file: path, label (0 real, 1 fake), kind, identity.

    A face that fails is logged and skipped; the others are still written.
    """
    ids = _checked_ids(face_ids)
    if videos and video_frames < 1:
        raise DfdetectError("bad_config", f"video_frames must be at least 1, got {video_frames}", None,
                            "pass --video-frames 12 or more")
    if size is not None and size < 32:
        raise DfdetectError("bad_config", f"size must be at least 32 pixels, got {size}", None,
                            "smaller faces are too small to detect; leave it unset for 256")
    out_dir = Path(out_dir)
    (out_dir / "real").mkdir(parents=True, exist_ok=True)
    (out_dir / "fake").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LONDON_DIR / "ATTRIBUTION.md", out_dir / "ATTRIBUTION.md")
    neutral = {london_identity(p): p for p in london_images("neutral")}
    smiling = {london_identity(p): p for p in london_images("smiling")}
    landmarks = london_landmarks()
    faces = {face_id: _resized(read_image(neutral[face_id]), landmarks[face_id], size) for face_id in ids}
    rows: list[dict] = []
    for face_id in tqdm(ids, desc="building faces", unit="face"):
        try:
            rows.extend(_build_one(out_dir, face_id, ids, faces, smiling.get(face_id), seed, videos, video_frames,
                                   size))
        except DfdetectError as exc:
            log.warning("skipped face %s: %s", face_id, exc.one_line())
    return pd.DataFrame(rows, columns=COLUMNS)


def _build_one(out_dir: Path, face_id: str, ids: list[str], faces: dict[str, tuple[np.ndarray, np.ndarray]],
               smiling_path: Path | None, seed: int, videos: bool, video_frames: int, size: int | None) -> list[dict]:
    rng = _identity_rng(seed, face_id)
    image, points = faces[face_id]
    written: list[tuple[Path, int, str]] = [(_save_jpeg(image, out_dir / "real" / f"{face_id}_neutral.jpg"), REAL,
                                             "neutral")]
    if smiling_path is not None:
        smile, _ = _resized(read_image(smiling_path), None, size)
        written.append((_save_jpeg(smile, out_dir / "real" / f"{face_id}_smiling.jpg"), REAL, "smiling"))
    blended, _mask = self_blend(image, points, rng)
    written.append((_save_jpeg(blended, out_dir / "fake" / f"{face_id}_sbi.jpg"), FAKE, "sbi"))
    others = [other for other in ids if other != face_id]
    swapped = other = None
    if others:
        other = str(rng.choice(others))
        swapped, _mask = identity_swap(image, points, faces[other][0], faces[other][1], rng)
        written.append((_save_jpeg(swapped, out_dir / "fake" / f"{face_id}_swap_{other}.jpg"), FAKE, "swap"))
    if videos:
        motion_seed = int(rng.integers(2**31))
        real_frames = camera_motion(image, video_frames, np.random.default_rng(motion_seed))
        fake_frames = camera_motion(blended, video_frames, np.random.default_rng(motion_seed))
        written.append((write_video(real_frames, out_dir / "real" / f"{face_id}_video.mp4", VIDEO_FPS, VIDEO_CRF),
                        REAL, "video"))
        written.append((write_video(fake_frames, out_dir / "fake" / f"{face_id}_sbi_video.mp4", VIDEO_FPS,
                                    VIDEO_CRF), FAKE, "sbi_video"))
        if swapped is not None:
            swap_frames = camera_motion(swapped, video_frames, np.random.default_rng(motion_seed))
            written.append((write_video(swap_frames, out_dir / "fake" / f"{face_id}_swap_{other}_video.mp4",
                                        VIDEO_FPS, VIDEO_CRF), FAKE, "swap_video"))
    return [{"path": str(path.resolve()), "label": label, "kind": kind, "identity": face_id}
            for path, label, kind in written]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dfdetect.recipes.labelled_faces",
                                     description="Write a labelled real/fake face set from the bundled London faces.")
    parser.add_argument("out_dir", type=Path, help="folder to write real/, fake/ and ATTRIBUTION.md into")
    parser.add_argument("--ids", nargs="+", default=None, help="London face ids (default: all 102)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos", action="store_true", help="also write short H.264 mp4 clips per face")
    parser.add_argument("--video-frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=None, help="resize images to size×size (default: 256 as bundled)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    ids = args.ids or sorted(london_landmarks())
    try:
        table = build_labelled_faces(args.out_dir, ids, seed=args.seed, videos=args.videos,
                                     video_frames=args.video_frames, size=args.size)
    except DfdetectError as exc:
        parser.exit(2, f"error: {exc.one_line()}\n")
    counts = table["label"].value_counts()
    print(f"wrote {len(table)} files ({counts.get(REAL, 0)} real, {counts.get(FAKE, 0)} fake) for "
          f"{table['identity'].nunique()} of {len(ids)} faces to {args.out_dir}")


if __name__ == "__main__":
    main()
