"""Self-blended images and identity swaps on the bundled London faces, with the real BlazeFace detector
supplying the 6-keypoint landmarks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.faces import create_detector
from dfdetect.media.io import read_image
from dfdetect.sample_data import london_identity, london_images, london_landmarks
from dfdetect.train.sbi import (
    WEBMORPH_FACE_POINTS,
    face_mask,
    identity_swap,
    is_greyscale,
    self_blend,
    sharpness,
    transfer_colour,
)

INNER_WEBMORPH_POINTS = [0, 1, 52, 90]  # both pupils, nose bridge, upper lip
HAIR_TOP_POINT = 151


@pytest.fixture(scope="module")
def faces() -> dict[str, dict]:
    """Two people: image, 189 WebMorph points, BlazeFace face (box + 6 keypoints)."""
    detector = create_detector("blazeface")
    paths = {london_identity(p): p for p in london_images("neutral")}
    out = {}
    for face_id in ("001", "005"):
        image = read_image(paths[face_id])
        out[face_id] = {"image": image, "webmorph": london_landmarks()[face_id],
                        "blazeface": detector.detect([image])[0][0]}
    return out


def webmorph_face_hull(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    hull = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points[WEBMORPH_FACE_POINTS]).astype(np.int32)), 1)
    return hull.astype(bool)


def landmark_arguments(face: dict, kind: str) -> dict:
    if kind == "webmorph":
        return {"landmarks": face["webmorph"]}
    if kind == "blazeface":
        return {"landmarks": face["blazeface"].landmarks}
    return {"landmarks": None, "box": face["blazeface"].box}


@pytest.mark.parametrize("kind", ["webmorph", "blazeface", "box"])
def test_face_mask_is_soft_in_unit_range_and_covers_the_face(faces, kind):
    face = faces["001"]
    true_face = webmorph_face_hull(face["webmorph"], face["image"].shape)
    inner = np.round(face["webmorph"][INNER_WEBMORPH_POINTS]).astype(int)
    for seed in range(20):
        mask = face_mask(face["image"].shape, rng=np.random.default_rng(seed), **landmark_arguments(face, kind))
        assert mask.dtype == np.float32 and mask.shape == (256, 256)
        assert mask.min() == 0.0 and mask.max() == 1.0
        assert mask[0, 0] == 0.0 and mask[255, 255] == 0.0
        assert mask[inner[:, 1], inner[:, 0]].min() > 0.9  # eyes, nose, mouth fully inside
        assert (mask[true_face] > 0.5).mean() > 0.75  # most of the real face region is covered
        assert ((mask > 0.05) & (mask < 0.95)).sum() > 2000  # a wide soft band, not a hard edge
        steepest = max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max())
        assert steepest < 0.2  # a hard-edged mask would jump by 1 between neighbours


def test_webmorph_mask_leaves_out_hair_and_blazeface_mask_keeps_its_keypoints(faces):
    face = faces["001"]
    hair = np.round(face["webmorph"][HAIR_TOP_POINT]).astype(int)
    keypoints = np.round(face["blazeface"].landmarks[:4]).astype(int)  # eyes, nose, mouth
    for seed in range(20):
        rng = np.random.default_rng(seed)
        assert face_mask(face["image"].shape, face["webmorph"], rng=rng)[hair[1], hair[0]] < 0.5
        blaze = face_mask(face["image"].shape, face["blazeface"].landmarks, rng=rng)
        assert blaze[keypoints[:, 1], keypoints[:, 0]].min() > 0.95


def test_face_mask_without_rng_is_fixed_and_without_landmarks_or_box_is_refused(faces):
    face = faces["001"]
    first = face_mask(face["image"].shape, face["webmorph"])
    assert np.array_equal(first, face_mask(face["image"].shape, face["webmorph"]))
    with pytest.raises(DfdetectError) as caught:
        face_mask(face["image"].shape, face["webmorph"][:3])
    assert caught.value.code == "bad_input"


def test_self_blend_changes_every_one_of_200_draws_inside_and_nothing_outside(faces):
    for seed in range(200):
        face = faces["001" if seed % 2 else "005"]
        kind = ("webmorph", "blazeface", "box")[seed % 3]
        real = face["image"]
        fake, mask = self_blend(real, rng=np.random.default_rng(seed), **landmark_arguments(face, kind))
        assert fake.dtype == np.uint8 and fake.shape == real.shape
        assert mask.shape == real.shape[:2]
        core = mask >= 0.5
        change = np.abs(fake.astype(int) - real.astype(int))
        assert change[core].mean() >= 2.0, f"draw {seed} ({kind}) left the face almost unchanged"
        assert np.array_equal(fake[mask == 0], real[mask == 0]), f"draw {seed} changed pixels outside the mask"
        assert (mask == 0).mean() > 0.4  # the outside is a real region, not a vacuous check


def test_self_blend_is_deterministic_for_a_seed(faces):
    face = faces["001"]
    fake_a, mask_a = self_blend(face["image"], face["webmorph"], np.random.default_rng(7))
    fake_b, mask_b = self_blend(face["image"], face["webmorph"], np.random.default_rng(7))
    fake_c, _ = self_blend(face["image"], face["webmorph"], np.random.default_rng(8))
    assert np.array_equal(fake_a, fake_b) and np.array_equal(mask_a, mask_b)
    assert not np.array_equal(fake_a, fake_c)


def test_self_blend_jpeg_option_compresses_the_whole_image(faces):
    face = faces["001"]
    plain, mask = self_blend(face["image"], face["webmorph"], np.random.default_rng(3))
    compressed, _ = self_blend(face["image"], face["webmorph"], np.random.default_rng(3), jpeg_quality=30)
    outside = mask == 0
    assert not np.array_equal(compressed[outside], plain[outside])
    mse = np.mean((compressed.astype(float) - plain) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25  # compressed, still the same picture


def test_self_blend_refuses_a_face_outside_the_image(faces):
    face = faces["001"]
    with pytest.raises(DfdetectError) as caught:
        self_blend(face["image"], face["webmorph"] + 1000.0, np.random.default_rng(0))
    assert caught.value.code == "bad_input"


@pytest.mark.parametrize("kind", ["webmorph", "blazeface"])
def test_identity_swap_replaces_the_inner_face_and_keeps_the_rest(faces, kind):
    target, source = faces["001"], faces["005"]
    points = {"webmorph": lambda f: f["webmorph"], "blazeface": lambda f: f["blazeface"].landmarks}[kind]
    fake, mask = identity_swap(target["image"], points(target), source["image"], points(source),
                               np.random.default_rng(0))
    assert fake.dtype == np.uint8 and fake.shape == target["image"].shape
    core = mask >= 0.5
    assert core.sum() > 3000
    change = np.abs(fake.astype(int) - target["image"].astype(int))
    assert change[core].mean() > 8.0  # another person's features
    assert np.array_equal(fake[mask == 0], target["image"][mask == 0])


def test_fakes_of_a_black_and_white_face_stay_black_and_white(faces):
    """A tint on a grey face is a cue no real greyscale footage has: with it, the ORL faces' clean fakes were
    trivial to the model (AUC 1.0) and their video-quality ones, whose chroma H.264 flattens, were not."""
    grey = {face_id: np.repeat(cv2.cvtColor(face["image"], cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            for face_id, face in faces.items()}
    assert is_greyscale(grey["001"]) and not is_greyscale(faces["001"]["image"])
    points = {face_id: face["webmorph"] for face_id, face in faces.items()}
    for seed in range(5):
        blended, mask = self_blend(grey["001"], points["001"], np.random.default_rng(seed))
        assert is_greyscale(blended, tolerance=0)
        assert np.abs(blended.astype(int) - grey["001"].astype(int))[mask >= 0.5].mean() >= 2.0  # still a fake
        swapped, _ = identity_swap(grey["001"], points["001"], faces["005"]["image"], points["005"],
                                   np.random.default_rng(seed))
        assert is_greyscale(swapped, tolerance=0)
    colour_fake, _ = self_blend(faces["001"]["image"], points["001"], np.random.default_rng(0))
    assert not is_greyscale(colour_fake)


def test_transfer_colour_matches_the_target_lab_statistics(faces):
    target, source = faces["001"]["image"], faces["005"]["image"]
    region = webmorph_face_hull(faces["001"]["webmorph"], target.shape)
    recoloured = transfer_colour(source, target, region)
    lab = cv2.cvtColor(recoloured.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[region]
    target_lab = cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[region]
    source_lab = cv2.cvtColor(source.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[region]
    assert np.abs(lab.mean(0) - target_lab.mean(0)).max() < 1.5
    assert np.abs(lab.std(0) - target_lab.std(0)).max() < 1.5
    assert np.abs(source_lab.mean(0) - target_lab.mean(0)).max() > 3.0  # there was a difference to remove


def test_identity_swap_refuses_mismatched_landmark_sets(faces):
    target, source = faces["001"], faces["005"]
    with pytest.raises(DfdetectError) as caught:
        identity_swap(target["image"], target["webmorph"], source["image"], source["blazeface"].landmarks,
                      np.random.default_rng(0))
    assert caught.value.code == "bad_input"


def softer_share(match_sharpness: bool) -> float:
    """Share of 100 self-blends of 25 London faces at 128 px whose face core is softer than the real's."""
    landmarks = london_landmarks()
    softer = draws = 0
    for i, path in enumerate(london_images()[:25]):
        image = cv2.resize(read_image(path), (128, 128), interpolation=cv2.INTER_AREA)
        points = landmarks[path.name[:3]] / 2.0
        for k in range(4):
            fake, mask = self_blend(image, points, np.random.default_rng((i, k)), match_sharpness=match_sharpness)
            core = mask >= 0.5
            softer += sharpness(fake.astype(np.float32), core) < sharpness(image.astype(np.float32), core)
            draws += 1
    return softer / draws


def test_self_blended_faces_are_as_often_sharper_as_softer_than_their_real():
    """Matched (our default), fakes are as often sharper as softer than their real, so softness cannot be
    the label ("blurry = fake"); unmatched (the published recipe, an ablation on real deepfakes), the
    pasted face's resolution drop stays in: clearly more of them come out softer."""
    matched, unmatched = softer_share(True), softer_share(False)
    assert 0.35 <= matched <= 0.65
    assert unmatched >= matched + 0.1
