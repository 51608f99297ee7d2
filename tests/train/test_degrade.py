from __future__ import annotations

import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.media.io import read_image
from dfdetect.media.quality import (
    colour_cast,
    downscale,
    enlarge,
    greyscale,
    h264,
    motion_blur,
    shrink,
    video_quality,
)
from dfdetect.sample_data import london_images
from dfdetect.train.degrade import (
    DEFAULT_DEGRADATIONS,
    DOWNSCALE_FACTORS,
    H264_CRFS,
    check_degradations,
    check_strengths,
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


@pytest.mark.parametrize("seed", [3, 8])
def test_a_recipe_sets_its_own_downscale_range_and_crfs(face, seed):
    """The starter recipe shrinks faces only to video sizes (60–98 px of a 98 px face) and spans CRF 18–40."""
    factors, crfs = check_strengths([1.0, 1.63], [18, 40])
    out = degrade(face, {"downscale": 1.0, "h264": 1.0}, np.random.default_rng(seed), factors, crfs)
    draws = dict(zip(DEFAULT_DEGRADATIONS, np.random.default_rng(seed).random((len(DEFAULT_DEGRADATIONS), 2))))
    factor = 1.0 + draws["downscale"][1] * 0.63
    crf = crfs[int(draws["h264"][1] * 2)]
    assert np.array_equal(out, enlarge(h264(shrink(face, factor, min_side=16), crf), *face.shape[:2]))


def test_impossible_strengths_are_refused():
    for factors, crfs in (([0.5, 2.0], [23]), ([2.0, 1.5], [23]), ([1.0], [23]), ([1.0, 2.0], []),
                          ([1.0, 2.0], [60])):
        with pytest.raises(DfdetectError) as err:
            check_strengths(factors, crfs)
        assert err.value.code == "bad_config"


def test_motion_blur_turns_a_point_into_a_streak_of_its_length_and_angle(face):
    point = np.zeros((31, 31, 3), np.uint8)
    point[15, 15] = 252
    for angle, streak in ((0.0, (slice(15, 16), slice(11, 20))), (90.0, (slice(11, 20), slice(15, 16)))):
        smeared = motion_blur(point, 9, angle)[..., 0]
        assert (smeared[streak] == 28).all()  # the point's light, spread evenly over 9 px
        assert smeared.sum() == 9 * 28 and np.count_nonzero(smeared) == 9
    diagonal = motion_blur(point, 9, 45.0)[..., 0]
    assert diagonal[12, 12] > 0 and diagonal[18, 18] > 0 and diagonal[12, 18] == diagonal[18, 12] == 0
    assert motion_blur(face, 7, 30.0).mean() == pytest.approx(face.mean(), abs=1.0)  # light is only moved


def test_colour_cast_applies_gamma_and_gains_and_greyscale_keeps_three_equal_channels(face):
    assert np.array_equal(colour_cast(face, 1.0, (1.0, 1.0, 1.0)), face)
    brighter = colour_cast(face, 0.7, (1.0, 1.0, 1.0)).astype(int)
    assert (brighter >= face).all() and brighter.mean() > face.mean() + 10
    warm = colour_cast(face, 1.0, (1.08, 1.0, 0.92)).astype(int)
    assert warm[..., 0].mean() > face[..., 0].mean() and warm[..., 2].mean() < face[..., 2].mean()
    assert np.array_equal(warm[..., 1], face[..., 1])
    grey = greyscale(face)
    assert grey.shape == face.shape and (grey == grey[..., :1]).all()
