"""Deterministic split assignment.

A split is a function of the group id alone (a hash, never a random draw or the file order), so
re-indexing the same data, or a superset of it, keeps every existing group where it was, and all
files of a group land in the same split by construction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from dfdetect.errors import DfdetectError

DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.1

# File-name prefixes that name the class, not a person: `real_001.png` and `fake_001.png` share no identity.
_LABEL_WORDS = frozenset({"real", "fake"})


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise DfdetectError("bad_config", f"val fraction {val_fraction} and test fraction {test_fraction} leave "
                            "no training data", hint="use fractions in [0, 1) whose sum is below 1")


def unit_interval(key: str) -> float:
    """A stable, uniformly spread number in [0, 1) for a key (the first 64 bits of its SHA-1)."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(group: str, val_fraction: float = DEFAULT_VAL_FRACTION,
               test_fraction: float = DEFAULT_TEST_FRACTION) -> str:
    """train / val / test for a group. Test takes the lowest slice of [0, 1), so changing the
    validation fraction never moves a group into or out of the test set."""
    position = unit_interval(group)
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"


def leading_token(name: str) -> str:
    """The part of a file stem before the first `_` or `-` (the whole stem when it has neither)."""
    for index, char in enumerate(name):
        if char in "_-":
            return name[:index] or name
    return name


def shared_identities(paths: list[Path]) -> dict[Path, str]:
    """Identity read from file names: the leading token of the stem, for the files whose token is shared.

    A file's group is its identity when it has one, else its own stem. A token carried by more than
    half of the files (`IMG_0001.jpg`, `frame_0002.png`) or naming a class (`real_…`, `fake_…`) is a
    naming prefix rather than a person: grouping by it would put the whole dataset in one split, so
    such files get no identity.
    """
    tokens = {path: leading_token(path.stem) for path in paths}
    counts = Counter(tokens.values())
    half = len(paths) / 2
    return {path: token for path, token in tokens.items()
            if 1 < counts[token] <= half and token.lower() not in _LABEL_WORDS}
