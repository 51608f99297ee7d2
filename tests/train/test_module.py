from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dfdetect.errors import DfdetectError
from dfdetect.model.checkpoint import load_checkpoint
from dfdetect.model.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract, Preprocessing
from dfdetect.train.augment import AUGMENTATION_PRESETS, build_transforms
from dfdetect.train.data import (
    DeepfakeDataModule,
    SourceBalancedSampler,
    class_balanced_weights,
    select_per_source,
)
from dfdetect.train.module import (
    DetectorModule,
    RampedEma,
    VideoAUROC,
    mean_by_group,
    quality_excess,
    smooth_labels,
    warmup_factor,
)

# ---- schedule, loss and metric maths ----


def test_warmup_factor_ramps_then_decays_to_zero():
    assert warmup_factor(0, 10, 110) == pytest.approx(0.1)
    assert warmup_factor(9, 10, 110) == pytest.approx(1.0)
    assert warmup_factor(10, 10, 110) == pytest.approx(1.0)
    assert warmup_factor(60, 10, 110) == pytest.approx(0.5)
    assert warmup_factor(110, 10, 110) == pytest.approx(0.0)
    assert warmup_factor(500, 10, 110) == pytest.approx(0.0)


def test_poly_schedule_after_warm_up():
    assert warmup_factor(4, 10, 110, "poly") == pytest.approx(0.5)
    assert warmup_factor(10, 10, 110, "poly", poly_power=1.0) == pytest.approx(1.0)
    assert warmup_factor(60, 10, 110, "poly", poly_power=1.0) == pytest.approx(0.5)
    assert warmup_factor(60, 10, 110, "poly", poly_power=0.9) == pytest.approx(0.5**0.9)
    assert warmup_factor(110, 10, 110, "poly") == pytest.approx(0.0)


def test_ema_decay_ramps_up_to_its_ceiling():
    ema = RampedEma(torch.nn.Linear(1, 1), 0.999)
    assert ema.get_decay(0) == pytest.approx(0.1)
    assert ema.get_decay(90) == pytest.approx(0.91)
    assert ema.get_decay(10**6) == 0.999


def test_ema_update_averages_parameters_and_copies_buffers():
    model = torch.nn.BatchNorm1d(2)
    ema = RampedEma(model, 0.999)  # starts as a copy: weight 1
    with torch.no_grad():
        model.weight.copy_(torch.tensor([2.0, 4.0]))
        model.running_mean.copy_(torch.tensor([5.0, 6.0]))
    ema.update(model, step=30)  # decay (1 + 30) / (10 + 30) = 0.775
    assert ema.module.weight.tolist() == pytest.approx([0.775 * 1 + 0.225 * 2, 0.775 * 1 + 0.225 * 4])
    assert ema.module.running_mean.tolist() == [5.0, 6.0]
    assert model.weight.tolist() == [2.0, 4.0]


def test_ema_module_evaluates_with_the_average_and_trains_the_network():
    module = DetectorModule(backbone="test_efficientnet", input_size=32, ema_decay=0.99)
    assert not any(p.requires_grad for p in module.ema_net.parameters())
    with torch.no_grad():
        for p in module.ema_net.parameters():
            p.zero_()
    batch = torch.randn(2, 3, 32, 32)
    module.train()
    assert module.ema_net.training is False
    assert module(batch).abs().sum() > 0  # the trained network
    module.eval()
    assert torch.equal(module(batch), module.ema_net(batch))  # the average
    assert all(k.startswith(("net.", "ema_net.")) for k in module.state_dict())


@pytest.mark.parametrize("options", [{"optimizer": "lamb"}, {"schedule": "step"}, {"ema_decay": 1.0},
                                     {"quality_consistency": -1.0}])
def test_module_rejects_unknown_training_options(options):
    with pytest.raises(DfdetectError) as err:
        DetectorModule(backbone="test_efficientnet", **options)
    assert err.value.code == "bad_config"


def test_channels_last_changes_the_memory_layout_not_the_numbers():
    torch.manual_seed(0)
    nhwc = DetectorModule(backbone="test_efficientnet", input_size=32).eval()
    nchw = DetectorModule(backbone="test_efficientnet", input_size=32, channels_last=False).eval()
    nchw.load_state_dict(nhwc.state_dict())
    convs = [m.weight for m in nhwc.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert all(m.weight.is_contiguous() for m in nchw.net.modules() if isinstance(m, torch.nn.Conv2d))
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(images), nchw(images), atol=1e-5, rtol=1e-4)


def test_smooth_labels_moves_targets_towards_half():
    assert smooth_labels(torch.tensor([0.0, 1.0]), 0.1).tolist() == pytest.approx([0.05, 0.95])


def test_quality_excess_penalises_only_degraded_reals_scoring_above_their_clean_copy():
    degraded = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    clean = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    excess = quality_excess(degraded, clean)
    assert excess.item() == pytest.approx((1.0 + 0 + 0) / 3)
    excess.backward()
    assert degraded.grad.tolist() == pytest.approx([1.0 / 3, 0.0, 0.0])
    assert clean.grad is None  # the clean score is the target: never pulled up towards the degraded one


def test_training_step_trains_clean_copies_of_both_classes_and_compares_only_real_pairs():
    torch.manual_seed(0)
    module = DetectorModule(backbone="test_efficientnet", input_size=32, quality_consistency=2.0).eval()
    images, clean = torch.randn(5, 3, 32, 32), torch.randn(5, 3, 32, 32)
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0])
    plain = module.training_step((images, labels, torch.arange(5)), 0)
    undegraded = module.training_step((images, labels, torch.arange(5), clean, torch.zeros(5)), 0)
    degraded = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])  # two reals and a fake changed by a degradation
    paired = module.training_step((images, labels, torch.arange(5), clean, degraded), 0)
    with torch.no_grad():
        logits = module(torch.cat([images, clean[:3]])).squeeze(1)
    targets = torch.tensor([0.0, 0, 1, 1, 0, 0, 0, 1])  # the clean fake is trained as a fake
    cross_entropy = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    expected = cross_entropy + 2.0 * quality_excess(logits[:2], logits[5:7])
    assert undegraded.item() == pytest.approx(plain.item())
    assert paired.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mean_by_group():
    means, groups = mean_by_group(torch.tensor([1.0, 3.0, 10.0, 5.0]), torch.tensor([7, 7, 2, 7]))
    assert groups.tolist() == [2, 7]
    assert means.tolist() == pytest.approx([10.0, 3.0])


def test_video_auroc_averages_logits_per_source_before_ranking():
    # frame level the fake video's second frame ranks below a real frame; per video the fakes win
    logits = torch.tensor([-2.0, 0.5, 3.0, -0.5, -3.0, 1.0])
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    sources = torch.tensor([0, 0, 1, 1, 2, 3])
    metric = VideoAUROC()
    metric.update(logits[:3], labels[:3], sources[:3])
    metric.update(logits[3:], labels[3:], sources[3:])
    video_scores = [-0.75, 1.25, -3.0, 1.0]
    assert metric.compute().item() == pytest.approx(roc_auc_score([0, 1, 0, 1], video_scores))
    assert metric.compute().item() == pytest.approx(1.0)
    assert roc_auc_score(labels, logits) < 1.0


# ---- augmentation ----


def test_eval_transform_matches_contract_preprocessing():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)
    transform = build_transforms("dfb", 64, IMAGENET_MEAN, IMAGENET_STD, train=False)
    tensor = transform(image=crop)["image"]
    expected = Preprocessing(input_size=64).to_tensor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA))[0]
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), expected, atol=1e-5)


def test_train_transform_is_random_but_reproducible_with_a_seed():
    crop = np.random.default_rng(1).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    first = build_transforms("dfb", 64, IMAGENET_MEAN, IMAGENET_STD, train=True, seed=3)
    second = build_transforms("dfb", 64, IMAGENET_MEAN, IMAGENET_STD, train=True, seed=3)
    runs_a = [first(image=crop)["image"] for _ in range(6)]
    runs_b = [second(image=crop)["image"] for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(runs_a, runs_b, strict=True))
    assert any(not torch.equal(runs_a[0], other) for other in runs_a[1:])


def test_dfdc_preset_cuts_out_face_parts_and_keeps_the_size():
    crop = np.full((80, 80, 3), 200, np.uint8)
    transform = build_transforms("dfdc", 64, IMAGENET_MEAN, IMAGENET_STD, train=True, seed=0)
    outputs = [transform(image=crop)["image"] for _ in range(40)]
    assert all(out.shape == (3, 64, 64) for out in outputs)
    black = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)])[:, None, None]
    blacked = [torch.isclose(out, black, atol=1e-4).all(dim=0).float().mean().item() for out in outputs]
    assert sum(share > 0.04 for share in blacked) >= 5  # cutout, padding or rotation borders
    assert sum(share == 0 for share in blacked) >= 10  # and untouched crops


def test_face_part_cutout_blacks_out_one_part():
    from dfdetect.train.augment import FACE_PARTS, FacePartCutout

    crop = np.full((100, 100, 3), 255, np.uint8)
    cut = FacePartCutout(p=1.0)
    mouth = cut.apply(crop, part="mouth")
    x0, y0, x1, y1 = FACE_PARTS["mouth"]
    assert (mouth[round(y0 * 100):round(y1 * 100), round(x0 * 100):round(x1 * 100)] == 0).all()
    assert (mouth == 0).mean() == pytest.approx((x1 - x0) * (y1 - y0), abs=0.01)
    assert (cut.apply(crop, part="left_half")[:, :50] == 0).all() and (crop == 255).all()


def test_face_parts_move_with_the_margin_the_crops_were_cut_at():
    from dfdetect.train.augment import FACE_PARTS, FacePartCutout, face_part_box

    assert face_part_box("eyes", 1.3) == pytest.approx(FACE_PARTS["eyes"])
    assert face_part_box("eyes", 2.6) == pytest.approx((0.34, 0.40, 0.66, 0.49))  # twice the margin: half the face
    wide = FacePartCutout(crop_margin=2.6, p=1.0).apply(np.full((100, 100, 3), 255, np.uint8), part="eyes")
    assert (wide[40:49, 34:66] == 0).all() and (wide == 0).sum() == 9 * 32 * 3


def test_unknown_augmentation_preset():
    assert {"none", "dfb", "dfdc"} <= set(AUGMENTATION_PRESETS)
    with pytest.raises(DfdetectError) as err:
        build_transforms("heavy", 64, IMAGENET_MEAN, IMAGENET_STD, train=True)
    assert err.value.code == "bad_config"


# ---- data ----


def test_select_per_source_caps_each_source():
    sources = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    random_pick = select_per_source(sources, 2, np.random.default_rng(0))
    assert np.bincount(sources[random_pick]).tolist() == [2, 2, 1]
    assert select_per_source(sources, 3, None).tolist() == [0, 2, 4, 5, 6, 7]
    assert select_per_source(sources, None, None).tolist() == list(range(8))


def test_class_balanced_weights_sum_equally_per_class():
    labels = np.array([0, 0, 0, 0, 1])
    weights = class_balanced_weights(labels)
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())


def test_balanced_sampler_draws_real_and_fake_equally_and_reseeds_by_epoch():
    labels = np.array([0.0] * 90 + [1.0] * 10, dtype=np.float32)
    sampler = SourceBalancedSampler(np.arange(100), labels, None, balance=True, seed=0)
    draws = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        draws.append(list(sampler))
    fake_share = labels[np.concatenate(draws)].mean()
    assert len(draws[0]) == len(sampler) == 100
    assert 0.45 < fake_share < 0.55
    assert draws[0] != draws[1]
    sampler.set_epoch(0)
    assert list(sampler) == draws[0]


def test_datamodule_items_and_frames_per_video(tiny_crops):
    datamodule = DeepfakeDataModule(str(tiny_crops), batch_size=4, input_size=48, frames_per_video=1)
    datamodule.setup("fit")
    image, label, source = datamodule.split_dataset("train")[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert label.dtype == torch.float32 and label.item() in (0.0, 1.0)
    assert source.dtype == torch.int64
    val = datamodule.split_dataset("val")
    assert len(val) == 8 and len(set(val.source_ids.tolist())) == 8
    assert len(datamodule.train_dataloader().sampler) == 20
    assert datamodule.summary()["train_fake"] == 20


def test_datamodule_without_test_split_refuses_test(make_crops):
    root = make_crops({"train": 2, "val": 1})
    datamodule = DeepfakeDataModule(str(root))
    with pytest.raises(DfdetectError) as err:
        datamodule.setup("test")
    assert err.value.code == "empty_dataset"


def test_datamodule_missing_crops_file(tmp_path):
    with pytest.raises(DfdetectError) as err:
        DeepfakeDataModule(str(tmp_path)).setup("fit")
    assert err.value.code == "missing_path"


# ---- module, checkpoint and contract ----


def test_module_contract_uses_backbone_normalisation():
    module = DetectorModule(backbone="efficientnet_lite0", input_size=96, crop_margin=1.5)
    contract = module.contract()
    assert contract.preprocessing == Preprocessing(input_size=96, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                                   crop_margin=1.5)
    assert contract.backbone == "efficientnet_lite0" and contract.detector == "blazeface"
    assert ModelContract.from_json(contract.to_json()) == contract


def test_module_rejects_bad_label_smoothing():
    with pytest.raises(DfdetectError) as err:
        DetectorModule(backbone="efficientnet_lite0", label_smoothing=1.5)
    assert err.value.code == "bad_config"


def test_checkpoint_loads_with_weights_only(fitted_run):
    state = torch.load(fitted_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["hyper_parameters"]["backbone"] == "efficientnet_b0"
    assert 0.0 <= state["dfdetect_val_metrics"]["val/auc"] <= 1.0
    assert state["dfdetect_training_data"]["train_real"] == 20


def test_load_checkpoint_matches_the_lightning_module(fitted_run):
    checkpoint = fitted_run / "checkpoints" / "last.ckpt"
    network, contract = load_checkpoint(str(checkpoint))
    module = DetectorModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    batch = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = network(batch)
        expected = module(batch)
    assert not network.training
    assert logits.shape == (3, 1) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected)
    assert contract.preprocessing.input_size == 64
    assert contract.backbone == "efficientnet_b0"
    assert contract.val_metrics["val/auc"] == module.val_metrics["val/auc"]
    assert set(contract.val_metrics) >= {"val/auc", "val/ap", "val/acc", "val/eer", "val/video_auc"}
    assert contract.checkpoint_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def test_load_checkpoint_rejects_other_files(tmp_path):
    path = tmp_path / "weights.ckpt"
    torch.save({"conv": torch.zeros(1)}, path)
    with pytest.raises(DfdetectError) as err:
        load_checkpoint(str(path))
    assert err.value.code == "bad_input"
    with pytest.raises(DfdetectError) as err:
        load_checkpoint(str(tmp_path / "absent.ckpt"))
    assert err.value.code == "missing_path"
