import struct
import zlib
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from dfdetect.errors import DfdetectError
from dfdetect.media import iter_video_frames, read_image, sample_indices, sniff_media_type, video_frame_count
from dfdetect.media.encode import write_video
from dfdetect.media.io import read_video_layout, seek_plan


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


def _id_frame(index: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A frame that carries its own number: 8 black/white blocks spell the index in binary, over a
    moving gradient that gives the encoder real motion to predict."""
    ramp = (np.arange(width)[None, :] * 2 + np.arange(height)[:, None] + index * 3) % 256
    image = np.repeat(ramp[:, :, None], 3, axis=2).astype(np.uint8)
    for bit in range(8):
        image[:12, bit * 12 : bit * 12 + 12] = 255 if (index >> bit) & 1 else 0
    return image


def _read_id(image: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if image[2:10, bit * 12 + 2 : bit * 12 + 10].mean() > 127)


def _write(path, images, pts=None, gop=None, rotation=None, fmt=None, codec="libx264"):
    """Encode with PyAV directly, for what write_video deliberately does not offer: chosen
    timestamps (variable frame rate), a short keyframe interval, a display rotation."""
    options = {"crf": "10"} if codec == "libx264" else {}
    if gop:
        options.update({"g": str(gop), "sc_threshold": "0"})  # keyframes exactly every `gop` frames
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=30, options=options)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 30)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts[i] if pts else i
            frame.time_base = Fraction(1, 30)  # the stream's own time base changes once the muxer starts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_seeking_gives_the_same_frames_as_decoding_straight_through(tmp_path):
    path = _write(tmp_path / "gop.mp4", [_id_frame(i) for i in range(200)], gop=10)
    targets = sample_indices(200, 5)
    keyframes = read_video_layout(path).keyframes
    assert keyframes == list(range(0, 200, 10))  # read from the packets, without decoding
    assert seek_plan(targets, keyframes, seek_gap=30) == {50: 50, 100: 100, 149: 140, 199: 190}
    assert seek_plan(targets, keyframes, seek_gap=0) == {}
    assert seek_plan(targets, keyframes, seek_gap=60) == {}  # gaps of ~50 frames: decoding through is cheaper
    for kwargs in ({"num_frames": 5}, {"every": 70}):
        sought = list(iter_video_frames(path, seek_gap=30, **kwargs))
        straight = list(iter_video_frames(path, seek_gap=0, **kwargs))
        assert [f.index for f in sought] == [f.index for f in straight] == (
            targets if "num_frames" in kwargs else [0, 70, 140])
        with av.open(str(path)) as container:  # every frame, decoded plainly: what skipping must not change
            plain = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        for a, b in zip(sought, straight):
            assert np.array_equal(a.image, b.image) and np.array_equal(a.image, plain[a.index])
            assert _read_id(a.image) == a.index  # the frame's own number, not just the same picture twice


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_metadata_makes_frames_upright(tmp_path, degrees):
    upright = np.zeros((64, 32, 3), np.uint8)
    upright[:32] = 255  # white top half
    stored = np.ascontiguousarray(np.rot90(upright, k=-round(degrees / 90)))  # as the camera wrote it
    path = _write(tmp_path / "rotated.mp4", [stored] * 4, rotation=degrees)
    frames = list(iter_video_frames(path, num_frames=2))
    assert len(frames) == 2
    for frame in frames:
        assert frame.image.shape == (64, 32, 3)
        assert frame.image[:30].mean() > 200 and frame.image[34:].mean() < 50


def test_variable_frame_rate_samples_uniformly_over_the_frames_present(tmp_path):
    gaps = np.random.default_rng(1).integers(1, 9, 40)  # 1 to 8 ticks of 1/30 s between frames
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]]).tolist()
    path = _write(tmp_path / "vfr.mp4", [_id_frame(i) for i in range(40)], pts=pts)
    assert video_frame_count(path) == 40
    frames = list(iter_video_frames(path, num_frames=8))
    assert [f.index for f in frames] == sample_indices(40, 8)
    assert [_read_id(f.image) for f in frames] == sample_indices(40, 8)


def test_a_wrong_header_count_still_spreads_over_the_real_video(tmp_path):
    path = _write(tmp_path / "short.avi", [_id_frame(i) for i in range(40)], fmt="avi", codec="mpeg4")
    data = bytearray(path.read_bytes())
    for tag, offset in ((b"avih", 16), (b"strh", 32)):  # total frames / stream length fields → 100
        at = data.find(tag) + 8 + offset
        data[at : at + 4] = struct.pack("<I", 100)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 100  # the header now lies
    frames = list(iter_video_frames(path, num_frames=8))
    assert [f.index for f in frames] == sample_indices(40, 8)
    assert [_read_id(f.image) for f in frames] == sample_indices(40, 8)


def test_a_video_shorter_than_the_sample_gives_all_its_frames(tmp_path):
    path = _write(tmp_path / "five.mp4", [_id_frame(i) for i in range(5)])
    frames = list(iter_video_frames(path, num_frames=32))
    assert [f.index for f in frames] == [_read_id(f.image) for f in frames] == [0, 1, 2, 3, 4]
