"""The built wheel works on its own: installed outside the repository (no editable install), it finds
its starter model and its recipes as package resources, as a user's `pip install` would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import dfdetect
from dfdetect.model.resources import STARTER_DIR
from dfdetect.records import file_sha256
from dfdetect.sample_data import london_images

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str | Path], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment holding only the wheel; the project environment's packages (torch,
    onnxruntime, …) are reachable after it through a .pth line, which adds that folder to sys.path
    without running its own .pth files, so this checkout's editable install stays out of sight."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # built from a copy: the build writes build/ and egg-info next to its sources
    shutil.copytree(REPO / "dfdetect", source / "dfdetect", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", source],
        root)
    wheel = next((root / "dist").glob("dfdetect-*.whl"))
    env = root / "env"
    venv.create(env, with_pip=False)
    env_python = env / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", env_python, "install", "--no-deps", "--no-index", "-q", wheel], root)
    env_site = Path(run([env_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).strip())
    (env_site / "project_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env


@pytest.mark.slow
def test_the_wheel_runs_scan_with_its_own_model_and_finds_recipes_by_name(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dfdetect_command = installed / "bin" / "dfdetect"
    located = run([installed / "bin" / "python", "-c", "import dfdetect; print(dfdetect.__file__)"], elsewhere)
    assert Path(located.strip()).is_relative_to(installed)

    assert run([dfdetect_command, "--version"], elsewhere).strip() == f"dfdetect {dfdetect.__version__}"

    faces = [shutil.copy(path, elsewhere / path.name) for path in london_images()[:2]]
    run([dfdetect_command, "scan", *faces, "--out", "r.jsonl", "--workers", "0"], elsewhere)
    records = [json.loads(line) for line in (elsewhere / "r.jsonl").read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in records) == sorted(Path(f).name for f in faces)
    assert {r["status"] for r in records} == {"ok"}
    assert {r["model_sha256"] for r in records} == {file_sha256(STARTER_DIR / "model.onnx")}

    printed = run([dfdetect_command, "fit", "--config", "tiny_cpu", "--print_config"], elsewhere)
    assert "backbone: efficientnet_b0" in printed and "max_epochs: 1" in printed
