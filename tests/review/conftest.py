"""A real scan of five demo files with the starter model and three-way decisions (flag fpr@0.01,
clear eer): two real faces the starter is unsure about and one fake go to the queue, two files are
cleared. The tests read the decisions from the records, not from numbers typed here."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfdetect.model.resources import default_model
from dfdetect.sample_data import SAMPLE_DIR
from dfdetect.scan.pipeline import scan_paths

DEMO = SAMPLE_DIR / "demo_scan"
SCANNED = ("real/038_neutral.jpg", "real/038_video.mp4", "real/004_neutral.jpg", "fake/020_sbi.jpg",
           "fake/004_sbi.jpg")


@pytest.fixture(scope="session")
def scan_results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review_scan") / "results.jsonl"
    scan_paths([DEMO / name for name in SCANNED], default_model(), out, device="cpu", workers=0, progress=False,
               flag="fpr@0.01", clear="eer")
    return out
