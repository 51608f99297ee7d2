"""Reading media: content sniffing, safe image decoding, and frame sampling from videos (PyAV)."""

from dfdetect.media.io import (
    DEFAULT_MAX_PIXELS,
    Frame,
    iter_video_frames,
    read_image,
    sample_indices,
    sniff_media_type,
    video_frame_count,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Frame",
    "iter_video_frames",
    "read_image",
    "sample_indices",
    "sniff_media_type",
    "video_frame_count",
]
