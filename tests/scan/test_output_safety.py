"""The scan's output is never shared, damaged or left half-made: one scan per --out at a time (a second
is refused in one line naming the first), bad arguments refused before any file exists, and an --out
in a missing folder created, one that cannot be written refused in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfdetect.cli import main
from dfdetect.results import read_jsonl
from tests.scan.corpus import copy_london_faces

FACES = 24
INPUTS = FACES + 1  # the faces and their ATTRIBUTION.md


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lock_faces")
    copy_london_faces(root, FACES)
    return root


def scan_cli(faces: Path, model_path: Path, out: Path, *extra: str) -> list[str]:
    return ["scan", str(faces), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--workers", "0",
            *extra]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of `dfdetect ARGV` run in this process (argparse's own refusals exit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_second_scan_of_the_same_output_is_refused_naming_the_first(faces, model_path, tmp_path, capsys):
    """Two scans of one --out once wrote every record twice (600 lines for 300 files). The first, a real
    `dfdetect scan` process, is paused while it holds the lock, so the test does not race it."""
    out = tmp_path / "shared.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "dfdetect", *scan_cli(faces, model_path, out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TQDM_DISABLE": "1"})
    lock = tmp_path / "shared.jsonl.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip()):
        assert first.poll() is None and time.monotonic() < deadline, "the first scan never took the lock"
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        for extra in ((), ("--resume",)):
            code, errors = run_cli(scan_cli(faces, model_path, out, *extra), capsys)
            assert code == 2 and len(errors) == 1, errors
            assert errors[0].startswith(f"dfdetect scan: error: bad_config: {out}: another scan is writing this "
                                        f"output (pid {first.pid} on ")
            assert "scan" in errors[0] and str(out) in errors[0].split("): ")[0]
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    records = list(read_jsonl(out))
    assert len(records) == len({r["path"] for r in records}) == INPUTS


@pytest.mark.parametrize("bad", [["--batch-size", "0"], ["--detect-batch", "0"], ["--workers", "-1"],
                                 ["--timeout", "0"], ["--timeout", "-5"], ["--max-pixels", "0"], ["--frames", "0"]])
def test_bad_arguments_are_refused_before_any_output_exists(faces, model_path, tmp_path, capsys, bad):
    """They once left an empty results file and a manifest marked running, so the corrected rerun was
    refused as 'output already exists'; a timeout of 0 made every file a timeout."""
    out = tmp_path / "new" / "r.jsonl"
    code, errors = run_cli(scan_cli(faces, model_path, out, *bad), capsys)
    assert code == 2 and len(errors) == 1 and errors[0].startswith("dfdetect scan: error: bad_config: "), errors
    assert bad[0] in errors[0]
    assert not (tmp_path / "new").exists()


def test_an_unknown_detector_is_refused_by_the_parser_with_the_choices(faces, model_path, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    code, errors = run_cli(scan_cli(faces, model_path, out, "--detector", "nope"), capsys)
    assert code == 2 and "invalid choice: 'nope'" in errors[-1] and "blazeface" in errors[-1]
    assert list(tmp_path.iterdir()) == []


def test_output_folders_are_created_or_refused_in_one_line(faces, model_path, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder\n")
    (tmp_path / "existing").mkdir()
    refused = {a_file / "r.jsonl": "cannot create the output folder",
               Path("/proc/dfdetect_no_such/r.jsonl"): "cannot create the output folder",
               Path("/proc/r.jsonl"): "cannot write beside the output",
               tmp_path / "existing": "--out is a folder"}
    for out, message in refused.items():
        for extra in ((), ("--resume",)):
            code, errors = run_cli(scan_cli(faces, model_path, out, *extra), capsys)
            assert code == 2 and len(errors) == 1 and message in errors[0], (out, errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "notes.txt"]

    out = tmp_path / "newdir" / "sub" / "r.jsonl"
    code, errors = run_cli(scan_cli(faces, model_path, out, "--timeout", "30"), capsys)
    assert code == 0 and len(list(read_jsonl(out))) == INPUTS
