"""Per-file aggregation of face logits into one logit.

Every rule works on logits in float64. Averaging float32 sigmoids ties every saturated score at 1.0,
so a file with logits of 30 ranks level with one at 9 and the ranking metrics (AUC) lose the
difference; logits keep it. Rules live in a registry so the contract (and YAML) can name one, with
parameters written as "name:key=value,key=value" (e.g. "topk_mean:k=5").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
from scipy.special import logit

from dfdetect.errors import DfdetectError

AggregationRule = Callable[..., float]
AGGREGATIONS: dict[str, AggregationRule] = {}


def register_aggregation(name: str) -> Callable[[AggregationRule], AggregationRule]:
    def add(rule: AggregationRule) -> AggregationRule:
        AGGREGATIONS[name] = rule
        return rule

    return add


@register_aggregation("mean")
def mean_logit(logits: np.ndarray) -> float:
    return float(np.mean(logits))


@register_aggregation("median")
def median_logit(logits: np.ndarray) -> float:
    """Robust to a few frames where the detector cropped something that is not the face."""
    return float(np.median(logits))


@register_aggregation("max")
def max_logit(logits: np.ndarray) -> float:
    """Flags a file when any single face looks fake: partial manipulations are caught, at the cost
    of more false alarms on long videos."""
    return float(np.max(logits))


@register_aggregation("topk_mean")
def topk_mean_logit(logits: np.ndarray, k: int = 3) -> float:
    """Mean of the k highest logits: between `max` (k=1) and `mean` (k=all) in sensitivity."""
    if k < 1:
        raise DfdetectError("bad_config", f"topk_mean needs k >= 1, got {k}", None, "use e.g. topk_mean:k=3")
    k = min(int(k), logits.size)
    return float(np.mean(np.partition(logits, logits.size - k)[-k:]))


@register_aggregation("confident")
def confident_logit(logits: np.ndarray, high: float = 0.8, low: float = 0.2, min_fraction: float = 0.4) -> float:
    """The DFDC winner's rule: when enough faces are confidently fake (probability > high), average
    only those; else when enough are confidently real (< low), average those; else the plain mean.
    Fakes are checked first because a video with only some manipulated frames is still a fake."""
    for confident in (logits > logit(high), logits < logit(low)):
        if np.count_nonzero(confident) > min_fraction * logits.size:
            return float(np.mean(logits[confident]))
    return float(np.mean(logits))


def parse_rule(spec: str) -> tuple[str, dict[str, float]]:
    """'topk_mean:k=5' → ('topk_mean', {'k': 5}); a plain name has no parameters."""
    name, _, params = spec.partition(":")
    kwargs: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise DfdetectError("bad_config", f"bad aggregation parameter {item!r} in {spec!r}", None,
                                "write parameters as name:key=value,key=value")
        kwargs[key.strip()] = int(number) if number.is_integer() else number
    return name.strip(), kwargs


def aggregate(logits: np.ndarray | list[float], rule: str = "mean", **params: float) -> float:
    """One logit for a file from its face logits; `rule` is a registered name, optionally with
    parameters ('topk_mean:k=5'); keyword arguments override those."""
    name, spec_params = parse_rule(rule)
    if name not in AGGREGATIONS:
        raise DfdetectError("bad_config", f"unknown aggregation rule {name!r}", None,
                            f"choose one of {sorted(AGGREGATIONS)}")
    values = np.asarray(logits, np.float64).ravel()
    if values.size == 0:
        raise DfdetectError("bad_input", "no face logits to aggregate", None, "files without faces have no score")
    rule_fn = AGGREGATIONS[name]
    kwargs = {**spec_params, **params}
    accepted = set(inspect.signature(rule_fn).parameters) - {"logits"}
    if set(kwargs) - accepted:
        raise DfdetectError("bad_config", f"aggregation {name!r} has no parameter(s) {sorted(set(kwargs) - accepted)}",
                            None, f"its parameters are {sorted(accepted)}")
    return rule_fn(values, **kwargs)
