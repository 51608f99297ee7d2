"""A face stored sideways without an EXIF tag: BlazeFace still finds it, and its crop was
scored sideways (a real face read as fake, 0.954). The landmarks say which way is up, the frame is
detected again stood up, and the face is scored as the upright picture is (the same box, the same
score) with the turn recorded (`rotation` in top_faces / frame_scores)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dfdetect.faces import create_detector
from dfdetect.faces.rotation import upright_turns
from dfdetect.results import read_jsonl
from dfdetect.scan.pipeline import scan_paths
from tests.scan.corpus import london_face


@pytest.mark.parametrize("stored_turns", [-1, 1])  # clockwise, counter-clockwise
def test_a_face_stored_turned_is_scored_upright_with_the_turn_recorded(model_path, tmp_path, stored_turns):
    face = london_face(4)
    Image.fromarray(face).save(tmp_path / "upright.png")
    Image.fromarray(np.ascontiguousarray(np.rot90(face, stored_turns))).save(tmp_path / "turned.png")
    sideways = create_detector("blazeface").detect([np.ascontiguousarray(np.rot90(face, stored_turns))])[0]
    assert upright_turns(sideways[0]) == -stored_turns % 4  # found sideways: the landmarks say which way is up
    out = tmp_path / "r.jsonl"
    scan_paths([tmp_path / "upright.png", tmp_path / "turned.png"], model_path, out, device="cpu", workers=0,
               details=True, progress=False)
    records = {r["path"].rsplit("/", 1)[1]: r for r in read_jsonl(out)}
    upright, turned = records["upright.png"], records["turned.png"]
    assert upright["top_faces"][0]["rotation"] == 0
    assert turned["status"] == "ok" and turned["top_faces"][0]["rotation"] == (-90 * stored_turns) % 360
    assert turned["top_faces"][0]["box"] == pytest.approx(upright["top_faces"][0]["box"], abs=2.0)
    assert turned["probability"] == pytest.approx(upright["probability"], abs=0.02)
