"""CSV/Parquet outputs through the JSONL journal, the run manifest, and the CLI summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.records import SCAN_COLUMNS
from dfdetect.results import journal_path, read_jsonl, read_results
from dfdetect.scan.cli import add_arguments, run
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import copy_london_faces


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("faces")
    images = copy_london_faces(root, 3, start=10)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 50)
    return [*images, root / "broken.jpg"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_hold_the_journal_records_with_nested_fields_restored(faces, model_path, tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    scan_paths(faces[:2], model_path, out, device="cpu", workers=0, details=True, progress=False)
    journal = journal_path(out)
    assert journal == tmp_path / f"results{suffix}.journal.jsonl"
    assert read_results(out) == list(read_jsonl(journal))
    raw = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(raw.columns) == SCAN_COLUMNS and len(raw) == 2
    assert isinstance(raw["top_faces"][0], str)  # flat columns: nested fields as JSON text

    with pytest.raises(DfdetectError):
        scan_paths(faces, model_path, out, device="cpu", workers=0, progress=False)
    resumed = scan_paths(faces, model_path, out, device="cpu", workers=0, details=True, resume=True, progress=False)
    assert (resumed.skipped, resumed.scanned) == (2, 2)
    records = sorted(read_results(out), key=lambda r: r["path"])  # in each run, files finish in any order
    assert [Path(r["path"]).name for r in records] == [p.name for p in faces]
    assert records[3]["status"] == "error" and records[3]["frame_scores"] is None
    assert records[0]["frame_scores"][0]["probability"] == pytest.approx(records[0]["top_faces"][0]["probability"])

    journal.unlink()
    with pytest.raises(DfdetectError) as caught:
        scan_paths(faces, model_path, out, device="cpu", workers=0, resume=True, progress=False)
    assert caught.value.code == "bad_config" and "journal" in caught.value.message


def test_run_manifest_records_arguments_contract_counts_and_throughput(faces, model_path, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = scan_paths(faces, model_path, out, device="cpu", batch_size=5, workers=1, progress=False)
    manifest = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())
    assert summary.manifest == str(tmp_path / "r.jsonl.manifest.json")
    assert manifest["status"] == "finished" and manifest["engine"] == "local"
    assert manifest["arguments"]["batch_size"] == 5 and manifest["arguments"]["paths"] == [str(p) for p in faces]
    assert manifest["model"]["contract"]["aggregation"] == "topk_mean:k=2"
    assert manifest["model"]["providers"] == ["CPUExecutionProvider"] and len(manifest["model"]["sha256"]) == 64
    assert manifest["counts"] == {"inputs": 4, "skipped": 0, "scanned": 4, "faces": summary.faces, "ok": 3,
                                  "no_face": 0, "error": 1, "flagged": summary.flagged,
                                  "review": summary.review}
    assert manifest["throughput"]["files_per_second"] == pytest.approx(4 / manifest["seconds"], rel=0.01)
    assert manifest["started_at"] <= manifest["finished_at"]
    assert summary.faces == sum(r["faces_scored"] for r in read_jsonl(out)) >= 3


def test_cli_prints_the_summary_table(faces, model_path, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli.parquet"
    run(parser.parse_args([str(p) for p in faces] + ["--model", str(model_path), "--out", str(out), "--device",
                                                    "cpu", "--workers", "0", "--timeout", "30"]))
    printed = capsys.readouterr().out
    table = {line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1])
             for line in printed.splitlines() if line.startswith("  ")}
    assert table == {"ok": 3, "no face": 0, "error": 1, "flagged (fake)": table["flagged (fake)"],
                     "review (a person decides)": 0, "skipped (resume)": 0}  # one threshold: two-way decisions
    assert "faces/s" in printed and "cli.parquet.manifest.json" in printed and len(read_results(out)) == 4
