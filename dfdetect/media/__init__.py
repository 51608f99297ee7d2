"""Reading media: content sniffing, safe image decoding, and frame sampling from videos (PyAV)."""

from dfdetect.media.io import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_SEEK_GAP,
    Frame,
    VideoLayout,
    iter_media_frames,
    iter_video_frames,
    read_image,
    read_video_layout,
    sample_indices,
    seek_plan,
    sniff_media_type,
    video_frame_count,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SEEK_GAP",
    "Frame",
    "VideoLayout",
    "iter_media_frames",
    "iter_video_frames",
    "read_image",
    "read_video_layout",
    "sample_indices",
    "seek_plan",
    "sniff_media_type",
    "video_frame_count",
]
