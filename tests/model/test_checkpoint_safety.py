"""No entry point that reads a checkpoint runs the pickle inside it: fit / validate / test `--ckpt_path`
(a local file or a URL, which Lightning itself loads with weights_only=False), export, calibrate,
evaluate, the starter recipe's read_checkpoint and a recipe's `pretrained: PATH` weights. The malicious
file is a real pickle whose __reduce__ opens (creates) a marker file when it is unpickled: the marker
must never appear, and each refusal is one line that names what the file asked to run."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from dfdetect.cli import main
from dfdetect.errors import DfdetectError
from dfdetect.model.backbones import read_state_dict
from dfdetect.model.checkpoint import read_checkpoint
from dfdetect.model.torch_files import load_plain
from tests.train.conftest import write_tiny_crops

REFUSAL = "refused: loading this checkpoint runs io.open, and only tensors and plain values are loaded"


class CreatesMarker:
    """Unpickling this calls open(marker, "w"): harmless, and visible on disk when it ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (str(self.marker), "w")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Path, str, Path]]:
    """(local malicious checkpoint, its URL on a local http.server thread, the marker it would create)."""
    root = tmp_path_factory.mktemp("evil")
    marker = root / "payload_ran"
    evil = root / "evil.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(1)}, "epoch": 0, "global_step": 0,
                "pytorch-lightning_version": "2.6.0", "hyper_parameters": {"backbone": "efficientnet_b0"},
                "payload": CreatesMarker(marker)}, evil)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield evil, f"http://127.0.0.1:{server.server_address[1]}/evil.ckpt", marker
    server.shutdown()


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    return write_tiny_crops(tmp_path_factory.mktemp("crops"), {"train": 2, "val": 2, "test": 2})


def refused_in_one_line(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("verb", ["validate", "test", "fit"])
@pytest.mark.parametrize("where", ["url", "local"])
def test_lightning_ckpt_path_never_unpickles_code(served, crops, tmp_path, capsys, verb, where):
    evil, url, marker = served
    error = refused_in_one_line([verb, "--config", "tiny_cpu", "--data.crops", str(crops),
                                 "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar",
                                 "false", "--ckpt_path", url if where == "url" else str(evil)], capsys)
    assert not marker.exists(), f"{verb} --ckpt_path {where} ran the checkpoint's pickle"
    assert REFUSAL in error and "weights_only=False" not in error


def test_stage_entry_points_refuse_a_malicious_checkpoint(served, crops, tmp_path, capsys):
    evil, url, marker = served
    for argv in (["export", "--checkpoint", str(evil), "--out", str(tmp_path / "m.onnx")],
                 ["calibrate", "--model", str(evil), "--crops", str(crops), "--out", str(tmp_path / "c.json")],
                 ["evaluate", "--model", str(evil), "--crops", str(crops), "--out", str(tmp_path / "eval")]):
        error = refused_in_one_line(argv, capsys)
        assert REFUSAL in error, argv
    error = refused_in_one_line(["export", "--checkpoint", url, "--out", str(tmp_path / "m.onnx")], capsys)
    assert "checkpoint not found" in error and "download it" in error
    for source in (evil, url):  # the starter recipe reads its checkpoints through read_checkpoint / load_plain
        with pytest.raises(DfdetectError, match=re.escape(REFUSAL)):
            load_plain(source)
    with pytest.raises(DfdetectError, match="refused"):
        read_checkpoint(evil)
    with pytest.raises(DfdetectError, match=re.escape(REFUSAL)):  # `pretrained: PATH` in a recipe
        read_state_dict(evil)
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "c.json").exists()


def test_a_plain_checkpoint_from_a_url_still_loads(served):
    evil, url, _ = served
    plain = evil.with_name("plain.ckpt")
    torch.save({"weight": torch.arange(3.0)}, plain)
    assert torch.equal(load_plain(url.replace("evil.ckpt", "plain.ckpt"))["weight"], torch.arange(3.0))
