import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dfdetect.errors import DfdetectError
from dfdetect.media import iter_video_frames, read_image, sample_indices, sniff_media_type, video_frame_count
from dfdetect.media.encode import write_video


def _png_header_only(path, width, height):
    """A PNG whose header claims width×height: enough for the size check, tiny on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))


def test_sniffing_uses_content_not_extension(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "really_png.mp4", format="PNG")
    (tmp_path / "text.jpg").write_text("hello, not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    write_video([np.zeros((32, 32, 3), np.uint8)] * 3, tmp_path / "clip.bin")
    assert sniff_media_type(tmp_path / "really_png.mp4") == "image"
    assert sniff_media_type(tmp_path / "clip.bin") == "video"
    assert sniff_media_type(tmp_path / "text.jpg") is None
    assert sniff_media_type(tmp_path / "empty.png") is None


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    _png_header_only(tmp_path / "huge.png", 30000, 30000)
    with pytest.raises(DfdetectError) as err:
        read_image(tmp_path / "huge.png")
    assert err.value.code == "too_large"


@pytest.mark.parametrize("mode", ["CMYK", "L", "RGBA", "I;16", "P"])
def test_unusual_pixel_formats_become_rgb(tmp_path, mode):
    rgb = Image.new("RGB", (20, 10), (200, 100, 50))
    image = rgb.convert(mode) if mode != "I;16" else Image.fromarray(np.full((10, 20), 40000, np.uint16))
    path = tmp_path / f"x_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png' if mode != 'P' else 'gif'}"
    image.save(path)
    out = read_image(path)
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "rot.jpg").shape == (40, 20, 3)


def test_broken_images_raise_coded_errors(tmp_path):
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[:40])
    (tmp_path / "text.jpg").write_text("not an image")
    for name, code in [("truncated.jpg", "unreadable_media"), ("text.jpg", "unreadable_media"),
                       ("absent.jpg", "missing_path")]:
        with pytest.raises(DfdetectError) as err:
            read_image(tmp_path / name)
        assert err.value.code == code and name in str(err.value)


def test_sample_indices_spread_uniformly_and_handle_short_videos():
    assert sample_indices(100, 5) == [0, 25, 50, 74, 99]
    assert sample_indices(3, 32) == [0, 1, 2]
    assert sample_indices(0, 8) == []


def test_video_sampling_returns_the_chosen_frames_in_order(tmp_path):
    frames = [np.full((48, 64, 3), i * 8, np.uint8) for i in range(30)]
    write_video(frames, tmp_path / "ramp.mp4", fps=30, crf=10)
    assert video_frame_count(tmp_path / "ramp.mp4") == 30
    sampled = list(iter_video_frames(tmp_path / "ramp.mp4", num_frames=4))
    assert [f.index for f in sampled] == sample_indices(30, 4)
    for frame in sampled:  # brightness identifies the frame: the right ones were converted
        assert frame.image.shape == (48, 64, 3)
        assert abs(float(frame.image.mean()) - frame.index * 8) < 6
    assert [f.index for f in iter_video_frames(tmp_path / "ramp.mp4", every=10)] == [0, 10, 20]
    short = list(iter_video_frames(tmp_path / "ramp.mp4", num_frames=64))
    assert len(short) == 30


def test_videos_without_pictures_are_unreadable(tmp_path):
    (tmp_path / "fake.mp4").write_text("just text")
    with pytest.raises(DfdetectError) as err:
        list(iter_video_frames(tmp_path / "fake.mp4"))
    assert err.value.code == "unreadable_media"
