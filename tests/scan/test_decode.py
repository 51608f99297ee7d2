"""Decoding stage: streaming chunks, per-file time limits, and a crashed worker replaced mid-scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfdetect.results import read_jsonl
from dfdetect.scan.decode import DecodePool, DecodeSettings, FileDecoded, FrameChunk, decode_file
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import copy_london_faces, good_clip


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("decode")
    copy_london_faces(root, 2)
    good_clip(root / "long.mp4", frames=30)
    return root


def test_a_video_streams_in_small_chunks_then_one_end_event(media):
    events = list(decode_file(media / "long.mp4", DecodeSettings(frames_per_video=10, chunk_frames=3)))
    chunks, end = events[:-1], events[-1]
    assert [len(c.frames) for c in chunks] == [3, 3, 3, 1] and all(isinstance(c, FrameChunk) for c in chunks)
    indices = [f.index for c in chunks for f in c.frames]
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == 29
    assert isinstance(end, FileDecoded) and end.frames_decoded == 10 and end.error_code == ""
    assert end.media_type == "video" and end.decode_seconds > 0


def test_the_time_limit_gives_a_timeout_record_and_the_scan_goes_on(media, model_path, tmp_path):
    files = [media / "long.mp4", media / "001_03.jpg"]
    for workers in (0, 1):
        out = tmp_path / f"timeout{workers}.jsonl"
        scan_paths(files, model_path, out, device="cpu", frames=30, timeout=1e-9, workers=workers, progress=False)
        records = {Path(r["path"]).name: r for r in read_jsonl(out)}
        assert len(records) == 2
        for record in records.values():  # even one image frame takes longer than a nanosecond
            assert (record["status"], record["error_code"]) == ("error", "timeout")
            assert record["probability"] is None
    out = tmp_path / "generous.jsonl"
    summary = scan_paths(files, model_path, out, device="cpu", frames=30, timeout=60, workers=1, progress=False)
    assert summary.ok == 2


def test_a_worker_killed_mid_file_fails_only_that_file(media):
    tasks = [(0, str(media / "long.mp4")), (1, str(media / "001_03.jpg")), (2, str(media / "002_03.jpg"))]
    ends: dict[int, FileDecoded] = {}
    with DecodePool(DecodeSettings(frames_per_video=30, chunk_frames=1), workers=1) as pool:
        for task_id, event in pool.run(tasks):
            if task_id == 0 and isinstance(event, FrameChunk) and event.frames[0].index == 0:
                pool._workers[0].process.kill()  # as a segfault in the decoder would
            if isinstance(event, FileDecoded):
                ends[task_id] = event
        assert pool.restarts == 1
    assert sorted(ends) == [0, 1, 2]
    assert ends[0].error_code == "internal" and "died" in ends[0].error_message
    assert (ends[1].error_code, ends[1].frames_decoded, ends[2].error_code) == ("", 1, "")


def test_max_pixels_refuses_large_images_from_the_header(tmp_path, model_path):
    Image.fromarray(np.zeros((60, 50, 3), np.uint8)).save(tmp_path / "small.png")
    out = tmp_path / "r.jsonl"
    scan_paths([tmp_path / "small.png"], model_path, out, device="cpu", max_pixels=2999, workers=0, progress=False)
    [record] = read_jsonl(out)
    assert record["error_code"] == "too_large" and "50x60" in record["error_message"]


def test_a_worker_that_died_idle_is_replaced_and_the_file_is_not_blamed(media):
    tasks = [(0, str(media / "001_03.jpg")), (1, str(media / "002_03.jpg"))]
    ends: dict[int, FileDecoded] = {}
    with DecodePool(DecodeSettings(), workers=1) as pool:
        for task_id, event in pool.run(tasks):
            if isinstance(event, FileDecoded):
                ends[task_id] = event
                if task_id == 0:  # dies between files: the next file's hand-over fails
                    pool._workers[0].process.kill()
                    pool._workers[0].process.wait()
        assert pool.restarts == 1
    assert {i: (e.error_code, e.frames_decoded) for i, e in ends.items()} == {0: ("", 1), 1: ("", 1)}
