"""`dfdetect provenance RESULTS.jsonl [--path FILE]` (or `MODEL.onnx`): where a score came from.

The chain, each link checked against the files on disk by sha256:

    record ─▶ model file ─▶ contract ─▶ training run (run_manifest.json) ─▶ crops table ─▶ data index

A scan record names its model's sha256 and the scan manifest beside the results names the model's
path; the model's contract names the run manifest and its sha256 and the checkpoint it was exported
from; the run manifest names the crops table and the index they were extracted from. The output
says plainly which link is missing (a file gone, a field never recorded) or does not match (a file
changed since), so an auditor knows how far a score can be traced.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import ModelContract
from dfdetect.model.onnx import read_contract
from dfdetect.records import file_sha256
from dfdetect.results import read_results

OK, MISSING, MISMATCH = "ok", "missing", "mismatch"


@dataclass
class Link:
    name: str  # "record", "model file", "contract", "training run", "crops table", "data index"
    status: str  # OK | MISSING | MISMATCH
    detail: str


def short(digest: str) -> str:
    return digest[:12] + "…" if digest else "(none)"


def file_link(name: str, path: str | None, expected_sha256: str | None, named_by: str) -> Link:
    """A file named by path (and sha256) in an earlier link: there, and with the same content?"""
    if not path:
        return Link(name, MISSING, f"{named_by} names no {name}")
    if not Path(path).is_file():
        return Link(name, MISSING, f"{path} is not on disk (named by {named_by})")
    actual = file_sha256(path)
    if expected_sha256 and actual != expected_sha256:
        return Link(name, MISMATCH, f"{path} has sha256 {short(actual)} but {named_by} recorded "
                    f"{short(expected_sha256)}: the file changed after it was recorded")
    if not expected_sha256:
        return Link(name, MISSING, f"{path} is there but {named_by} recorded no sha256 to check it against")
    return Link(name, OK, f"{path} (sha256 {short(actual)} matches {named_by})")


def record_links(results: Path, record_path: str | None, model: str | None) -> tuple[list[Link], str | None]:
    """The record link and the model file link; returns the links and the model path when it checks out."""
    records = read_results(results)
    if not records:
        raise DfdetectError("empty_dataset", "the results file has no records", results, "scan something first")
    if record_path is None:  # the first scored record: an error record names a model but no score to trace
        record = next((r for r in records if r["status"] == "ok"), records[0])
    else:
        wanted = str(Path(record_path).absolute())
        record = next((r for r in records if r["path"] in (record_path, wanted)), None)
        if record is None:
            raise DfdetectError("bad_input", f"no record for {record_path}", results,
                                "pass --path with a path exactly as the results file names it")
    if record["status"] == "ok":
        decision = (f"P(fake) {record['probability']:.4f} → {record.get('triage') or record['decision']} "
                    f"(flag {record['threshold_name']} = {record['threshold']:.4f}")
        if record.get("clear_threshold") is not None:
            decision += f", clear {record['clear_threshold_name']} = {record['clear_threshold']:.4f}"
        decision += ")"
    else:
        decision = f"status {record['status']} {record.get('error_code') or ''}".strip()
    which = "" if record_path else f" (the first scored of {len(records)} records; pass --path for another)"
    links = [Link("record", OK, f"{record['path']}: {decision}; model sha256 {short(record['model_sha256'])}{which}")]
    if model is None:
        manifest_file = results.with_name(results.name + ".manifest.json")
        if not manifest_file.is_file():
            links.append(Link("model file", MISSING, f"no scan manifest {manifest_file.name} beside the results "
                              "to name the model file (pass --model FILE if you know where it is)"))
            return links, None
        model = json.loads(manifest_file.read_text())["model"]["path"]
    link = file_link("model file", model, record["model_sha256"], "the record")
    links.append(link)
    return links, model if link.status == OK else None


def contract_link(contract: ModelContract) -> Link:
    run = contract.training_run
    made = (f"exported {contract.created_at or '(time not recorded)'} with dfdetect {contract.toolkit_version or '?'}, "
            f"backbone {contract.backbone or '?'}, from checkpoint sha256 {short(contract.checkpoint_sha256)}")
    if not run:
        return Link("contract", MISSING, f"{made}; it names no training run (exported from a checkpoint without a "
                    "run_manifest.json beside it, or by a dfdetect without run manifests)")
    return Link("contract", OK, f"{made}; names run manifest {run.get('manifest')}")


def run_links(contract: ModelContract) -> list[Link]:
    """Training run, crops table and data index, from the run manifest the contract names."""
    run = contract.training_run
    link = file_link("training run", run.get("manifest"), run.get("sha256"), "the model contract")
    if link.status != OK:
        return [link]
    manifest = json.loads(Path(run["manifest"]).read_text())
    checkpoints = manifest.get("checkpoints") or {}
    git = manifest.get("git") or {}
    commit = f"commit {git['commit'][:10]}{' (uncommitted changes)' if git.get('dirty') else ''}" if git else "no git"
    link.detail += (f"; {manifest.get('status')}, {manifest.get('started_at')} → {manifest.get('ended_at')}, "
                    f"{commit}, seed {manifest.get('seed')}")
    if contract.checkpoint_sha256 and contract.checkpoint_sha256 not in checkpoints.values():
        link = Link("training run", MISMATCH, f"{link.detail}; but the checkpoint the model was exported from "
                    f"(sha256 {short(contract.checkpoint_sha256)}) is not among the run's checkpoints")
    data = manifest.get("data") or {}
    crops, index = data.get("crops") or {}, data.get("index") or {}
    return [link,
            file_link("crops table", crops.get("path"), crops.get("sha256"), "the run manifest"),
            file_link("data index", index.get("path"), index.get("sha256"),
                      "the crops' extract_summary.json (via the run manifest)")]


def provenance_chain(target: str | Path, record_path: str | None = None, model: str | None = None) -> list[Link]:
    """The chain for one record of a results file, or for a model file (`target` ending in .onnx).
    Links after a missing or mismatched one that they depend on are not listed: nothing names them."""
    target = Path(target)
    if target.suffix.lower() == ".onnx":
        if not target.is_file():
            raise DfdetectError("missing_path", "model file not found", target, "check the path")
        links, model = [Link("model file", OK, f"{target} (sha256 {short(file_sha256(target))})")], str(target)
    else:
        links, model = record_links(target, record_path, model)
    if model is None:
        return links
    contract = read_contract(model)
    links.append(contract_link(contract))
    if contract.training_run:
        links.extend(run_links(contract))
    return links


def chain_text(links: list[Link]) -> str:
    width = max(len(link.name) for link in links)
    lines = [f"  {link.status:<8}  {link.name:<{width}}  {link.detail}" for link in links]
    broken = next((link for link in links if link.status != OK), None)
    lines.append("chain complete: every link is on disk and matches what the link before it recorded"
                 if broken is None else f"chain broken at {broken.name} ({broken.status})")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="results file of `dfdetect scan` (.jsonl/.csv/.parquet), or a model .onnx")
    parser.add_argument("--path", default=None,
                        help="the scanned file whose record to trace (default: the first scored record)")
    parser.add_argument("--model", default=None,
                        help="where the model file is now, when it moved since the scan (checked by sha256)")


def run(args: argparse.Namespace) -> int:
    """Prints the chain; exit status 1 when a link is missing or does not match."""
    links = provenance_chain(args.target, args.path, args.model)
    print(chain_text(links))
    return 0 if all(link.status == OK for link in links) else 1
