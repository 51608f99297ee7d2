import json

import pytest

from dfdetect.datasets import build_index
from dfdetect.errors import DfdetectError
from dfdetect.records import FAKE, REAL


def _uadfv(fixtures):
    return json.loads((fixtures / "deepfakebench" / "UADFV.json").read_text())["UADFV"]


def _frames_on_disk(root, touch, uadfv, videos_per_class=3):
    """Frames of the first few videos of each class, as the real JSON names them."""
    written = {}
    for label_name, splits in uadfv.items():
        for video_id in list(splits["test"])[:videos_per_class]:
            frames = splits["test"][video_id]["frames"]
            for frame in frames:
                touch(root / frame)
            written[video_id] = (label_name, frames)
    return written


def test_the_json_listing_every_video_in_every_split_is_refused(tmp_path, fixtures):
    with pytest.raises(DfdetectError) as caught:
        build_index("deepfakebench", tmp_path, json_path=fixtures / "deepfakebench" / "UADFV.json")
    assert caught.value.code == "bad_input"
    assert caught.value.message.startswith("98 of 98 videos are listed in more than one split")
    assert "--json-splits test" in caught.value.hint


def test_frames_of_the_test_split_with_default_labels(tmp_path, touch, fixtures):
    written = _frames_on_disk(tmp_path, touch, _uadfv(fixtures))
    index = build_index("deepfakebench", tmp_path, json_path=fixtures / "deepfakebench" / "UADFV.json",
                        json_splits=["test"])
    frames_on_disk = sum(len(frames) for _, frames in written.values())
    assert len(index.rows) == frames_on_disk
    total_frames = sum(len(v["frames"]) for splits in _uadfv(fixtures).values() for v in splits["test"].values())
    assert len(index.missing) == total_frames - frames_on_disk
    by_path = {row.path: row for row in index.rows}
    for video_id, (label_name, frames) in written.items():
        row = by_path[str(tmp_path / frames[0])]
        assert row.media_type == "image" and row.split == "test" and row.group == video_id
        assert row.label == (REAL if label_name == "UADFV_Real" else FAKE)
        assert row.method == ("" if row.label == REAL else "UADFV_Fake")
    assert "label mapping: UADFV_Fake → fake, UADFV_Real → real" in index.notes


def test_video_rows_hash_split_and_label_map(tmp_path, touch, fixtures):
    for video_id in ("0000", "0001"):
        touch(tmp_path / f"UADFV/real/videos/{video_id}.mp4")
        touch(tmp_path / f"UADFV/fake/videos/{video_id}_fake.mp4")
    index = build_index("deepfakebench", tmp_path, json_path=fixtures / "deepfakebench" / "UADFV.json",
                        unit="video", split="hash", label_map={"UADFV_Fake": "real"})
    rows = {row.path.removeprefix(str(tmp_path) + "/"): row for row in index.rows}
    assert sorted(rows) == ["UADFV/fake/videos/0000_fake.mp4", "UADFV/fake/videos/0001_fake.mp4",
                            "UADFV/real/videos/0000.mp4", "UADFV/real/videos/0001.mp4"]
    assert all(row.media_type == "video" and row.label == REAL for row in rows.values())
    assert rows["UADFV/fake/videos/0000_fake.mp4"].group == rows["UADFV/real/videos/0000.mp4"].group == "0000"
    assert rows["UADFV/fake/videos/0000_fake.mp4"].split == rows["UADFV/real/videos/0000.mp4"].split
    assert len(index.missing) == 98 - 4


def test_label_map_and_json_path_are_checked(tmp_path, fixtures):
    json_path = fixtures / "deepfakebench" / "UADFV.json"
    with pytest.raises(DfdetectError) as caught:
        build_index("deepfakebench", tmp_path, json_path=json_path, label_map={"UADFV_real": "real"})
    assert caught.value.code == "bad_config" and "UADFV_Real" in caught.value.hint
    with pytest.raises(DfdetectError) as caught:
        build_index("deepfakebench", tmp_path, json_path=json_path, label_map={"UADFV_Real": "genuine"})
    assert caught.value.code == "bad_config"
    with pytest.raises(DfdetectError) as caught:
        build_index("deepfakebench", tmp_path)
    assert caught.value.code == "bad_config" and "--json" in caught.value.hint


def test_compression_level_under_the_split_is_followed(tmp_path, touch):
    def entry(label, video_id, compression):
        return {"label": label, "frames": [f"FF/{compression}/frames/{video_id}/000.png"]}

    bench = {"FaceForensics++": {
        "FF-real": {"train": {c: {"000": entry("FF-real", "000", c)} for c in ("c23", "c40")}},
        "FF-DF": {"train": {c: {"000_003": entry("FF-DF", "000_003", c)} for c in ("c23", "c40")}}}}
    json_path = tmp_path / "FaceForensics++.json"
    json_path.write_text(json.dumps(bench))
    for compression in ("c23", "c40"):
        touch(tmp_path / f"FF/{compression}/frames/000/000.png")
        touch(tmp_path / f"FF/{compression}/frames/000_003/000.png")
    rows = build_index("deepfakebench", tmp_path, json_path=json_path, compression="c40").rows
    assert sorted((row.path.removeprefix(str(tmp_path) + "/"), row.label, row.method) for row in rows) == [
        ("FF/c40/frames/000/000.png", REAL, ""), ("FF/c40/frames/000_003/000.png", FAKE, "FF-DF")]
