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
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.scan.decode import DecodeSettings

FILES_PER_BATCH = 8


class ScanActor:
    """One model session and one detector per actor; called on batches of file tasks."""

    def __init__(self, model_path: str, settings: DecodeSettings, detector: str, batch_size: int,
                 detect_batch: int, details: bool, device: str, fp16: bool | None, intra_op_threads: int | None):
        from dfdetect.faces import create_detector
        from dfdetect.scan.session import OnnxModel

        self.model = OnnxModel(model_path, device=device, intra_op_threads=intra_op_threads, fp16=fp16)
        self.model.warm_up(batch_size)
        self.detector = create_detector(detector)
        self.settings = settings
        self.batch_size = batch_size
        self.detect_batch = detect_batch
        self.details = details

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        from dfdetect.scan.pipeline import FileTask, scan_tasks

        tasks = [FileTask(str(path), int(size), float(mtime), str(sha))
                 for path, size, mtime, sha in zip(batch["path"], batch["size"], batch["mtime"], batch["sha256"])]
        records = scan_tasks(tasks, self.model, self.detector, self.settings, workers=0, batch_size=self.batch_size,
                             detect_batch=self.detect_batch, details=self.details)
        return {"record": [json.dumps(dataclasses.asdict(r), allow_nan=False) for r in records]}


def ray_records(tasks: list, model_path: str | Path, settings: DecodeSettings, detector: str, batch_size: int = 8,
                detect_batch: int = 8, details: bool = False, address: str | None = None, actors: int = 1,
                actor_cpus: float = 1.0, actor_gpus: float = 0.0, device: str = "auto", fp16: bool | None = None,
                files_per_batch: int = FILES_PER_BATCH) -> Iterator[dict]:
    """Record dicts for `tasks` (pipeline.FileTask) computed by `actors` Ray actors. Connects to
    `address` (e.g. "auto" on a cluster node, "ray://head:10001" from outside) or starts a local
    Ray. On a small machine give actors a fraction of a CPU: actors that reserve every CPU leave
    none for Ray's read tasks and the dataset never starts."""
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
        dataset = ray.data.from_items([dataclasses.asdict(t) for t in tasks],
                                      override_num_blocks=max(1, -(-len(tasks) // files_per_batch)))
        records = dataset.map_batches(
            ScanActor, batch_size=files_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=actor_cpus, num_gpus=actor_gpus,
            fn_constructor_kwargs={"model_path": str(model_path), "settings": settings, "detector": detector,
                                   "batch_size": batch_size, "detect_batch": detect_batch, "details": details,
                                   "device": "cuda" if actor_gpus > 0 and device == "auto" else device,
                                   "fp16": fp16, "intra_op_threads": max(1, int(actor_cpus))})
        for row in records.iter_rows():
            yield json.loads(row["record"])
    finally:
        if started_here:
            ray.shutdown()
