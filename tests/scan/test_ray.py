"""`--engine ray` on a local Ray instance scores like the local engine and writes the same schema."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dfdetect.records import SCAN_COLUMNS
from dfdetect.results import read_jsonl, read_results
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import copy_london_faces, good_clip, non_utf8_name

pytest.importorskip("ray.data")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")


def test_ray_engine_matches_the_local_engine(model_path, tmp_path):
    media = tmp_path / "media"
    copy_london_faces(media, 5, start=30)
    good_clip(media / "clip.mp4", frames=6)
    (media / "broken.mp4").write_text("not a video")
    manifest = tmp_path / "list.txt"
    manifest.write_text("\n".join(str(p.relative_to(tmp_path)) for p in sorted(media.iterdir())) + "\n")
    bad_name = non_utf8_name(tmp_path, b"bad_utf8_\xff", ".jpg")  # named directly: a UTF-8 manifest cannot list it
    shutil.copy(next(media.glob("*.jpg")), bad_name)

    local_out = tmp_path / "local.jsonl"
    scan_paths([manifest, bad_name], model_path, local_out, device="cpu", frames=4, batch_size=4, workers=0,
               details=True, progress=False)
    ray_out = tmp_path / "ray.parquet"
    summary = scan_paths([manifest, bad_name], model_path, ray_out, device="cpu", frames=4, batch_size=4, details=True,
                         engine="ray", ray_actors=1, ray_actor_cpus=0.5, progress=False)

    local = {r["path"]: r for r in read_jsonl(local_out)}
    remote = {r["path"]: r for r in read_results(ray_out)}
    assert set(remote) == set(local) and len(remote) == 9 and summary.scanned == 9
    assert list(next(iter(read_jsonl(ray_out.with_name("ray.parquet.journal.jsonl")))).keys()) == SCAN_COLUMNS
    for path, record in local.items():
        other = remote[path]
        assert (other["status"], other["error_code"], other["faces_scored"]) == (
            record["status"], record["error_code"], record["faces_scored"]), path
        if record["probability"] is not None:
            assert other["probability"] == pytest.approx(record["probability"], abs=1e-5)
            assert [s["logit"] for s in other["frame_scores"]] == pytest.approx(
                [s["logit"] for s in record["frame_scores"]], abs=1e-5)
    assert summary.ok == sum(r["status"] == "ok" for r in local.values()) == 7
    run_manifest = json.loads(Path(summary.manifest).read_text())
    assert run_manifest["engine"] == "ray" and run_manifest["status"] == "finished"
    assert run_manifest["counts"]["scanned"] == 9
