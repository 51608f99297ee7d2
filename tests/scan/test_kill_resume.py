"""kill -9 the scanner (a real `dfdetect scan` process with a decode worker) at random points, resume,
and compare with an uninterrupted scan: the same records, none twice, none missing, no orphans."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dfdetect.results import read_jsonl
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import comparable, copy_london_faces, count_lines, good_clip, kill_scan

TRIALS = 5
FRAMES = 3


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill_inputs")
    copy_london_faces(root / "faces", 14)
    good_clip(root / "a.mp4", frames=6, index=20)
    good_clip(root / "b.mp4", frames=6, index=21)
    (root / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\1" * 300)
    return root


def test_kill_and_resume_gives_the_uninterrupted_record_set(inputs, model_path, tmp_path):
    reference_out = tmp_path / "reference.jsonl"
    scan_paths([inputs], model_path, reference_out, device="cpu", frames=FRAMES, batch_size=4, workers=1,
               progress=False)
    reference = comparable(list(read_jsonl(reference_out)))
    total = len(reference)
    assert total == 18 and sum(r[2] == "ok" for r in reference) == 16

    rng = random.Random(6)
    killed = 0
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}.jsonl"
        command = [sys.executable, "-m", "dfdetect", "scan", str(inputs), "--model", str(model_path), "--out",
                   str(out), "--device", "cpu", "--frames", str(FRAMES), "--batch-size", "4", "--workers", "1"]
        kill_after = rng.randrange(0, total)  # records on disk before the kill; 0: during start-up
        killed += kill_scan(command, out, kill_after, rng)
        resumed = scan_paths([inputs], model_path, out, device="cpu", frames=FRAMES, batch_size=4, workers=1,
                             resume=True, progress=False)
        records = list(read_jsonl(out))
        paths = [r["path"] for r in records]
        assert len(paths) == len(set(paths)) == total, f"trial {trial}: duplicates or gaps"
        assert comparable(records) == reference, f"trial {trial}"
        assert resumed.skipped == count_lines(out) - resumed.scanned
    assert killed >= TRIALS - 1  # the scans really died mid-way (one may finish before its kill point)


def test_resume_by_content_hash_survives_a_touch(inputs, model_path, tmp_path):
    """--hash: a file whose mtime changed but whose bytes did not is not scanned again."""
    faces = sorted((inputs / "faces").glob("*.jpg"))[:3]
    out = tmp_path / "hashed.jsonl"
    first = scan_paths(faces[:2], model_path, out, device="cpu", workers=0, hash_files=True, progress=False)
    assert first.scanned == 2
    os.utime(faces[0], (time.time() + 100, time.time() + 100))
    second = scan_paths(faces, model_path, out, device="cpu", workers=0, hash_files=True, resume=True,
                        progress=False)
    assert (second.skipped, second.scanned) == (2, 1)
    records = list(read_jsonl(out))
    assert [Path(r["path"]).name for r in records] == [faces[0].name, faces[1].name, faces[2].name]
    assert all(len(r["sha256"]) == 64 for r in records)
    assert len({r["sha256"] for r in records}) == 3
    plain = scan_paths(faces, model_path, tmp_path / "plain.jsonl", device="cpu", workers=0, progress=False)
    assert plain.scanned == 3 and all(r["sha256"] == "" for r in read_jsonl(tmp_path / "plain.jsonl"))
    assert np.isclose(records[2]["probability"], next(
        r["probability"] for r in read_jsonl(tmp_path / "plain.jsonl") if r["path"] == records[2]["path"]))
