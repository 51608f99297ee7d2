"""Media decoding that never trusts the file: type from content, size checked before decoding,
every failure raised as a DfdetectError with a code."""

from __future__ import annotations

import bisect
import os
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
# Seek when the keyframe before the next chosen frame is over 2 s ahead at 30 fps: below that, decoding
# straight through is cheaper than flushing the decoder and restarting at a keyframe.
DEFAULT_SEEK_GAP = 60

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P5", b"P6", b"P2", b"P3")
# `ftyp` major brands of still images (AVIF, HEIF/HEIC and their sequences, which PIL reads frame 0 of)
_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1")
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"FLV", b"\x30\x26\xb2\x75")


@dataclass
class Frame:
    index: int  # rank of the frame in display order (0 = first picture shown)
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
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "image"  # AVIF / HEIF share the ISO media file box layout with mp4
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


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow): what
    sizes the worker pools of extract and scan."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


@dataclass(frozen=True)
class VideoLayout:
    """Where a video's frames really are, read from its packets without decoding any of them.

    Headers lie (a frame count of 100 over 40 frames, a nominal rate over variable-rate timing), so
    sampling is planned over this list instead: every frame that is present, in display order.
    """

    count: int  # frames present
    pts: list[int] | None  # their presentation timestamps in display order; None when the stream has none
    keyframes: list[int]  # display ranks of the frames a decoder can start from
    width: int = 0  # coded picture size from the stream header (0 when the header lacks it)
    height: int = 0


def read_video_layout(path: Path) -> VideoLayout:
    """One pass over the packets (demuxing reads bytes; it does not decode pictures)."""
    container = _open_video(path)
    stamps: list[int | None] = []
    keyframe_stamps: list[int | None] = []
    try:
        stream = container.streams.video[0]
        size = {"width": stream.codec_context.width or 0, "height": stream.codec_context.height or 0}
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet at the end of the stream
                stamps.append(packet.pts)
                if packet.is_keyframe:
                    keyframe_stamps.append(packet.pts)
        except av.FFmpegError:
            pass  # a truncated file: plan over the packets read so far
    finally:
        container.close()
    if not stamps or any(s is None for s in stamps):
        return VideoLayout(count=len(stamps), pts=None, keyframes=[], **size)
    ordered = sorted(stamps)
    keyframes = sorted({bisect.bisect_left(ordered, s) for s in keyframe_stamps})
    return VideoLayout(count=len(ordered), pts=ordered, keyframes=keyframes, **size)


def video_frame_count(path: str | Path) -> int:
    """The number of frames actually present, counted from the packets rather than the header."""
    return read_video_layout(Path(path)).count


def sample_indices(total: int, num_frames: int) -> list[int]:
    """num_frames indices spread uniformly over [0, total); all of them when the video is shorter."""
    if total <= 0:
        return []
    if total <= num_frames:
        return list(range(total))
    return sorted({round(float(i)) for i in np.linspace(0, total - 1, num_frames)})


def seek_plan(targets: list[int], keyframes: list[int], seek_gap: int) -> dict[int, int]:
    """For each target frame worth seeking to, the keyframe to seek to.

    Decoding forward from where the previous target left off costs one decode per frame in between;
    a seek restarts at the last keyframe at or before the target. It pays only when that keyframe
    lies more than `seek_gap` frames ahead of the decoder's position.
    """
    plan: dict[int, int] = {}
    position = 0
    for target in targets:
        slot = bisect.bisect_right(keyframes, target) - 1
        if seek_gap > 0 and slot >= 0 and keyframes[slot] - position > seek_gap:
            plan[target] = keyframes[slot]
        position = target + 1
    return plan


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    # The display matrix gives the angle the picture must turn counter-clockwise to stand upright,
    # which is what np.rot90 turns by; a phone video shot in portrait arrives stored sideways.
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=round(rotation / 90)))
    return image


def _decode_skipping(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     wanted: set[int] | None) -> Iterator[av.VideoFrame]:
    """Decode from the container's position, skipping the pictures no other picture refers to
    unless they are wanted (by pts): with B-frames that is about half of all frames, decoded for
    nothing otherwise. The decoder stays single-threaded so each packet's skip setting applies to
    that packet and no other."""
    for packet in container.demux(stream):
        if wanted is not None:
            stream.codec_context.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted else "NONREF"
        yield from packet.decode()


def iter_video_frames(path: str | Path, num_frames: int | None = 32, every: int | None = None,
                      seek_gap: int = DEFAULT_SEEK_GAP, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Frame]:
    """Stream the chosen frames of a video: `num_frames` uniformly spread, or every `every`-th.

    The frames present are counted from the packets first, so the choice spreads over the whole
    video even when the header's frame count or rate is wrong (variable frame rate, broken index);
    a video shorter than `num_frames` gives all its frames. Frames are then decoded in order and
    only the chosen ones are converted to RGB; frames nothing depends on are not even decoded unless
    chosen; where the next chosen frame is far ahead, the decoder seeks to the keyframe before it
    instead (`seek_gap` frames; 0 never seeks). A frame's index is
    its rank in display order, taken from its timestamp, so seeking and decoding straight through
    name the same frame alike. Memory stays flat however long the video is; a frame larger than
    `max_pixels` is refused from the stream header, before any picture is decoded (an 8192² frame
    is 200 MB as RGB, several times that inside the decoder).
    """
    path = Path(path)
    layout = read_video_layout(path)
    if layout.width * layout.height > max_pixels:
        raise DfdetectError("too_large", f"{layout.width}x{layout.height} video frames exceed the limit of "
                            f"{max_pixels} pixels", path, "raise --max-pixels if the file is trusted")
    if layout.count == 0:
        raise DfdetectError("unreadable_media", "the video has no frames", path, "the file is corrupt or truncated")
    targets = list(range(0, layout.count, every)) if every else sample_indices(layout.count, num_frames or 32)
    plan = seek_plan(targets, layout.keyframes, seek_gap) if layout.pts is not None else {}
    wanted = None if layout.pts is None else {layout.pts[t] for t in targets}
    container = _open_video(path)
    emitted = 0
    try:
        stream = container.streams.video[0]
        frames = _decode_skipping(container, stream, wanted)
        decoded = 0
        pending = 0  # position in targets of the next frame to emit
        while pending < len(targets):
            keyframe = plan.get(targets[pending])
            if keyframe is not None and decoded <= keyframe:
                container.seek(layout.pts[keyframe], stream=stream, backward=True, any_frame=False)
                frames = _decode_skipping(container, stream, wanted)
            frame = next(frames, None)
            if frame is None:
                break
            rank = decoded if layout.pts is None or frame.pts is None else bisect.bisect_left(layout.pts, frame.pts)
            decoded = rank + 1
            while pending < len(targets) and targets[pending] < rank:
                pending += 1  # that frame did not decode (a damaged packet): move on
            if pending < len(targets) and targets[pending] == rank:
                emitted += 1
                pending += 1
                yield Frame(index=rank, image=_to_rgb(frame))
    except DfdetectError:
        raise
    except Exception as exc:
        if emitted == 0:
            raise DfdetectError("unreadable_media", f"video decoding failed ({exc.__class__.__name__})", path,
                                "the file is corrupt or truncated") from exc
        # a truncated tail: keep the frames already decoded
    finally:
        container.close()
    if emitted == 0:
        raise DfdetectError("unreadable_media", "the video has no decodable frames", path,
                            "the file is corrupt or truncated")


def iter_media_frames(path: str | Path, media_type: str, num_frames: int | None = 32, every: int | None = None,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Frame]:
    """An image as one frame (index 0), a video as its sampled frames: the loop extract and scan share."""
    if media_type == "image":
        yield Frame(index=0, image=read_image(path, max_pixels=max_pixels))
    else:
        yield from iter_video_frames(path, num_frames=num_frames, every=every, max_pixels=max_pixels)
