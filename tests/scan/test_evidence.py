"""Scan records carry the file's provenance evidence beside the score (never in it), and with --explain
a heatmap PNG per top face."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from dfdetect.results import read_results
from dfdetect.sample_data import london_images
from dfdetect.scan.pipeline import scan_paths
from tests.media.c2pa_signing import sign_jpeg


def test_provenance_and_heatmaps_sit_beside_an_unchanged_score(model_path, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(london_images()[0], folder / "plain.jpg")
    sign_jpeg(london_images()[0], folder / "signed.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not an image")

    with_evidence = {r["path"].rsplit("/", 1)[-1]: r for r in read_results(scan_paths(
        [folder], model_path, tmp_path / "a.parquet", workers=0, progress=False, explain=True).out)}
    plain_scan = {r["path"].rsplit("/", 1)[-1]: r for r in read_results(scan_paths(
        [folder], model_path, tmp_path / "b.jsonl", workers=0, progress=False, provenance=False).out)}

    signed, plain = with_evidence["signed.jpg"], with_evidence["plain.jpg"]
    assert signed["provenance"]["c2pa"]["status"] == "valid" and signed["provenance"]["c2pa"]["ai_generated"]
    assert signed["provenance"]["c2pa"]["claim_generator"] == "dfdetect-test-generator 2.1"
    assert plain["provenance"] == {"c2pa": {"status": "absent"},
                                   "watermark": plain["provenance"]["watermark"]}
    assert plain["provenance"]["watermark"]["status"] == "absent"
    assert with_evidence["broken.jpg"]["status"] == "error" and with_evidence["broken.jpg"]["provenance"] is None
    # the evidence never moves the score: same probability and decision with and without it
    for name in ("signed.jpg", "plain.jpg"):
        assert with_evidence[name]["probability"] == plain_scan[name]["probability"]
        assert with_evidence[name]["decision"] == plain_scan[name]["decision"]
        assert plain_scan[name]["provenance"] is None
        assert "heatmap" not in plain_scan[name]["top_faces"][0]

    heatmap = signed["top_faces"][0]["heatmap"]
    assert heatmap.startswith(str(tmp_path / "a.parquet.explain"))
    assert np.asarray(Image.open(heatmap)).shape == (64, 128, 3)  # the 64 px crop and its overlay
