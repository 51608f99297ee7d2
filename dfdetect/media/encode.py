"""H.264 writing through PyAV (libx264), in files and in memory.

There is no ffmpeg binary and cv2.VideoWriter has no H.264 encoder here, so PyAV's bundled libav is
the one way to produce the codec real videos arrive in. The in-memory round trip lets training show a
model face crops with the blocking and smoothing of video compression at a chosen CRF.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dfdetect.errors import DfdetectError


def pad_to_even(image: np.ndarray, height: int | None = None, width: int | None = None) -> np.ndarray:
    """The image padded by edge replication to at least height×width, rounded up to even sides, as
    yuv420p halves the chroma resolution and needs even dimensions."""
    height = max(height or 0, image.shape[0])
    width = max(width or 0, image.shape[1])
    pad_y, pad_x = height + height % 2 - image.shape[0], width + width % 2 - image.shape[1]
    if pad_y == 0 and pad_x == 0:
        return image
    return np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")


def _check_frame(frame: np.ndarray, index: int, path: str | Path | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise DfdetectError("bad_input", f"frame {index} is {frame.dtype} {frame.shape}, expected HxWx3 uint8 RGB",
                            path, "convert frames to uint8 RGB before encoding")
    return frame


def _encode(frames: Iterable[np.ndarray], target: str | io.BytesIO, fps: int, crf: int, codec: str,
            path_for_errors: str | Path | None, size: tuple[int, int] | None = None) -> int:
    """Encode frames into an mp4 container; all frames share the first frame's (even) size, or `size`."""
    count = 0
    with av.open(target, mode="w", format="mp4") as container:
        stream = None
        for index, raw in enumerate(frames):
            frame = pad_to_even(_check_frame(raw, index, path_for_errors), *(size or (None, None)))
            if stream is None:
                stream = container.add_stream(codec, rate=fps, options={"crf": str(crf)})
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = Fraction(1, fps)
            if frame.shape[:2] != (stream.height, stream.width):
                raise DfdetectError("bad_input", f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, the video is "
                                    f"{stream.width}x{stream.height}", path_for_errors,
                                    "resize all frames to one size before writing")
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is None:
            raise DfdetectError("empty_dataset", "no frames to encode", path_for_errors, "pass at least one frame")
        container.mux(stream.encode(None))
    return count


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: int = 25, crf: int = 23,
                codec: str = "libx264") -> Path:
    """Write RGB uint8 frames as an mp4 (yuv420p); odd sides are padded by one replicated row/column.

    The file appears only when it is complete (written beside it, then renamed), so a failed write
    leaves no truncated video for an indexer to pick up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            _encode(frames, handle, fps, crf, codec, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path


def _decode_all(data: io.BytesIO) -> Iterator[np.ndarray]:
    with av.open(data, mode="r") as container:
        for frame in container.decode(container.streams.video[0]):
            yield frame.to_ndarray(format="rgb24")


def h264_roundtrip(images: list[np.ndarray], crf: int, fps: int = 25) -> list[np.ndarray]:
    """The images after H.264 encoding at `crf` as consecutive frames of one clip, decoded back.

    Images of different sizes are padded to a common even size for the clip and cropped back after,
    so each returned image has its input's shape. Inter-frame prediction means a frame's artefacts
    depend on its neighbours, as in a real video.
    """
    if not images:
        return []
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    buffer = io.BytesIO()
    _encode(images, buffer, fps, crf, "libx264", None, size=(height, width))
    buffer.seek(0)
    decoded = list(_decode_all(buffer))
    if len(decoded) != len(images):
        raise DfdetectError("internal", f"H.264 round trip returned {len(decoded)} of {len(images)} frames", None,
                            "report this with the PyAV version in use")
    return [np.ascontiguousarray(frame[: image.shape[0], : image.shape[1]]) for frame, image in zip(decoded, images)]
