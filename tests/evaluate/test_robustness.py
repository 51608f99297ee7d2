"""The degradations of the robustness sweep do what their names say, at the strength asked."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.evaluate.robustness import SWEEPS, condition_name, degradations
from dfdetect.export import london_parity_crops
from dfdetect.media.quality import downscale, gaussian_blur, gaussian_noise, jpeg
from dfdetect.model.contract import ModelContract, Preprocessing


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return london_parity_crops(ModelContract(preprocessing=Preprocessing(input_size=96)), limit=1)[0]


def mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def test_each_sweep_degrades_more_at_each_harsher_level(face):
    rng = np.random.default_rng(0)
    for sweep in SWEEPS.values():
        changes = [mean_abs_change(sweep.apply(face, level, rng), face) for level in sweep.levels]
        assert changes == sorted(changes), sweep.name
        assert changes[0] > 0.0, sweep.name
        assert len(sweep.levels) in (3, 4)


def test_noise_has_the_requested_sigma_and_is_reproducible(face):
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = gaussian_noise(flat, 10.0, np.random.default_rng(1))
    assert noisy.astype(np.float64).std() == pytest.approx(10.0, rel=0.03)
    again = gaussian_noise(flat, 10.0, np.random.default_rng(1))
    np.testing.assert_array_equal(noisy, again)


def test_shape_and_dtype_are_kept_and_flat_images_survive_blur_and_scaling(face):
    flat = np.full((64, 64, 3), 77, np.uint8)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(gaussian_blur(flat, 3.0), flat)
    np.testing.assert_array_equal(downscale(flat, 4.0), flat)
    for name, degrade in degradations().items():
        out = degrade(face, rng)
        assert out.shape == face.shape and out.dtype == np.uint8, name
    assert jpeg(face, 95).shape == face.shape


def test_condition_names_are_stable_keys():
    assert condition_name("jpeg", 50) == "jpeg@50" and condition_name("blur", 0.5) == "blur@0.5"
    assert len(degradations()) == sum(len(s.levels) for s in SWEEPS.values()) == 16
