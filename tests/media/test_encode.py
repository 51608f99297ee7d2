"""H.264 writing with PyAV: files that decode back to the frames written, and the in-memory round trip."""

from __future__ import annotations

import av
import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.media.encode import h264_roundtrip, pad_to_even, write_video
from dfdetect.media.io import iter_video_frames, read_image, video_frame_count
from dfdetect.sample_data import london_images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def moving_gradient(num_frames: int, height: int, width: int) -> list[np.ndarray]:
    """Smooth frames that H.264 reproduces closely, each shifted so frames differ."""
    ys, xs = np.mgrid[0:height, 0:width]
    return [np.stack([(xs * 3 + t * 5) % 256, (ys * 2 + t * 3) % 256, np.full_like(xs, 40 + t * 10)],
                     axis=-1).astype(np.uint8) for t in range(num_frames)]


def test_write_video_gives_an_h264_file_with_every_frame(tmp_path):
    frames = moving_gradient(9, 48, 64)
    path = write_video(iter(frames), tmp_path / "clip.mp4", fps=25, crf=18)
    assert path == tmp_path / "clip.mp4" and not (tmp_path / "clip.mp4.partial").exists()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == 25.0
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 9
    assert all(frame.shape == (48, 64, 3) for frame in decoded)
    assert min(psnr(a, b) for a, b in zip(decoded, frames)) > 30


def test_write_video_pads_odd_sizes_and_the_project_reader_decodes_it(tmp_path):
    frames = moving_gradient(5, 65, 49)
    path = write_video(frames, tmp_path / "odd.mp4")
    decoded = list(iter_video_frames(path, num_frames=None, every=1))
    assert [frame.index for frame in decoded] == [0, 1, 2, 3, 4]
    assert decoded[0].image.shape == (66, 50, 3)
    assert psnr(decoded[2].image[:65, :49], frames[2]) > 28


def test_pad_to_even_replicates_the_edge():
    image = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    padded = pad_to_even(image)
    assert padded.shape == (4, 6, 3)
    assert np.array_equal(padded[:3, :5], image)
    assert np.array_equal(padded[3, :5], image[2]) and np.array_equal(padded[:3, 5], image[:, 4])
    assert pad_to_even(padded) is padded


def test_write_video_refuses_mixed_sizes_and_leaves_no_file(tmp_path):
    frames = [np.zeros((32, 32, 3), np.uint8), np.zeros((40, 32, 3), np.uint8)]
    with pytest.raises(DfdetectError) as caught:
        write_video(frames, tmp_path / "mixed.mp4")
    assert caught.value.code == "bad_input"
    assert list(tmp_path.iterdir()) == []


def test_write_video_refuses_no_frames_and_non_uint8_frames(tmp_path):
    with pytest.raises(DfdetectError) as caught:
        write_video([], tmp_path / "empty.mp4")
    assert caught.value.code == "empty_dataset"
    with pytest.raises(DfdetectError) as caught:
        write_video([np.zeros((32, 32, 3), np.float32)], tmp_path / "float.mp4")
    assert caught.value.code == "bad_input"
    assert list(tmp_path.iterdir()) == []


def test_h264_roundtrip_keeps_shapes_and_loses_more_as_crf_rises():
    faces = [read_image(path) for path in london_images()[:4]]
    quality = {}
    for crf in (10, 25, 40):
        out = h264_roundtrip(faces, crf)
        assert len(out) == 4
        assert all(o.shape == f.shape and o.dtype == np.uint8 for o, f in zip(out, faces))
        quality[crf] = np.mean([psnr(o, f) for o, f in zip(out, faces)])
    assert quality[10] > quality[25] + 3 > quality[40] + 6
    assert quality[10] > 38 and quality[40] > 20


def test_h264_roundtrip_crops_mixed_sizes_back():
    faces = [read_image(path) for path in london_images()[:2]]
    images = [faces[0][:101, :77], faces[1]]
    out = h264_roundtrip(images, 20)
    assert [o.shape for o in out] == [(101, 77, 3), (256, 256, 3)]
    assert psnr(out[0], images[0]) > 30
    assert h264_roundtrip([], 20) == []


def test_long_clips_are_written_whole(tmp_path):
    """Regression: clips past ~40 frames failed at the final flush when frames carried a time base."""
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(100)]
    write_video(frames, tmp_path / "long.mp4", fps=25)
    assert video_frame_count(tmp_path / "long.mp4") == 100
