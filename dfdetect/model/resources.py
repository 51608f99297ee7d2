"""What ships inside the package: the starter model and the training recipes, found through
`importlib.resources` so they are there after a plain `pip install` as much as in this repository.

They live inside the package (dfdetect/model/starter/, dfdetect/configs/) rather than beside it and
copied in at build time: one copy, the same path for an editable install and a wheel, and nothing for
a build step to forget.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dfdetect.errors import DfdetectError

STARTER_DIR = Path(str(resources.files("dfdetect.model") / "starter"))
CONFIGS_DIR = Path(str(resources.files("dfdetect") / "configs"))
RECIPE_SUFFIXES = (".yaml", ".yml")
# said once per scan that uses the starter: its scores on real benchmark deepfakes are near chance
# (MODEL_CARD.md), and a user must not take them for a detector's verdict
STARTER_NOTICE = ("note: scanning with the bundled starter model, a small CPU-trained demonstration detector that "
                  "is near chance on real benchmark deepfakes (see dfdetect/model/starter/MODEL_CARD.md); for real "
                  "use train one on real benchmark data (`dfdetect fit`) or pass --model MODEL.onnx")


def default_model() -> Path:
    """The shipped starter model, used by `dfdetect scan` and `dfdetect demo` when no --model is given."""
    model = STARTER_DIR / "model.onnx"
    if not model.is_file():
        raise DfdetectError("missing_path", "the starter model is not in this installation", model,
                            "pass --model model.onnx, or build it with `make starter-model`")
    return model


def recipe_names() -> list[str]:
    """The bare names of the shipped training recipes (tiny_cpu, ffpp_c23_effb4, …)."""
    return sorted(path.stem for path in CONFIGS_DIR.iterdir() if path.suffix in RECIPE_SUFFIXES)


def recipe_path(name_or_path: str | Path) -> Path:
    """A training recipe: an existing file as given, else a shipped recipe by its bare name
    (`tiny_cpu` or `tiny_cpu.yaml`). An unknown name fails listing the shipped ones."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIGS_DIR / (path.name if path.suffix in RECIPE_SUFFIXES else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise DfdetectError("missing_path", "training recipe not found", path,
                        f"pass a YAML file or a shipped recipe name: {', '.join(recipe_names())}")
