"""The whole slice from the command line, as a user runs it: index → extract → fit → export → scan."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from dfdetect.recipes.labelled_faces import build_labelled_faces


def dfdetect(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dfdetect", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_every_verb_runs_on_real_faces(tmp_path):
    ids = ["001", "002", "003", "004", "005", "006", "007", "008", "009", "010"]
    build_labelled_faces(tmp_path / "faces", ids, seed=0)
    index = dfdetect("index", "--dataset", "folder", "--root", "faces", "--out", "index.parquet", cwd=tmp_path)
    assert index.returncode == 0, index.stderr
    assert len(pd.read_parquet(tmp_path / "index.parquet")) == 40

    extract = dfdetect("extract", "index.parquet", "--out", "crops", "--size", "64", "--workers", "1", cwd=tmp_path)
    assert extract.returncode == 0, extract.stderr
    assert "40 faces" in extract.stdout

    fit = dfdetect("fit", "--config", "tiny_cpu", "--data.crops", "crops",
                   "--trainer.default_root_dir", "fit", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    checkpoint = next(p for p in (tmp_path / "fit").rglob("*.ckpt") if p.name != "last.ckpt")

    export = dfdetect("export", "--checkpoint", str(checkpoint), "--out", "model.onnx", "--crops", "crops",
                      cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "model.onnx").stat().st_size > 1_000_000

    (tmp_path / "faces" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    scan = dfdetect("scan", "faces", "--model", "model.onnx", "--out", "results.jsonl", cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    by_name = {Path(r["path"]).name: r for r in records}
    assert by_name["broken.jpg"]["status"] == "error"
    assert by_name["broken.jpg"]["error_code"] == "unreadable_media"
    images = [r for name, r in by_name.items() if name.endswith(".jpg") and name != "broken.jpg"]
    assert len(images) == 40
    assert all(r["status"] == "ok" and r["faces_scored"] == 1 and 0 <= r["probability"] <= 1 for r in images)


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    missing = dfdetect("extract", "nowhere.parquet", "--out", "crops", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0
    assert "nowhere.parquet" in missing.stderr and "dfdetect index" in missing.stderr

    (tmp_path / "empty").mkdir()
    empty = dfdetect("index", "--dataset", "folder", "--root", "empty", "--out", "i.parquet", cwd=tmp_path)
    assert empty.returncode == 2 and "empty_dataset" in empty.stderr
    assert not (tmp_path / "i.parquet").exists()

    (tmp_path / "empty" / "x.jpg").write_bytes(b"\xff\xd8\xff")
    no_model = dfdetect("scan", "empty", "--model", "absent.onnx", "--out", "r.jsonl", cwd=tmp_path)
    assert no_model.returncode == 2 and "absent.onnx" in no_model.stderr
