"""fit → run_manifest.json → export digest in the contract → scan → `dfdetect provenance`.

One tiny fit on a copy of the tiny crops, with the index it "came from" recorded the way `dfdetect
extract` records it, so every link of the chain exists; the tests then break one link at a time and
check the chain names that link and how it broke.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import dfdetect.train.run_manifest as run_manifest
from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.export import export_checkpoint
from dfdetect.model.onnx import read_contract
from dfdetect.records import (
    EXTRACT_SUMMARY_NAME,
    INDEX_COLUMNS,
    RUN_MANIFEST_NAME,
    IndexRow,
    file_sha256,
    read_crops,
    write_rows,
)
from dfdetect.review.provenance import MISMATCH, MISSING, OK, provenance_chain
from dfdetect.sample_data import london_images
from dfdetect.scan.pipeline import scan_paths
from dfdetect.train.cli import run_lightning
from dfdetect.train.run_manifest import git_state

CHAIN = ["record", "model file", "contract", "training run", "crops table", "data index"]


@pytest.fixture(scope="module")
def traced(tiny_crops, tiny_config, tmp_path_factory) -> dict[str, Path]:
    """A fitted, exported and scanned run: paths of the crops, index, checkpoints, model and results."""
    root = tmp_path_factory.mktemp("traced")
    crops = shutil.copytree(tiny_crops, root / "crops")
    table = read_crops(crops)
    index = write_rows([IndexRow(path=s, media_type="video", label=int(rows["label"].iloc[0]), dataset="london-blend",
                                 split=rows["split"].iloc[0], group=rows["group"].iloc[0])
                        for s, rows in table.groupby("source_path")], root / "index.parquet", INDEX_COLUMNS)
    (crops / EXTRACT_SUMMARY_NAME).write_text(json.dumps(
        {"index": {"path": str(index.resolve()), "sha256": file_sha256(index)}}))
    best = run_lightning(["fit", "--config", str(tiny_config), "--data.crops", str(crops),
                          "--trainer.default_root_dir", str(root / "fit"), "--trainer.enable_progress_bar", "false"])
    model = root / "model.onnx"
    export_checkpoint(best, model, crops=crops)
    results = root / "results.jsonl"
    scan_paths(london_images()[:1], model, results, device="cpu", workers=0, progress=False)
    return {"root": root, "crops": crops, "index": index, "best": best, "model": model, "results": results,
            "manifest": best.parent / RUN_MANIFEST_NAME}


def statuses(links) -> dict[str, str]:
    return {link.name: link.status for link in links}


def test_run_manifest_records_what_the_model_was_made_from(traced):
    manifest = json.loads(traced["manifest"].read_text())
    assert manifest["schema"] == "dfdetect.run-manifest/v1" and manifest["status"] == "finished"
    assert manifest["started_at"] <= manifest["ended_at"]
    assert manifest["seed"] == 0
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["git"]["commit"]) and isinstance(manifest["git"]["dirty"], bool)
    assert {"python", "torch", "pytorch-lightning", "timm", "dfdetect"} <= set(manifest["packages"])
    assert manifest["config"]["model"]["backbone"] == "efficientnet_b0"
    assert manifest["config"]["data"]["crops"] == str(traced["crops"])
    crops_table = traced["crops"] / "crops.parquet"
    assert manifest["data"]["crops"] == {"path": str(crops_table.resolve()), "sha256": file_sha256(crops_table)}
    assert manifest["data"]["index"] == {"path": str(traced["index"].resolve()), "sha256": file_sha256(traced["index"])}
    table = pd.read_parquet(crops_table)
    for split in ("train", "val", "test"):
        for name, label in (("real", 0), ("fake", 1)):
            expected = int(((table["split"] == split) & (table["label"] == label)).sum())
            assert manifest["counts"][f"{split}_{name}"] == expected
    assert manifest["checkpoints"] == {p.name: file_sha256(p) for p in traced["best"].parent.glob("*.ckpt")}
    assert manifest["best_checkpoint"] == str(traced["best"].resolve())


def test_export_embeds_the_manifest_digest_and_the_chain_is_complete(traced, capsys):
    contract = read_contract(traced["model"])
    assert contract.training_run == {"manifest": str(traced["manifest"].resolve()),
                                     "sha256": file_sha256(traced["manifest"])}
    links = provenance_chain(traced["results"])
    assert [link.name for link in links] == CHAIN and all(link.status == OK for link in links)
    assert main(["provenance", str(traced["results"]), "--path", str(london_images()[0])]) == 0
    printed = capsys.readouterr().out
    assert "chain complete" in printed and str(traced["index"].resolve()) in printed
    assert statuses(provenance_chain(traced["model"])) == dict.fromkeys(CHAIN[1:], OK)


@pytest.mark.parametrize(("victim", "link", "status"), [
    ("index", "data index", MISMATCH), ("crops_table", "crops table", MISSING), ("manifest", "training run", MISMATCH)])
def test_a_changed_or_missing_file_breaks_the_chain_at_its_link(traced, victim, link, status, capsys):
    path = {"index": traced["index"], "crops_table": traced["crops"] / "crops.parquet",
            "manifest": traced["manifest"]}[victim]
    original = path.read_bytes()
    try:
        if status == MISSING:
            path.unlink()
        else:
            path.write_bytes(original + b"\n")
        links = statuses(provenance_chain(traced["results"]))
        assert links[link] == status
        assert all(s == OK for name, s in links.items() if CHAIN.index(name) < CHAIN.index(link))
        assert main(["provenance", str(traced["results"])]) == 1
        assert f"chain broken at {link} ({status})" in capsys.readouterr().out
    finally:
        path.write_bytes(original)


def test_a_moved_results_file_or_a_replaced_model_is_named(traced, tmp_path):
    moved = shutil.copy(traced["results"], tmp_path / "results.jsonl")  # without its scan manifest
    links = provenance_chain(moved)
    assert statuses(links) == {"record": OK, "model file": MISSING} and "--model" in links[-1].detail
    assert statuses(provenance_chain(moved, model=str(traced["model"])))["data index"] == OK
    other = tmp_path / "other.onnx"
    other.write_bytes(traced["model"].read_bytes() + b"\0")
    links = provenance_chain(moved, model=str(other))
    assert statuses(links)["model file"] == MISMATCH and "the file changed after it was recorded" in links[-1].detail


def test_a_model_exported_without_a_run_manifest_says_so(traced, tmp_path):
    lone = shutil.copy(traced["best"], tmp_path / "lone.ckpt")
    export_checkpoint(lone, tmp_path / "lone.onnx", crops=traced["crops"])
    links = provenance_chain(tmp_path / "lone.onnx")
    assert statuses(links) == {"model file": OK, "contract": MISSING}
    assert "names no training run" in links[-1].detail


def test_export_clear_names_the_default_clear_threshold_and_refuses_unknown_names(traced, tmp_path):
    with pytest.raises(DfdetectError, match=r"no threshold named 'fpr@0\.05'"):
        export_checkpoint(traced["best"], tmp_path / "bad.onnx", crops=traced["crops"], clear="fpr@0.05")
    assert not (tmp_path / "bad.onnx").exists()
    export_checkpoint(traced["best"], tmp_path / "m.onnx", crops=traced["crops"], clear="default")
    contract = read_contract(tmp_path / "m.onnx")
    assert contract.clear_threshold == "default"
    assert (contract.decision_rule().clear_name, contract.decision_rule().clear) == ("default", 0.5)


def test_git_state_names_the_commit_only_for_code_tracked_in_the_checkout(tmp_path):
    source = Path(run_manifest.__file__).resolve()
    head = subprocess.run(["git", "-C", str(source.parent), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert git_state(source)["commit"] == head
    stray = source.parent / "untracked_probe_for_test.py"  # inside the checkout, but not part of it
    stray.write_text("")
    try:
        assert git_state(stray) is None
    finally:
        stray.unlink()
    assert git_state(tmp_path / "x.py") is None  # outside any checkout
