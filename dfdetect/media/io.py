"""Media decoding that never trusts the file: type from content, size checked before decoding,
every failure raised as a DfdetectError with a code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from dfdetect.errors import DfdetectError
from dfdetect.records import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

# 50 megapixels: a 30000×30000 PNG (900 MP) is refused from its header, before any pixel is decoded.
DEFAULT_MAX_PIXELS = 50_000_000

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P5", b"P6", b"P2", b"P3")
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"FLV", b"\x30\x26\xb2\x75")


@dataclass
class Frame:
    index: int  # position of the frame in decode order
    image: np.ndarray  # HxWx3 uint8 RGB, rotation metadata applied


def sniff_media_type(path: str | Path) -> str | None:
    """'image' or 'video' from the file's first bytes; falls back to the extension for formats
    without a distinctive signature; None when it is neither."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    if head[:4] == b"RIFF":
        return "image" if head[8:12] == b"WEBP" else "video" if head[8:11] == b"AVI" else None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide") or head.startswith(_VIDEO_MAGIC):
        return "video"
    if len(head) == 0:
        return None
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS and head[:4] not in (b"<!DO", b"<htm") and not head.isascii():
        return "video"  # e.g. MPEG-TS or raw streams: let the decoder decide
    if ext in IMAGE_EXTENSIONS and not head.isascii():
        return "image"
    return None


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image as HxWx3 uint8 RGB with EXIF orientation applied. CMYK, 16-bit, grey,
    palette and RGBA inputs are converted; animated GIFs give their first frame."""
    path = Path(path)
    if not path.exists():
        raise DfdetectError("missing_path", "file not found", path, "check the path")
    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below, with our own error code
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise DfdetectError("too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels}",
                                    path, "raise --max-pixels if the file is trusted")
            im.seek(0)
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8))
            if im.mode != "RGB":
                if im.mode in ("RGBA", "LA", "P", "PA"):
                    im = im.convert("RGBA")
                    background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(background, im)
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except DfdetectError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        raise DfdetectError("unreadable_media", f"cannot decode image ({exc.__class__.__name__}: {exc})",
                            path, "the file is corrupt or not an image") from exc


def _open_video(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise DfdetectError("missing_path", "file not found", path, "check the path")
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise DfdetectError("unreadable_media", f"cannot open video ({exc.__class__.__name__})", path,
                            "the file is corrupt or not a video") from exc
    if not container.streams.video:
        container.close()
        raise DfdetectError("unreadable_media", "the file has no video stream", path,
                            "audio-only files cannot be scanned")
    return container


def video_frame_count(path: str | Path) -> int:
    """Frame count from the container header, or an estimate from duration × rate (0 if unknown)."""
    container = _open_video(Path(path))
    try:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        duration = stream.duration * stream.time_base if stream.duration else (
            container.duration / av.time_base if container.duration else 0)
        rate = stream.average_rate or stream.guessed_rate or 0
        return round(float(duration) * float(rate))
    finally:
        container.close()


def sample_indices(total: int, num_frames: int) -> list[int]:
    """num_frames indices spread uniformly over [0, total); all of them when the video is shorter."""
    if total <= 0:
        return []
    if total <= num_frames:
        return list(range(total))
    return sorted({round(float(i)) for i in np.linspace(0, total - 1, num_frames)})


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    # PyAV reports the display-matrix angle counter-clockwise; np.rot90 rotates counter-clockwise.
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def iter_video_frames(path: str | Path, num_frames: int | None = 32, every: int | None = None) -> Iterator[Frame]:
    """Stream the chosen frames of a video: `num_frames` uniformly spread, or every `every`-th.

    Frames are decoded in order and only the chosen ones are converted to RGB, so memory stays flat
    however long the video is. When the header frame count is wrong (variable frame rate, broken
    index) sampling follows the frames actually decoded.
    """
    path = Path(path)
    chosen: set[int] | None = None
    if every is None:
        total = video_frame_count(path)
        chosen = set(sample_indices(total, num_frames or 32)) if total > 0 else None
    container = _open_video(path)
    emitted = 0
    index = -1
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            take = index % every == 0 if every else (chosen is None or index in chosen)
            if take:
                emitted += 1
                yield Frame(index=index, image=_to_rgb(frame))
                if chosen is not None and emitted >= len(chosen):
                    break
    except DfdetectError:
        raise
    except Exception as exc:
        if emitted == 0:
            raise DfdetectError("unreadable_media", f"video decoding failed ({exc.__class__.__name__})", path,
                                "the file is corrupt or truncated") from exc
        # a truncated tail: keep the frames already decoded
    finally:
        container.close()
    if emitted == 0 and index < 0:
        raise DfdetectError("unreadable_media", "the video has no decodable frames", path,
                            "the file is corrupt or truncated")
