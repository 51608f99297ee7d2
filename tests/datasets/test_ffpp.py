import json
from importlib import resources

import pytest

from dfdetect.datasets import build_index
from dfdetect.datasets.ffpp import dfd_group
from dfdetect.datasets.splits import hash_split
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL, SPLITS


def _official(fixtures):
    return {split: json.loads((fixtures / "ffpp" / f"{split}.json").read_text()) for split in SPLITS}


def _ffpp_tree(root, touch, official, compression="c23", pairs_per_split=3):
    """Originals and Deepfakes/FaceSwap fakes named from the first pairs of each official list."""
    chosen = {split: pairs[:pairs_per_split] for split, pairs in official.items()}
    for pairs in chosen.values():
        for target, source in pairs:
            for video_id in (target, source):
                touch(root / "original_sequences/youtube" / compression / "videos" / f"{video_id}.mp4")
            for method in ("Deepfakes", "FaceSwap"):
                for a, b in ((target, source), (source, target)):
                    touch(root / "manipulated_sequences" / method / compression / "videos" / f"{a}_{b}.mp4")
            touch(root / "manipulated_sequences/Deepfakes/masks/videos" / f"{target}_{source}.mp4")
    return chosen


def test_package_split_lists_are_the_official_files(fixtures):
    for split in SPLITS:
        shipped = resources.files("dfdetect.datasets").joinpath(f"ffpp_splits/{split}.json").read_bytes()
        assert shipped == (fixtures / "ffpp" / f"{split}.json").read_bytes()


def test_splits_groups_and_sources_follow_the_official_pairs(tmp_path, touch, fixtures):
    chosen = _ffpp_tree(tmp_path, touch, _official(fixtures))
    index = build_index("ffpp", tmp_path)
    rows = {row.path.removeprefix(str(tmp_path) + "/"): row for row in index.rows}
    assert len(rows) == 9 * 2 + 9 * 2 * 2
    for split, pairs in chosen.items():
        for target, source in pairs:
            group = "_".join(sorted((target, source)))
            for video_id in (target, source):
                real = rows[f"original_sequences/youtube/c23/videos/{video_id}.mp4"]
                assert (real.split, real.group, real.label, real.identity) == (split, group, REAL, video_id)
            fake = rows[f"manipulated_sequences/FaceSwap/c23/videos/{source}_{target}.mp4"]
            assert (fake.split, fake.group, fake.label, fake.method, fake.compression) == (
                split, group, FAKE, "FaceSwap", "c23")
            assert fake.source == str(tmp_path / f"original_sequences/youtube/c23/videos/{source}.mp4")
    assert len(index.missing) == (1000 - 18) + 2 * (1000 - 18)
    assert "masks: Deepfakes has 9 mask videos, covering 9 of its 18 indexed fakes" in index.notes


def test_method_selection_and_compression_choice(tmp_path, touch, fixtures):
    official = _official(fixtures)
    _ffpp_tree(tmp_path, touch, official)
    _ffpp_tree(tmp_path, touch, official, compression="c40", pairs_per_split=1)
    index = build_index("ffpp", tmp_path, compression="c40", methods=["FaceSwap", "NeuralTextures"])
    assert {row.method for row in index.rows} == {"", "FaceSwap"}
    assert {row.compression for row in index.rows} == {"c40"}
    assert len(index.rows) == 3 * 2 + 3 * 2
    assert "requested methods not found at c40: NeuralTextures" in index.notes
    with pytest.raises(DfdetectError) as caught:
        build_index("ffpp", tmp_path, methods=["DeepFaceLab"])
    assert caught.value.code == "bad_config"
    with pytest.raises(DfdetectError) as caught:
        build_index("ffpp", tmp_path, compression="raw")
    assert caught.value.code == "empty_dataset" and "c23, c40" in caught.value.hint


def test_deepfakedetection_is_split_by_target_actor(tmp_path, touch, fixtures):
    _ffpp_tree(tmp_path, touch, _official(fixtures), pairs_per_split=1)
    actors = [f"{n:02d}" for n in range(1, 29)]
    for actor in actors:
        touch(tmp_path / f"original_sequences/actors/c23/videos/{actor}__walking_down_street.mp4")
    for target, face in (("01", "02"), ("05", "17"), ("28", "03")):
        touch(tmp_path / f"manipulated_sequences/DeepFakeDetection/c23/videos/{target}_{face}__walking_down_street"
                         "__ABC123XY.mp4")
    touch(tmp_path / "manipulated_sequences/DeepFakeDetection/c23/videos/strange.mp4")
    index = build_index("ffpp", tmp_path)
    dfd = [row for row in index.rows if row.group.startswith("actor_")]
    assert len(dfd) == 28 + 3
    for row in dfd:
        actor = row.group.removeprefix("actor_")
        assert row.split == hash_split(dfd_group(actor))
    fake = next(row for row in dfd if row.path.endswith("05_17__walking_down_street__ABC123XY.mp4"))
    assert (fake.label, fake.method, fake.group) == (FAKE, "DeepFakeDetection", "actor_05")
    assert fake.source == str(tmp_path / "original_sequences/actors/c23/videos/05__walking_down_street.mp4")
    assert any(note.startswith("1 videos fit neither") for note in index.notes)
