"""Generators for the scanner's test media: good faces, and every kind of file that breaks scanners."""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from dfdetect.media.io import read_image
from dfdetect.sample_data import LONDON_DIR, london_images

TALL_PAD = 144  # rows of black under a 256 px face: a 400×256 frame whose face sits at the top


def london_face(index: int) -> np.ndarray:
    return read_image(london_images()[index])


def tall_face(index: int = 0) -> np.ndarray:
    """A face in the top of a portrait frame, so a rotation left unapplied moves the face box."""
    return np.pad(london_face(index), ((0, TALL_PAD), (0, 0), (0, 0)))


def copy_london_faces(folder: Path, count: int, start: int = 0) -> list[Path]:
    """Copies of bundled faces, with the CC BY 4.0 attribution beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(LONDON_DIR / "ATTRIBUTION.md", folder / "ATTRIBUTION.md")
    return [Path(shutil.copy(source, folder / source.name)) for source in london_images()[start : start + count]]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width×height but carries one tiny IDAT: a decompression bomb's header
    without its cost. A reader that trusts the header before decoding refuses it cheaply."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def jpeg_with_exif_rotation(image: np.ndarray, path: Path) -> Path:
    """Pixels stored turned 90° clockwise with EXIF orientation 8 (rotate 90° counter-clockwise to
    display): shown upright only by a reader that applies the tag."""
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(image, k=-1)))
    exif = Image.Exif()
    exif[0x0112] = 8
    stored.save(path, quality=95, exif=exif)
    return path


def video_with_rotation(image: np.ndarray, path: Path, frames: int = 6) -> Path:
    """An mp4 whose pixels are turned 90° clockwise and whose track header (tkhd display matrix)
    says to turn them back. PyAV cannot set the matrix, so it is patched into the written file."""
    stored = np.ascontiguousarray(np.rot90(image, k=-1))
    h264_clip([stored] * frames, path, fps=10)
    data = bytearray(path.read_bytes())
    identity = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    start = data.index(identity, data.index(b"tkhd"))
    data[start : start + 36] = struct.pack(">9i", 0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def h264_clip(images: Iterable[np.ndarray], path: Path, fps: int = 25, pts_steps: tuple[int, ...] = (1,)) -> Path:
    """H.264 mp4 of RGB frames (even sides), timestamps advancing by `pts_steps` ticks of 1/fps in
    turn: (1,) is constant frame rate, (1, 2, 5) variable. Written here rather than with
    media.encode.write_video, which fails on clips longer than x264's lookahead (about 40 frames)
    with PyAV 18 because it sets the frames' time_base (the flushed packets lose their pts)."""
    with av.open(str(path), mode="w") as container:
        stream = None
        pts = 0
        for index, image in enumerate(images):
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = Fraction(1, fps)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            container.mux(stream.encode(frame))
            pts += pts_steps[index % len(pts_steps)]
        container.mux(stream.encode(None))
    return path


def variable_frame_rate_video(images: list[np.ndarray], path: Path) -> Path:
    """Frames at irregular timestamps (gaps of 1, 2 and 5 ticks of 1/30 s)."""
    return h264_clip(images, path, fps=30, pts_steps=(1, 2, 5))


def audio_only_mp4(path: Path, seconds: float = 0.5) -> Path:
    """An mp4 with one AAC audio stream and no video."""
    rate = 16000
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds))).astype(np.float32)
        for start in range(0, len(samples), 1024):
            block = samples[start : start + 1024]
            block = np.pad(block, (0, 1024 - len(block)))[None]
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def tiled_faces(count: int, columns: int) -> np.ndarray:
    """`count` different London faces side by side in a grid."""
    faces = [london_face(i) for i in range(count)]
    rows = [np.concatenate(faces[r : r + columns], axis=1) for r in range(0, count, columns)]
    return np.concatenate(rows, axis=0)


def good_clip(path: Path, frames: int = 8, index: int = 3) -> Path:
    face = london_face(index)
    return h264_clip((np.roll(face, shift=(i, 2 * i), axis=(0, 1)) for i in range(frames)), path, fps=10)


def comparable(records: list[dict]) -> list[tuple]:
    """What must match between runs (timings differ): identity, outcome and scores."""
    return sorted((r["path"], r["size"], r["status"], r["error_code"], r["faces_scored"],
                   None if r["probability"] is None else round(r["probability"], 6)) for r in records)


def spawned_children(pid: int) -> list[int]:
    """Pids of processes whose parent is `pid` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_scan(command: list[str], out: Path, kill_after: int, rng: random.Random) -> bool:
    """Run a scan command, SIGKILL it once `out` holds `kill_after` lines (0: at a random moment of
    start-up), and check its decode workers exit on their own. True when it was killed, False when
    it finished first."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.monotonic() + 300
    if kill_after == 0:
        time.sleep(rng.uniform(0.2, 3.0))
    while count_lines(out) < kill_after and child.poll() is None:
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the scan made no progress")
        time.sleep(0.005)
    workers = spawned_children(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    end = time.monotonic() + 10
    while not all(gone(pid) for pid in workers):  # decode workers exit when the scanner's pipe closes
        if time.monotonic() > end:
            raise AssertionError("a decode worker outlived the killed scanner")
        time.sleep(0.05)
    return child.returncode == -signal.SIGKILL


def non_utf8_name(folder: Path, stem: bytes, suffix: str) -> Path:
    """The Path of a file whose name holds bytes that are not UTF-8 (Python keeps them as surrogate
    escapes): `stem` raw, e.g. b"bad_utf8_\\xff\\xfe"."""
    return folder / os.fsdecode(stem + suffix.encode())


def uniform_video(path: Path, width: int, height: int) -> Path:
    """One grey frame of width×height, H.264 at the fastest preset: a frame too large to decode
    (8192×6144 is 50 MP) written in well under a second because it is flat."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 128, np.uint8), format="rgb24")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
