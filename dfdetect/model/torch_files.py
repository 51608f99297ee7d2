"""Reading torch files (checkpoints, weights) so that they can never run code.

A torch file is a pickle; unpickled with weights_only=False it runs whatever it names. Every torch file
dfdetect reads — fit checkpoints in every stage, Lightning's `--ckpt_path` (train.cli), pretrained
weights (model.backbones) — goes through load_plain, which passes weights_only=True itself rather than
trusting torch's default (False before torch 2.6, and Lightning's own URL reader still passes False).
"""

from __future__ import annotations

import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from dfdetect.errors import DfdetectError

URL_SCHEMES = ("http://", "https://")
_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")


def load_plain(source: str | Path, map_location: Any = "cpu") -> Any:
    """A torch file's contents, from a local path or an http(s) URL, read with weights_only=True
    whatever torch's default (torch < 2.6 and Lightning's URL reader default to unpickling anything).
    A URL is downloaded to a temporary file first, never to a cache. A file that asks for more than
    tensors and plain values is refused in one line naming what it asked for, without torch's
    advice to load it with weights_only=False."""
    text = str(source)
    try:
        if text.startswith(URL_SCHEMES):
            with tempfile.TemporaryDirectory(prefix="dfdetect-ckpt-") as folder:
                local = Path(folder) / "download.ckpt"
                torch.hub.download_url_to_file(text, str(local), progress=False)
                return torch.load(local, map_location=map_location, weights_only=True)
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise unsafe_checkpoint(text, exc) from None
    except Exception as exc:  # torch and urllib raise many types for a missing, corrupt or unreachable file
        raise DfdetectError("bad_input", f"cannot load checkpoint ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})", text,
                            "pass a .ckpt written by `dfdetect fit`") from exc


def unsafe_checkpoint(source: str | Path, refusal: pickle.UnpicklingError) -> DfdetectError:
    """torch's weights_only refusal as one line naming what the file asked to run."""
    named = _GLOBAL.search(str(refusal))
    asked = f"runs {named.group(1)}" if named else "holds objects other than tensors and plain values"
    return DfdetectError("bad_input", f"refused: loading this checkpoint {asked}, and only tensors and plain values "
                         "are loaded", source, "use a checkpoint written by `dfdetect fit`")
