"""`run_manifest.json` beside a fit's checkpoints: what a trained model was made from and how.

A score is only as traceable as the model behind it. The manifest records the resolved config, the
toolkit's git commit, package versions, the seed, the sha256 of the crops table and of the index it
was extracted from, the counts per split × label and the start and end times, then the sha256 of
every checkpoint the run wrote. `dfdetect export` embeds the manifest's own sha256 in the model
contract, and `dfdetect provenance` walks from a scan record back to it and on to the data.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer

from dfdetect import __version__
from dfdetect.records import EXTRACT_SUMMARY_NAME, RUN_MANIFEST_NAME, file_sha256

RUN_MANIFEST_SCHEMA = "dfdetect.run-manifest/v1"
GIT_TIMEOUT_S = 10


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(source: Path) -> dict | None:
    """{"commit", "dirty"} of the git checkout this source file is tracked in; None when it is not
    tracked (an installed wheel, even one inside some repository's virtualenv) or git is absent.
    `dirty` says the working tree differs from the commit, so the commit alone does not reproduce
    the code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(source.parent), *args], capture_output=True, text=True, check=True,
                              timeout=GIT_TIMEOUT_S).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", source.name)
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str]:
    """Python and every installed package dfdetect depends on (its own requirements, extras included)."""
    versions = {"python": platform.python_version(), "dfdetect": __version__}
    for requirement in metadata.requires("dfdetect") or []:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra that is not installed
    return dict(sorted(versions.items()))


def data_provenance(crops: str | Path) -> dict:
    """The crops table and the index it came from, each by absolute path and sha256. The index is
    the one `dfdetect extract` recorded in extract_summary.json; None when the crops were made
    without one (another tool, or an extract from before it recorded its index)."""
    crops = Path(crops).resolve()
    folder, table = (crops, crops / "crops.parquet") if crops.is_dir() else (crops.parent, crops)
    summary_path = folder / EXTRACT_SUMMARY_NAME
    index = json.loads(summary_path.read_text()).get("index") if summary_path.exists() else None
    return {"crops": {"path": str(table), "sha256": file_sha256(table)}, "index": index}


class RunManifest(Callback):
    """Writes run_manifest.json into the checkpoint folder when fitting starts (status "running"),
    and again when it ends ("finished", with the checkpoints' sha256) or fails ("failed").

    Only rank zero writes. A fit without a checkpoint folder (checkpointing off) gets no manifest:
    there is no model for it to describe.
    """

    def __init__(self, config: dict | None = None):
        self.config = config or {}
        self.path: Path | None = None  # set on the rank that writes
        self.manifest: dict = {}

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if not trainer.is_global_zero or checkpoint is None or not checkpoint.dirpath:
            return
        self.path = Path(checkpoint.dirpath).resolve() / RUN_MANIFEST_NAME
        datamodule = trainer.datamodule
        self.manifest = {
            "schema": RUN_MANIFEST_SCHEMA,
            "status": "running",
            "started_at": now_utc(),
            "command": sys.argv,
            "host": platform.node(),
            "git": git_state(Path(__file__).resolve()),
            "packages": package_versions(),
            "seed": int(os.environ["PL_GLOBAL_SEED"]) if "PL_GLOBAL_SEED" in os.environ else None,
            "resumed_from": str(trainer.ckpt_path) if trainer.ckpt_path else None,
            "config": self.config,
            "data": data_provenance(datamodule.crops) if hasattr(datamodule, "crops") else None,
            "counts": datamodule.summary() if hasattr(datamodule, "summary") else None,
        }
        self._write()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.path is None:
            return
        checkpoint = trainer.checkpoint_callback
        self.manifest.update(status="finished", ended_at=now_utc(),
                             best_checkpoint=str(Path(checkpoint.best_model_path).resolve())
                             if checkpoint.best_model_path else None,
                             checkpoints={p.name: file_sha256(p) for p in sorted(self.path.parent.glob("*.ckpt"))})
        self._write()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self.path is None:
            return
        self.manifest.update(status="failed", ended_at=now_utc(), error=f"{type(exception).__name__}: {exception}")
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str) + "\n")
        tmp.replace(self.path)

