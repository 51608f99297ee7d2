"""`--engine ray`: the same stages on a Ray cluster, for archives one machine cannot get through.

The driver lists the files (after resume filtering) as a Ray Dataset; `map_batches` hands batches of
paths to a pool of actors, each holding one ONNX Runtime session and one face detector for its whole
life, and each running the local pipeline (decode → batched detection → crops → fixed-size inference
batches → aggregation) in-process on its batch. Records come back to the driver as one JSON text
column, so every block has the same Arrow schema whatever fields are empty, and the driver appends
them to the same journal the local engine writes: same record schema, same resume, same formats.
Every node must reach the media and the model at the same paths (shared storage) and have dfdetect
installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.faces import create_detector
from dfdetect.model.session import OnnxModel
from dfdetect.records import ScanRecord

FILES_PER_BATCH = 8


def to_arrow(task: object) -> dict:
    """A task dataclass as a Ray row, its text fields as the file system's bytes: Arrow refuses the
    surrogate escapes Python keeps a non-UTF-8 file name in."""
    return {name: os.fsencode(value) if isinstance(value, str) else value
            for name, value in dataclasses.asdict(task).items()}


def plain(value: object) -> object:
    """A value from a Ray batch column as the Python value a task dataclass holds (the inverse of to_arrow)."""
    value = value.item() if isinstance(value, np.generic) else value
    return os.fsdecode(value) if isinstance(value, bytes) else value


class ScanActor:
    """One model session and one detector per actor; called on batches of file tasks, which it hands
    to `scan` (the local pipeline's scan_tasks with its settings bound) in-process."""

    def __init__(self, model_path: str, scan: Callable[..., Iterable[ScanRecord]], task_type: type, detector: str,
                 batch_size: int, device: str, precision: str, intra_op_threads: int | None):
        self.model = OnnxModel(model_path, device=device, intra_op_threads=intra_op_threads, precision=precision)
        self.model.warm_up(batch_size)
        self.detector = create_detector(detector)
        self.scan = scan
        self.task_type = task_type

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        rows = len(next(iter(batch.values())))
        tasks = [self.task_type(**{name: plain(column[i]) for name, column in batch.items()}) for i in range(rows)]
        records = self.scan(tasks, self.model, self.detector)
        return {"record": [json.dumps(dataclasses.asdict(r), allow_nan=False) for r in records]}


def ray_records(tasks: list, model_path: str | Path, scan: Callable[..., Iterable[ScanRecord]], detector: str,
                batch_size: int = 8, address: str | None = None, actors: int = 1, actor_cpus: float = 1.0,
                actor_gpus: float = 0.0, device: str = "auto", precision: str = "auto",
                files_per_batch: int = FILES_PER_BATCH) -> Iterator[dict]:
    """Record dicts for `tasks` (dataclasses, e.g. pipeline.FileTask) computed by `actors` Ray actors,
    each calling `scan(tasks, model, detector)` on its batches. Connects to `address` (e.g. "auto" on a
    cluster node, "ray://head:10001" from outside) or starts a local Ray. On a small machine give actors
    a fraction of a CPU: actors that reserve every CPU leave none for Ray's read tasks and the dataset
    never starts. Ray is an optional extra, so it is imported here, where it is needed."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise DfdetectError("bad_config", "Ray is not installed", None, "pip install 'dfdetect[ray]'") from exc
    if actors < 1 or actor_cpus <= 0 or actor_gpus < 0:
        raise DfdetectError("bad_config", f"bad Ray actor resources: {actors} actors × {actor_cpus} CPU, "
                            f"{actor_gpus} GPU", None, "use e.g. --ray-actors 2 --ray-actor-cpus 1")
    if not tasks:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # the scan shows its own bar
        dataset = ray.data.from_items([to_arrow(t) for t in tasks],
                                      override_num_blocks=max(1, -(-len(tasks) // files_per_batch)))
        records = dataset.map_batches(
            ScanActor, batch_size=files_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=actor_cpus, num_gpus=actor_gpus,
            fn_constructor_kwargs={"model_path": str(model_path), "scan": scan, "task_type": type(tasks[0]),
                                   "detector": detector, "batch_size": batch_size,
                                   "device": "cuda" if actor_gpus > 0 and device == "auto" else device,
                                   "precision": precision, "intra_op_threads": max(1, int(actor_cpus))})
        for row in records.iter_rows():
            yield json.loads(row["record"])
    finally:
        if started_here:
            ray.shutdown()
