from __future__ import annotations

import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.media.io import read_image
from dfdetect.media.quality import downscale, enlarge, h264, shrink, video_quality
from dfdetect.sample_data import london_images
from dfdetect.train.degrade import (
    DEFAULT_DEGRADATIONS,
    DOWNSCALE_FACTORS,
    H264_CRFS,
    check_degradations,
    degrade,
)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return read_image(london_images("neutral")[0])[64:192, 64:192].copy()


def detail(image: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours: high-frequency content."""
    grey = image.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=1)).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)))


def test_downscale_keeps_the_size_and_removes_detail(face):
    small = downscale(face, 3.0)
    assert small.shape == face.shape and small.dtype == np.uint8
    assert detail(small) < 0.7 * detail(face)
    assert psnr(small, face) > 22


def test_h264_is_a_real_lossy_round_trip_of_the_same_picture(face):
    odd = face[:127, :125]
    coded = h264(odd, 35)
    assert coded.shape == odd.shape and coded.dtype == np.uint8
    assert not np.array_equal(coded, odd)
    assert 20 < psnr(coded, odd) < 40
    assert psnr(h264(odd, 20), odd) > psnr(coded, odd)  # lower CRF, better quality


def test_video_quality_is_worse_than_either_step_alone(face):
    degraded = video_quality(face, 2.5)
    assert psnr(degraded, face) < psnr(downscale(face, 2.5), face)
    assert psnr(degraded, face) < psnr(h264(face, 35), face)


def test_degrade_with_zero_probabilities_returns_the_image(face):
    out = degrade(face, dict.fromkeys(DEFAULT_DEGRADATIONS, 0.0), np.random.default_rng(0))
    assert np.array_equal(out, face)


@pytest.mark.parametrize("step", list(DEFAULT_DEGRADATIONS))
def test_each_step_at_probability_one_changes_the_image(face, step):
    out = degrade(face, {step: 1.0}, np.random.default_rng(0))
    assert out.shape == face.shape and out.dtype == np.uint8
    assert not np.array_equal(out, face)
    assert psnr(out, face) > 20  # degraded, still the same face


def test_degrade_is_deterministic_for_a_seed_and_varies_between_seeds(face):
    first = degrade(face, DEFAULT_DEGRADATIONS, np.random.default_rng(5))
    again = degrade(face, DEFAULT_DEGRADATIONS, np.random.default_rng(5))
    assert np.array_equal(first, again)
    outputs = {degrade(face, DEFAULT_DEGRADATIONS, np.random.default_rng(seed)).tobytes() for seed in range(12)}
    assert len(outputs) > 6


def test_degrade_applies_each_step_at_its_probability(face):
    """Half the draws with a 0.5 coin degrade; the coin, not the image, decides."""
    changed = [not np.array_equal(degrade(face, {"blur": 0.5}, np.random.default_rng(seed)), face)
               for seed in range(200)]
    assert 0.4 < np.mean(changed) < 0.6


def test_check_degradations_refuses_unknown_steps_and_bad_probabilities():
    assert check_degradations(None) == {}
    assert check_degradations({"jpeg": 1}) == {"jpeg": 1.0}
    for bad in ({"sharpen": 0.5}, {"jpeg": 1.5}, {"noise": -0.1}):
        with pytest.raises(DfdetectError) as err:
            check_degradations(bad)
        assert err.value.code == "bad_config"


def test_a_downscaled_face_is_encoded_at_its_small_size_then_enlarged(face):
    """As in a video: the codec sees the face at its size in the frame, so CRF 35 costs far more detail
    than it would on the full-size crop."""
    seed = 3
    out = degrade(face, {"downscale": 1.0, "h264": 1.0}, np.random.default_rng(seed))
    draws = dict(zip(DEFAULT_DEGRADATIONS, np.random.default_rng(seed).random((len(DEFAULT_DEGRADATIONS), 2))))
    factor = DOWNSCALE_FACTORS[0] + draws["downscale"][1] * (DOWNSCALE_FACTORS[1] - DOWNSCALE_FACTORS[0])
    crf = H264_CRFS[min(int(draws["h264"][1] * len(H264_CRFS)), len(H264_CRFS) - 1)]
    assert out.shape == face.shape
    assert np.array_equal(out, enlarge(h264(shrink(face, factor, min_side=16), crf), *face.shape[:2]))
    assert not np.array_equal(out, h264(downscale(face, factor), crf))
