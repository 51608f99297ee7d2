"""Decoding and frame sampling, in worker processes that a hung or crashed decoder cannot take down.

Each worker owns one pipe to the scanner. A pipe holds only a few frames, so a worker that runs ahead
blocks on `send` until the scanner has detected what it already sent: that is the backpressure, and
memory stays flat whatever the video's length. Frames travel in small chunks as they are decoded, so
a long video is never held whole. A file that exceeds its time limit is stopped by the worker itself
between chunks; a decoder stuck inside C code is killed by the scanner and the worker replaced, and
the file gets a `timeout` (or, when the process died, an `internal`) error record.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from dfdetect.errors import DfdetectError
from dfdetect.media.io import DEFAULT_MAX_PIXELS, Frame, available_cores, iter_media_frames, sniff_media_type

# On 2 cores a decode process costs more than it gives: it competes with ONNX Runtime and the detector
# for the same cores, and every 720p frame (2.7 MB) is pickled through a pipe. Measured on 10 videos at
# 224 px: 1 worker 0.70 videos/s, in process 0.84 (issue 17, quiet); 0.096 vs 0.131 at load ~10.
IN_PROCESS_MAX_CORES = 2
THREAD_QUEUE_CHUNKS = 4  # chunks the in-process decode thread may run ahead of the scanner
KILL_GRACE_S = 2.0  # beyond the time limit, before a worker that did not stop itself is killed
POLL_S = 0.05


@dataclass
class DecodeSettings:
    frames_per_video: int = 32
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout_s: float | None = 600.0
    chunk_frames: int = 4  # frames per message: small enough to stream, large enough to amortise a send


@dataclass
class FrameChunk:
    media_type: str
    frames: list[Frame]


@dataclass
class FileDecoded:
    """The end of a file: how many frames came out and, when it failed, why (code + message, as a
    DfdetectError does not survive pickling)."""

    media_type: str
    frames_decoded: int
    decode_seconds: float
    error_code: str = ""
    error_message: str = ""


DecodeEvent = FrameChunk | FileDecoded


def _check_file(path: Path) -> str:
    """The media type, or an error for what must not reach a decoder (missing, empty, not a regular
    file such as a FIFO that would block the reader forever, unknown content)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise DfdetectError("missing_path", "file not found", path, "check the path") from exc
    if not stat.S_ISREG(info.st_mode):
        raise DfdetectError("unsupported_media", "not a regular file", path, "scan image or video files")
    if info.st_size == 0:
        raise DfdetectError("unreadable_media", "the file is empty", path, "it was truncated or never written")
    media_type = sniff_media_type(path)
    if media_type is None:
        raise DfdetectError("unsupported_media", "the content is neither an image nor a video we read", path,
                            "scan image or video files")
    return media_type


def decode_file(path: str | Path, settings: DecodeSettings) -> Iterator[DecodeEvent]:
    """FrameChunks of the sampled frames, then one FileDecoded; never raises for a bad file. The
    time limit counts time spent decoding, not time waiting for the consumer to take a chunk."""
    path = Path(path)
    media_type, decoded, busy = "", 0, 0.0
    resumed = time.perf_counter()
    try:
        media_type = _check_file(path)
        chunk: list[Frame] = []
        for frame in iter_media_frames(path, media_type, settings.frames_per_video, max_pixels=settings.max_pixels):
            chunk.append(frame)
            decoded += 1
            if settings.timeout_s is not None and busy + time.perf_counter() - resumed > settings.timeout_s:
                raise DfdetectError("timeout", f"stopped after {settings.timeout_s:g} s ({decoded} frames decoded)",
                                    path, "raise --timeout for long files")
            if len(chunk) >= settings.chunk_frames:
                busy += time.perf_counter() - resumed
                yield FrameChunk(media_type, chunk)
                chunk, resumed = [], time.perf_counter()
        busy += time.perf_counter() - resumed
        if chunk:
            yield FrameChunk(media_type, chunk)
    except DfdetectError as exc:
        yield FileDecoded(media_type, decoded, busy, exc.code, exc.message)
        return
    except Exception as exc:  # a decoder bug on one file must not end the scan: record it
        yield FileDecoded(media_type, decoded, busy, "internal", f"{exc.__class__.__name__}: {exc}")
        return
    yield FileDecoded(media_type, decoded, busy)


def serve(fd: int) -> None:
    """A decode worker's loop on the socket `fd`: receive DecodeSettings, then (task_id, path) tasks,
    sending (task_id, event) for each event; None ends it. A closed socket (the scanner died) ends
    it too, so no orphan outlives a killed scan."""
    conn = Connection(fd)
    try:
        settings = conn.recv()
        conn.send(("ready", None))
        while (task := conn.recv()) is not None:
            task_id, path = task
            for event in decode_file(path, settings):
                conn.send((task_id, event))
    except (EOFError, OSError, KeyboardInterrupt):
        return


class _Worker:
    """One decode process. Started as `python -c` rather than through multiprocessing's spawn,
    which re-imports the caller's __main__ module in every child: a script that imported torch
    would make each decoder pay seconds and hundreds of MB for it."""

    def __init__(self, settings: DecodeSettings):
        parent_end, child_end = socket.socketpair()
        command = [sys.executable, "-c", f"from dfdetect.scan.decode import serve; serve({child_end.fileno()})"]
        self.process = subprocess.Popen(command, pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL)
        child_end.close()
        self.conn = Connection(parent_end.detach())
        self.conn.send(settings)
        self.ready = False
        self.task: tuple[int, str] | None = None
        self.last_heard = 0.0  # when the current task was sent or its last message arrived

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):  # BrokenPipeError included: the worker is gone already
                self.conn.send(None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class DecodePool:
    """Decodes tasks (task_id, path) on `workers` worker processes, or in a thread of this process
    when workers is 0 (no isolation: a hung decoder then hangs the scan; the default on small
    machines, see worker_count, and in Ray actors, which are already processes of their own). Use as
    a context manager."""

    def __init__(self, settings: DecodeSettings, workers: int = 2):
        if workers < 0:
            raise DfdetectError("bad_config", f"workers must be >= 0, got {workers}", None, "use e.g. --workers 2")
        self.settings = settings
        self.workers_wanted = workers
        self._workers: list[_Worker] = []
        self.restarts = 0

    def __enter__(self) -> DecodePool:
        self._workers = [_Worker(self.settings) for _ in range(self.workers_wanted)]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for worker in self._workers:
            worker.stop(kill=any(exc_info))
        self._workers = []

    def run(self, tasks: Iterable[tuple[int, str]]) -> Iterator[tuple[int, DecodeEvent]]:
        """(task_id, event) pairs: each task's chunks in order and exactly one FileDecoded per task.
        Tasks are interleaved across workers; the caller's pace is the pool's pace."""
        if not self._workers:
            yield from self._run_in_thread(tasks)
            return
        pending = iter(tasks)
        exhausted = False
        while True:
            for worker in self._workers:
                if worker.ready and worker.task is None and not exhausted:
                    task = next(pending, None)
                    if task is None:
                        exhausted = True
                        break
                    worker.task, worker.last_heard = task, time.monotonic()
                    try:
                        worker.conn.send(task)
                    except OSError:  # it died idle: not this file's fault, so the file goes back in line
                        worker.task = None
                        pending = itertools.chain([task], pending)
                        yield from self._replace(worker, "internal", "")
            busy = [w for w in self._workers if w.task is not None or not w.ready]
            if exhausted and all(w.task is None for w in self._workers):
                return
            for conn in wait([w.conn for w in busy], timeout=POLL_S):
                worker = next(w for w in self._workers if w.conn is conn)
                yield from self._receive(worker)
            yield from self._stop_overdue()

    def _run_in_thread(self, tasks: Iterable[tuple[int, str]]) -> Iterator[tuple[int, DecodeEvent]]:
        """Decode in a thread of this process, a few chunks ahead of the caller: the next frames (and
        the next file) decode while the caller detects and scores, as PyAV, LiteRT and ONNX Runtime
        all release the GIL in their native code."""
        events: queue.Queue = queue.Queue(maxsize=THREAD_QUEUE_CHUNKS)
        stop = threading.Event()

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    events.put(item, timeout=POLL_S)
                    return True
                except queue.Full:
                    continue
            return False

        def decode_all() -> None:
            for task_id, path in tasks:
                for event in decode_file(path, self.settings):
                    if not put((task_id, event)):
                        return
            put(None)

        thread = threading.Thread(target=decode_all, name="dfdetect-decode", daemon=True)
        thread.start()
        try:
            while (item := events.get()) is not None:
                yield item
        finally:  # the caller stopped early (or failed): the thread ends at its next chunk
            stop.set()
            thread.join(timeout=KILL_GRACE_S)  # a decoder stuck in native code cannot be stopped; daemon: left

    def _receive(self, worker: _Worker) -> Iterator[tuple[int, DecodeEvent]]:
        try:
            task_id, event = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.process.poll()
            yield from self._replace(worker, "internal", f"the decoding process died (exit code {code})")
            return
        worker.last_heard = time.monotonic()
        if task_id == "ready":
            worker.ready = True
            return
        if isinstance(event, FileDecoded):
            worker.task = None
        yield task_id, event

    def _stop_overdue(self) -> Iterator[tuple[int, DecodeEvent]]:
        """Kill workers silent for longer than the time limit. A worker that keeps sending frames is
        alive (it enforces the limit on its own decoding time); one blocked sending is drained by
        this loop and so never falls silent; only a decoder stuck inside one call does."""
        limit = self.settings.timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.task is not None and now - worker.last_heard > limit + KILL_GRACE_S:
                yield from self._replace(worker, "timeout", f"decoding did not finish within {limit:g} s; "
                                         "the decoder was killed")

    def _replace(self, worker: _Worker, code: str, message: str) -> Iterator[tuple[int, DecodeEvent]]:
        """Kill a worker (hung or dead), report its file as failed and start a fresh worker."""
        task = worker.task
        worker.stop(kill=True)
        self._workers[self._workers.index(worker)] = _Worker(self.settings)
        self.restarts += 1
        if task is not None:
            yield task[0], FileDecoded("", 0, 0.0, code, message)


def worker_count(requested: int | None) -> int:
    """Default decode workers: none up to IN_PROCESS_MAX_CORES cores (decoding runs in a thread of the
    scanner), else one core left for detection and inference in the scanner process, at most 8 (more
    rarely helps one inference session)."""
    if requested is not None:
        return requested
    cores = available_cores()
    return 0 if cores <= IN_PROCESS_MAX_CORES else min(8, cores - 1)
