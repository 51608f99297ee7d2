"""The review queue: which records go in, in what order, and what the gallery carries for each."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.model.resources import default_model
from dfdetect.results import read_jsonl
from dfdetect.review.queue import (
    FACE_PIXELS,
    QueueItem,
    export_queue,
    margin_logit,
    render_gallery,
    scan_model_path,
    select_items,
)
from dfdetect.scan.pipeline import scan_paths


def gallery_data(page: str) -> dict:
    """The queue JSON inlined in index.html, as the browser's JSON.parse will read it."""
    text = re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(text)


def decode(uri: str) -> np.ndarray:
    payload = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)


def test_margin_is_the_logit_distance_from_the_middle_of_the_review_band():
    record = {"probability": 0.5, "threshold": 0.8, "clear_threshold": 0.2}
    assert margin_logit(record) == pytest.approx(0.0)  # logit(0.8) = -logit(0.2): the middle is 0
    record = {"probability": 0.9, "threshold": 0.8, "clear_threshold": 0.2}
    assert margin_logit(record) == pytest.approx(math.log(9))
    two_way = {"probability": 0.5, "threshold": 0.8, "clear_threshold": 0.8}
    assert margin_logit(two_way) == pytest.approx(math.log(4))


def test_queue_holds_review_and_fake_files_most_uncertain_first(scan_results, tmp_path):
    records = {r["path"]: r for r in read_jsonl(scan_results)}
    items = export_queue(scan_results, tmp_path / "queue")
    expected = sorted((r for r in records.values() if r["triage"] in ("review", "fake")), key=margin_logit)
    assert [i.path for i in items] == [r["path"] for r in expected]
    assert {"review", "fake"} <= {r["triage"] for r in records.values()}  # the fixture exercises both
    assert any(r["triage"] == "real" for r in records.values())  # and leaves cleared files out
    table = pd.read_csv(tmp_path / "queue" / "queue.csv")
    assert table["path"].tolist() == [i.path for i in items]
    assert table["rank"].tolist() == list(range(1, len(items) + 1))
    assert table["margin_logit"].is_monotonic_increasing
    first = records[items[0].path]
    row = table.iloc[0]
    assert row["probability"] == pytest.approx(first["probability"])
    assert (row["flag_threshold_name"], row["clear_threshold_name"]) == ("fpr@0.01", "eer")
    assert row["flag_threshold"] == pytest.approx(first["threshold"])
    assert row["clear_threshold"] == pytest.approx(first["clear_threshold"])
    assert row["top_face_probability"] == pytest.approx(first["top_faces"][0]["probability"])


def test_gallery_inlines_face_crops_cut_where_the_scan_found_the_faces(scan_results, tmp_path):
    export_queue(scan_results, tmp_path / "queue", include=["review"])
    page = (tmp_path / "queue" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch
    data = gallery_data(page)
    records = {r["path"]: r for r in read_jsonl(scan_results)}
    video = next(i for i in data["items"] if i["media_type"] == "video")
    assert [f["frame_index"] for f in video["faces"]] == [f["frame_index"]
                                                          for f in records[video["path"]]["top_faces"][:3]]
    for item in data["items"]:
        assert item["triage"] == "review"
        for face in item["faces"]:
            crop = decode(face["crop_jpeg"])
            assert crop.shape == (FACE_PIXELS, FACE_PIXELS, 3)
            # a face fills the middle of the crop: skin, not the black fill of a box cut in the wrong place
            centre = crop[FACE_PIXELS // 3: 2 * FACE_PIXELS // 3, FACE_PIXELS // 3: 2 * FACE_PIXELS // 3]
            assert centre.mean() > 60 and centre.std() > 5


def test_heatmap_and_evidence_from_the_record_appear_beside_the_score(scan_results, tmp_path):
    records = list(read_jsonl(scan_results))
    target = next(r for r in records if r["triage"] == "review")
    heatmap = np.zeros((32, 32, 3), np.uint8)
    heatmap[8:24, 8:24] = (0, 0, 255)
    cv2.imwrite(str(tmp_path / "heat.png"), heatmap)
    target["top_faces"][0]["heatmap"] = str(tmp_path / "heat.png")
    target["provenance"] = {"c2pa": {"status": "valid", "signer": "Test CA", "ai_generated": True},
                            "watermark": {"status": "absent"}}
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in records))
    export_queue(edited, tmp_path / "queue")
    item = next(i for i in gallery_data((tmp_path / "queue" / "index.html").read_text())["items"]
                if i["path"] == target["path"])
    assert np.array_equal(decode(item["faces"][0]["heatmap_png"]), heatmap)
    assert item["faces"][1:] == [] or item["faces"][1]["heatmap_png"] == ""
    assert item["evidence"] == 'C2PA valid, untrusted signer "Test CA", declares AI generation · no watermark'
    assert pd.read_csv(tmp_path / "queue" / "queue.csv").set_index("path").loc[target["path"], "evidence"] \
        == item["evidence"]


def test_a_file_gone_since_the_scan_stays_in_the_queue_without_crops(scan_results, tmp_path):
    records = list(read_jsonl(scan_results))
    target = next(r for r in records if r["triage"] == "fake")
    target["path"] = str(tmp_path / "moved_away.jpg")
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in records))
    items = export_queue(edited, tmp_path / "queue")
    moved = next(i for i in items if i.path == target["path"])
    assert moved.note.startswith("face crops unavailable") and all(f.crop_jpeg == "" for f in moved.faces)


def test_a_path_cannot_end_the_inlined_script():
    item = QueueItem(rank=1, path="/data/x</script><script>alert(1)</script>.jpg", triage="review", probability=0.5,
                     margin_logit=0.0, flag_threshold_name="f", flag_threshold=0.8, clear_threshold_name="c",
                     clear_threshold=0.2, media_type="image", faces_scored=1, model_sha256="0" * 64)
    page = render_gallery([item], "t", "results.jsonl")
    assert page.count("</script>") == 2  # the two script elements of the template, nothing from the data
    assert gallery_data(page)["items"][0]["path"] == item.path


def test_unknown_decision_names_are_refused():
    with pytest.raises(DfdetectError, match="unknown decisions"):
        select_items([], include=["maybe"])


def test_cli_writes_the_queue_and_names_it(scan_results, tmp_path, capsys):
    assert main(["review", "export", str(scan_results), "--out", str(tmp_path / "q"), "--limit", "1"]) == 0
    assert len(pd.read_csv(tmp_path / "q" / "queue.csv")) == 1
    assert str(Path(tmp_path / "q" / "index.html")) in capsys.readouterr().out


def test_explain_draws_for_each_queued_face_the_map_scan_explain_draws(scan_results, tmp_path):
    """`review export --explain` cuts each queued face again with the model's own preprocessing and draws
    the occlusion map: the picture `scan --explain` draws for the same face, up to resampling noise (the
    scanner cuts from the frame it decoded for detection, the queue from a fresh decode)."""
    records = list(read_jsonl(scan_results))
    target = next(r for r in records if r["triage"] in ("review", "fake") and r["media_type"] == "image")
    explained = tmp_path / "explained.jsonl"
    scan_paths([target["path"]], default_model(), explained, device="cpu", workers=0, progress=False,
               flag="fpr@0.01", clear="eer", explain=True)
    (scanned,) = read_jsonl(explained)
    expected = cv2.imread(scanned["top_faces"][0]["heatmap"], cv2.IMREAD_UNCHANGED)
    assert main(["review", "export", str(scan_results), "--out", str(tmp_path / "q"), "--explain"]) == 0
    items = gallery_data((tmp_path / "q" / "index.html").read_text())["items"]
    drawn = [face for item in items for face in item["faces"]]
    assert drawn and all(face["heatmap_png"] for face in drawn)  # every queued face has its map
    assert len(list((tmp_path / "q" / "heatmaps").glob("*.png"))) == len(drawn)
    item = next(i for i in items if i["path"] == target["path"])
    drawn_here, side = decode(item["faces"][0]["heatmap_png"]).astype(int), expected.shape[0]
    crop_here, crop_scan = drawn_here[:, :side], expected[:, :side].astype(int)
    map_here, map_scan = drawn_here[:, side:], expected[:, side:].astype(int)
    assert drawn_here.shape == expected.shape and np.abs(crop_here - crop_scan).mean() < 1.0  # the same face
    assert np.abs(map_here - map_scan).mean() < 3.0 < np.abs(map_scan - crop_scan).mean()  # the same map, not none


def test_explain_without_a_scan_manifest_asks_for_the_model(scan_results, tmp_path):
    lone = tmp_path / "lone.jsonl"
    lone.write_text(scan_results.read_text())
    with pytest.raises(DfdetectError, match="pass --model"):
        scan_model_path(lone)
