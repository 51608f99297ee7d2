"""calibration.json: the record `dfdetect calibrate` writes and `dfdetect export` folds into a model's
contract (temperature, bias, named thresholds, and what they were fitted on)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.model.contract import ModelContract

CALIBRATION_SCHEMA = "dfdetect.calibration/v1"


@dataclass
class Calibration:
    """What `dfdetect calibrate` fitted, and on what; export copies temperature and thresholds into
    the model contract, the rest lets a reader judge how far to trust them."""

    temperature: float
    thresholds: dict[str, float]
    default_threshold: str  # the rule whose value `thresholds["default"]` holds
    fitted_on: dict  # scores file + hash, split, by, aggregation, counts
    before: dict[str, float]  # ece, log_loss at T = 1
    after: dict[str, float]  # ece, log_loss at the fitted T (and bias)
    warnings: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # headline numbers on the fitted units at T (export copies them)
    bias: float = 0.0  # added to logit / T; 0 unless fitted with method "platt"
    method: str = "temperature"
    schema: str = CALIBRATION_SCHEMA

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DfdetectError("bad_input", f"calibration is not valid JSON ({exc.msg})",
                                hint="re-create it with `dfdetect calibrate`") from exc
        if not isinstance(data, dict) or data.get("schema") != CALIBRATION_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise DfdetectError("bad_input", f"unsupported calibration schema {found!r}, expected {CALIBRATION_SCHEMA}",
                                hint="re-create it with `dfdetect calibrate`")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write via a temp file so export never reads a half-written calibration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(calibration.to_json() + "\n")
    tmp.replace(path)
    return path


def read_calibration(path: str | Path) -> Calibration:
    path = Path(path)
    if not path.exists():
        raise DfdetectError("missing_path", "calibration file not found", path, "create it with `dfdetect calibrate`")
    try:
        return Calibration.from_json(path.read_text())
    except DfdetectError as err:
        raise DfdetectError(err.code, err.message, path, err.hint) from err


def apply_calibration(contract: ModelContract, calibration: Calibration) -> ModelContract:
    """The contract with a calibration's temperature, bias, thresholds and validation numbers.

    Thresholds fitted per video hold for the aggregation rule they were fitted with, so that rule
    becomes the contract's; the record of what they were fitted on travels along for auditors.
    """
    fitted_on = calibration.fitted_on
    aggregation = fitted_on.get("aggregation", "none")
    return dataclasses.replace(
        contract,
        temperature=float(calibration.temperature),
        logit_bias=float(calibration.bias),
        thresholds={name: float(value) for name, value in calibration.thresholds.items()},
        default_threshold=calibration.default_threshold,
        aggregation=aggregation if fitted_on.get("by") == "video" and aggregation != "none" else contract.aggregation,
        val_metrics={**contract.val_metrics,
                     "calibrated": {**calibration.metrics, "ece_before": calibration.before.get("ece"),
                                    "log_loss_before": calibration.before.get("log_loss")}},
        calibration={**fitted_on, "warnings": list(calibration.warnings)},
    )
