from collections import Counter
from pathlib import Path

import pytest

from dfdetect.datasets.splits import check_fractions, hash_split, leading_token, shared_identities
from dfdetect.errors import DfdetectError


def test_hash_split_follows_the_fractions_and_is_stable():
    groups = [f"group{i}" for i in range(20000)]
    splits = [hash_split(group, 0.1, 0.2) for group in groups]
    counts = Counter(splits)
    assert abs(counts["train"] / len(groups) - 0.7) < 0.015
    assert abs(counts["val"] / len(groups) - 0.1) < 0.015
    assert abs(counts["test"] / len(groups) - 0.2) < 0.015
    assert splits == [hash_split(group, 0.1, 0.2) for group in groups]


def test_changing_the_val_fraction_never_moves_test_groups():
    groups = [f"g{i}" for i in range(3000)]
    test_before = {g for g in groups if hash_split(g, 0.1, 0.1) == "test"}
    test_after = {g for g in groups if hash_split(g, 0.3, 0.1) == "test"}
    assert test_before == test_after and len(test_before) > 200


def test_bad_fractions_are_refused():
    with pytest.raises(DfdetectError) as caught:
        check_fractions(0.6, 0.5)
    assert caught.value.code == "bad_config"


def test_leading_token():
    assert leading_token("001_neutral") == "001"
    assert leading_token("id9-id26_0000") == "id9"
    assert leading_token("plain") == "plain"
    assert leading_token("_hidden") == "_hidden"


def test_identity_from_shared_leading_tokens_only():
    names = ["001_neutral.jpg", "001_sbi.jpg", "002_neutral.jpg", "002_sbi.jpg", "003_only.jpg", "solo.jpg"]
    identities = shared_identities([Path(name) for name in names])
    assert identities == {Path("001_neutral.jpg"): "001", Path("001_sbi.jpg"): "001",
                          Path("002_neutral.jpg"): "002", Path("002_sbi.jpg"): "002"}


def test_naming_prefixes_are_not_identities():
    camera = [Path(f"IMG_{i:04d}.jpg") for i in range(6)]
    assert shared_identities(camera) == {}
    by_class = [Path("real_001.png"), Path("real_002.png"), Path("fake_001.png"), Path("a_1.png"), Path("a_2.png"),
                Path("b_1.png"), Path("b_2.png")]
    assert shared_identities(by_class) == {Path("a_1.png"): "a", Path("a_2.png"): "a", Path("b_1.png"): "b",
                                           Path("b_2.png"): "b"}
