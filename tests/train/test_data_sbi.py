"""SBI training data made from real crops of the real extract stage (BlazeFace landmarks in crops.parquet)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dfdetect.errors import DfdetectError
from dfdetect.media.quality import VIDEO_QUALITY_CRF, h264, video_quality
from dfdetect.records import FAKE, REAL
from dfdetect.train.data import CropDataset, DeepfakeDataModule, FakeMaker, crop_face_box, read_rgb
from dfdetect.train.degrade import H264_CRFS
from dfdetect.train.sbi import self_blend

from .conftest import SBI_CROP_SIZE, SBI_TRAIN_PEOPLE, SBI_VAL_PEOPLE


def sbi_datamodule(crops, **options) -> DeepfakeDataModule:
    datamodule = DeepfakeDataModule(str(crops), input_size=64, synthesis="sbi", **{"augment": "none", **options})
    datamodule.setup("fit")
    return datamodule


def test_extracted_crops_carry_landmarks(real_face_crops):
    crops = pd.read_parquet(real_face_crops / "crops.parquet")
    assert set(crops["label"]) == {REAL}
    assert all(len(points) == 12 for points in crops["landmarks"])
    assert crops.groupby("split")["group"].nunique().to_dict() == {"train": SBI_TRAIN_PEOPLE, "val": SBI_VAL_PEOPLE,
                                                                  "test": 2}


def test_sbi_training_set_pairs_each_real_with_a_fake_of_another_source(real_face_crops):
    datamodule = sbi_datamodule(real_face_crops)
    train = datamodule.split_dataset("train")
    reals = len(train) // 2
    assert reals == 2 * SBI_TRAIN_PEOPLE
    assert train.labels.tolist() == [REAL] * reals + [FAKE] * reals
    assert train.crop_paths[:reals] == train.crop_paths[reals:]
    assert not set(train.source_ids[:reals]) & set(train.source_ids[reals:])  # video AUC keeps them apart
    assert train.fake_maker.can_swap  # 8 people with landmarks


def test_every_sbi_fake_differs_from_its_real_through_the_dataset_path(real_face_crops):
    """The pitfall: a mask that never reaches 1 (0.99999994 after warping) left ~7 % of "fakes"
    identical to the real. Every synthetic item must change its face, swaps and self-blends alike."""
    train = sbi_datamodule(real_face_crops, swap_fraction=0.5).split_dataset("train")
    reals = len(train) // 2
    face = np.zeros((SBI_CROP_SIZE, SBI_CROP_SIZE), bool)
    x0, y0, x1, y1 = (round(v) for v in crop_face_box(SBI_CROP_SIZE, 1.3))
    face[y0:y1, x0:x1] = True
    for _ in range(5):  # five epochs of draws
        for index in range(reals):
            real, real_label = train.load_image(index)
            fake, fake_label = train.load_image(reals + index)
            assert (real_label, fake_label) == (REAL, FAKE)
            assert fake.shape == real.shape and fake.dtype == np.uint8
            change = np.abs(fake.astype(int) - real.astype(int)).mean(axis=2)
            assert change[face].mean() > 1.0, f"item {index}: the fake is (almost) the real"


def test_fake_maker_swaps_identities_only_when_asked_and_possible(real_face_crops):
    rows = pd.read_parquet(real_face_crops / "crops.parquet")
    rows = rows[rows["split"] == "train"]
    paths = [str(real_face_crops / p) for p in rows["crop_path"]]
    points = [np.asarray(v, np.float32).reshape(-1, 2) for v in rows["landmarks"]]
    groups = rows["group"].to_numpy()
    image = read_rgb(paths[0])
    blend_only = FakeMaker(paths, points, groups, 1.3, swap_fraction=0.0)
    expected, _ = self_blend(image, points[0], np.random.default_rng(3))
    assert np.array_equal(blend_only.make(image, points[0], groups[0], np.random.default_rng(3)), expected)
    always_swap = FakeMaker(paths, points, groups, 1.3, swap_fraction=1.0)
    swapped = always_swap.make(image, points[0], groups[0], np.random.default_rng(3))
    assert not np.array_equal(swapped, expected)
    one_person = FakeMaker(paths[:2], points[:2], groups[:1].repeat(2), 1.3, swap_fraction=1.0)
    assert not one_person.can_swap
    assert not FakeMaker(paths, [None] * len(paths), groups, 1.3, swap_fraction=1.0).can_swap


def test_fake_maker_uses_the_box_ellipse_without_landmarks(real_face_crops):
    path = str(next(real_face_crops.glob("crops/*/*.jpg")))
    image = read_rgb(path)
    maker = FakeMaker([path], [None], np.array(["a"]), 1.3, swap_fraction=0.5)
    fake = maker.make(image, None, "a", np.random.default_rng(0))
    expected, _ = self_blend(image, None, np.random.default_rng(0), box=crop_face_box(image.shape[0], 1.3))
    assert np.array_equal(fake, expected)


def test_validation_without_fakes_gets_the_same_fixed_fakes_every_time(real_face_crops):
    datamodule = sbi_datamodule(real_face_crops)
    val = datamodule.split_dataset("val")
    assert val.labels.tolist() == [REAL] * (2 * SBI_VAL_PEOPLE) + [FAKE] * (2 * SBI_VAL_PEOPLE)
    first = [val.load_image(i)[0] for i in range(len(val))]
    again = datamodule.split_dataset("val")
    assert all(np.array_equal(a, again.load_image(i)[0]) for i, a in enumerate(first))
    assert not val.degradations  # evaluation is never degraded


def test_evaluation_split_with_its_own_fakes_is_not_synthesised(tiny_crops):
    datamodule = DeepfakeDataModule(str(tiny_crops), input_size=48, synthesis="sbi")
    datamodule.setup("fit")
    assert not datamodule.split_dataset("val").synthetic.any()
    train = datamodule.split_dataset("train")
    assert train.synthetic.sum() == len(train) // 2 == 20  # the tiny set's 20 fake crops are dropped


def fixed_draw_copy(dataset: CropDataset, degradations: dict[str, float], seed: int) -> CropDataset:
    """The same items with per-item seeded draws, so with and without degradations the fakes are identical."""
    return CropDataset(dataset.crop_paths, dataset.labels, dataset.source_ids, dataset.transform,
                       synthetic=dataset.synthetic, landmarks=dataset.landmarks, groups=dataset.groups,
                       fake_maker=dataset.fake_maker, degradations=degradations, seed=seed, fixed_draws=True,
                       downscale_factors=dataset.downscale_factors, h264_crfs=dataset.h264_crfs)


def test_degradations_come_after_the_fake_and_hit_reals_and_fakes_alike(real_face_crops):
    train = sbi_datamodule(real_face_crops).split_dataset("train")
    plain, coded = fixed_draw_copy(train, {}, 0), fixed_draw_copy(train, {"h264": 1.0}, 0)
    for index in range(len(train)):
        before, after = plain.load_image(index)[0], coded.load_image(index)[0]
        assert not np.array_equal(before, after)
        # exactly the same real or fake, re-encoded at one of the CRFs
        assert any(np.array_equal(after, h264(before, crf)) for crf in H264_CRFS), index

    changed = {REAL: [], FAKE: []}
    for seed in range(8):
        plain, blurred = fixed_draw_copy(train, {}, seed), fixed_draw_copy(train, {"blur": 0.5}, seed)
        for index in range(len(train)):
            changed[train.labels[index]].append(not np.array_equal(plain.load_image(index)[0],
                                                                   blurred.load_image(index)[0]))
    assert 0.35 < np.mean(changed[REAL]) < 0.65
    assert 0.35 < np.mean(changed[FAKE]) < 0.65


def test_sbi_options_are_checked(real_face_crops):
    for options in ({"synthesis": "gan"}, {"swap_fraction": 2.0}, {"degradations": {"jpeg": 3.0}}):
        with pytest.raises(DfdetectError) as err:
            DeepfakeDataModule(str(real_face_crops), **options)
        assert err.value.code == "bad_config"


def test_clean_pairs_give_each_degraded_item_its_clean_copy_under_one_augmentation(real_face_crops):
    """A degraded item's clean copy is the same crop (the same fake, for a fake), same flip/rotation/colour
    draw, without the degradation; an item no degradation step changed is flagged 0."""
    train = sbi_datamodule(real_face_crops, augment="dfb", degradations={"downscale": 0.5, "h264": 0.5},
                           clean_pairs=True).split_dataset("train")
    reals = len(train) // 2
    flags = {REAL: [], FAKE: []}
    for index in [*range(reals), *range(reals, 2 * reals)]:
        train.reseed(index)
        image, label, undegraded = train.load_views(index)
        train.reseed(index)
        tensor, label_tensor, _, clean, degraded = train[index]
        assert tensor.shape == clean.shape == (3, 64, 64)
        assert float(label_tensor) == label
        flags[int(label)].append(float(degraded))
        if image is undegraded:
            assert torch.equal(tensor, clean) and degraded == 0  # no step drawn: nothing to compare
        else:
            assert degraded == 1 and not torch.equal(tensor, clean)
    for label in (REAL, FAKE):
        assert 0 < np.mean(flags[label]) < 1  # some items drew no degradation step at p = 0.5 each


def test_items_are_plain_triples_without_anchors(real_face_crops):
    train = sbi_datamodule(real_face_crops, degradations={"h264": 1.0}).split_dataset("train")
    assert len(train[0]) == 3


def test_validation_at_video_quality_adds_a_degraded_copy_of_every_item_as_its_own_source(real_face_crops):
    datamodule = sbi_datamodule(real_face_crops, val_video_face_px=48)
    clean = sbi_datamodule(real_face_crops).split_dataset("val")
    val = datamodule.split_dataset("val")
    items = len(clean)
    assert len(val) == 2 * items
    assert val.labels.tolist() == clean.labels.tolist() * 2
    assert not set(val.source_ids[:items]) & set(val.source_ids[items:])  # the monitor ranks them apart
    factor = SBI_CROP_SIZE / (1.3 * 48)
    for index in range(items):
        first, label = val.load_image(index)
        assert np.array_equal(first, clean.load_image(index)[0])  # the clean half is the plain validation set
        if label == REAL:  # a real has no random draw: its copy is exactly the crop at video quality
            expected = video_quality(read_rgb(val.crop_paths[index]), factor, VIDEO_QUALITY_CRF)
            assert np.array_equal(val.load_image(items + index)[0], expected)
    assert datamodule.split_dataset("train").video_face_px.sum() == 0  # training is degraded by its own steps


def test_video_quality_validation_needs_a_plausible_face_size(real_face_crops):
    with pytest.raises(DfdetectError) as err:
        DeepfakeDataModule(str(real_face_crops), val_video_face_px=4)
    assert err.value.code == "bad_config" and "val_video_face_px" in err.value.message


def test_the_recipe_strengths_reach_the_training_items(real_face_crops):
    train = sbi_datamodule(real_face_crops, h264_crfs=[40]).split_dataset("train")
    plain, coded = fixed_draw_copy(train, {}, 0), fixed_draw_copy(train, {"h264": 1.0}, 0)
    for index in (0, len(train) - 1):  # a real and a fake
        assert np.array_equal(coded.load_image(index)[0], h264(plain.load_image(index)[0], 40))
    with pytest.raises(DfdetectError):
        DeepfakeDataModule(str(real_face_crops), downscale_factors=[0.5, 2.0])
