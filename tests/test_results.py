"""The JSONL writer never leaves a torn record behind, and resume keys come back out."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dfdetect.errors import DfdetectError
from dfdetect.results import JsonlWriter, read_jsonl, recorded_keys


def test_records_round_trip_one_line_each(tmp_path):
    out = tmp_path / "sub" / "r.jsonl"
    records = [{"path": f"/d/{i}.jpg", "size": i, "mtime": 1.5 + i, "note": "é\nnew line"} for i in range(3)]
    with JsonlWriter(out, fsync_interval_s=0.0) as writer:
        for record in records:
            writer.write(record)
    assert writer.records_written == 3
    assert out.read_bytes().count(b"\n") == 3
    assert list(read_jsonl(out)) == records
    assert recorded_keys(out) == {(f"/d/{i}.jpg", i, 1.5 + i) for i in range(3)}
    assert recorded_keys(tmp_path / "absent.jsonl") == set()


def test_a_killed_writer_leaves_only_whole_lines(tmp_path):
    """A child process writes records in a loop and is killed mid-stream: every whole line parses, in
    order, and the next writer cuts a torn tail (SIGKILL can stop a 5 kB write between pages)."""
    out = tmp_path / "killed.jsonl"
    script = (f"from dfdetect.results import JsonlWriter\n"
              f"w = JsonlWriter({str(out)!r})\n"
              f"i = 0\n"
              f"while True:\n"
              f"    w.write({{'path': str(i), 'size': i, 'mtime': 0.0, 'pad': 'x' * 5000}}); i += 1\n")
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    try:
        while not out.exists() or out.stat().st_size < 200_000:
            assert child.poll() is None, "the writer process died on its own"
            assert time.monotonic() < deadline, "the writer process wrote too little"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    records = list(read_jsonl(out))
    assert len(records) >= 20
    assert [r["size"] for r in records] == list(range(len(records)))
    with JsonlWriter(out) as writer:
        writer.write({"path": "next", "size": len(records), "mtime": 0.0})
    assert out.read_bytes().endswith(b"\n")
    assert [r["size"] for r in read_jsonl(out)] == list(range(len(records) + 1))


def test_torn_tail_is_skipped_by_readers_and_cut_by_the_next_writer(tmp_path):
    out = tmp_path / "torn.jsonl"
    out.write_bytes(b'{"path": "a", "size": 1, "mtime": 2.0}\n{"path": "b", "si')
    assert [r["path"] for r in read_jsonl(out)] == ["a"]
    assert recorded_keys(out) == {("a", 1, 2.0)}
    with JsonlWriter(out) as writer:
        writer.write({"path": "c", "size": 3, "mtime": 4.0})
    assert out.read_text() == '{"path": "a", "size": 1, "mtime": 2.0}\n{"path": "c", "size": 3, "mtime": 4.0}\n'


def test_a_file_that_is_only_a_torn_line_is_emptied(tmp_path):
    out = tmp_path / "only.jsonl"
    out.write_bytes(b'{"path": "half')
    with JsonlWriter(out) as writer:
        writer.write({"path": "x"})
    assert list(read_jsonl(out)) == [{"path": "x"}]


def test_damage_in_the_middle_is_an_error(tmp_path):
    out = tmp_path / "bad.jsonl"
    out.write_text('{"path": "a"}\nnot json\n{"path": "b"}\n')
    with pytest.raises(DfdetectError) as caught:
        list(read_jsonl(out))
    assert caught.value.code == "bad_input" and "line 2" in caught.value.message


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    with JsonlWriter(tmp_path / "n.jsonl") as writer, pytest.raises(ValueError):
        writer.write({"probability": float("nan")})
    assert (tmp_path / "n.jsonl").read_bytes() == b""
