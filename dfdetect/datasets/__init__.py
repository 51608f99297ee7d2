"""Dataset indexers: each turns one layout on disk into IndexRows (see `INDEXERS`).

Every index built here has passed the same checks (not empty, no group in two splits), so later
stages can trust that a group never spans splits whichever layout it came from.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from dfdetect.datasets.celebdf import index_celebdf
from dfdetect.datasets.checks import DatasetIndex, check_leakage, require_rows
from dfdetect.datasets.csv_list import index_csv
from dfdetect.datasets.deepfakebench import index_deepfakebench
from dfdetect.datasets.dfdc import index_dfdc
from dfdetect.datasets.ffpp import index_ffpp
from dfdetect.datasets.folder import index_folder
from dfdetect.errors import DfdetectError
from dfdetect.records import IndexRow

INDEXERS: dict[str, Callable[..., DatasetIndex]] = {
    "folder": index_folder,
    "csv": index_csv,
    "ffpp": index_ffpp,
    "celebdf": index_celebdf,
    "dfdc": index_dfdc,
    "deepfakebench": index_deepfakebench,
}


def indexer_options(name: str) -> list[str]:
    """The keyword options an indexer takes besides root."""
    return [option for option in inspect.signature(INDEXERS[name]).parameters if option != "root"]


def build_index(name: str, root: str | Path, **options) -> DatasetIndex:
    """Rows plus what the indexer reported (missing files, notes); raises for an empty or leaking index."""
    if name not in INDEXERS:
        raise DfdetectError("bad_config", f"unknown dataset {name!r}", hint=f"choose from {', '.join(INDEXERS)}")
    accepted = indexer_options(name)
    foreign = sorted(set(options) - set(accepted))
    if foreign:
        raise DfdetectError("bad_config", f"options {foreign} do not apply to dataset {name!r}",
                            hint=f"it takes: {', '.join(accepted)}")
    index = INDEXERS[name](root, **options)
    require_rows(index, root)
    check_leakage(index.rows)
    return index


def index_dataset(name: str, root: str | Path, **options) -> list[IndexRow]:
    return build_index(name, root, **options).rows


__all__ = ["INDEXERS", "DatasetIndex", "build_index", "index_dataset", "indexer_options"]
