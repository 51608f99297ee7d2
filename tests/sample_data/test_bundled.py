from collections import Counter

from dfdetect.sample_data import FACE_SETS, SAMPLE_DIR, bundled_faces


def test_every_bundled_set_is_complete_and_carries_its_attribution():
    faces = bundled_faces()
    assert Counter(f.dataset for f in faces) == {"london": 204, "canada": 40, "variation": 8, "orl": 400}
    assert len({f.identity for f in faces}) == 102 + 40 + 1 + 40
    assert all(f.path.exists() for f in faces)
    for folder in ("london_faces", "canada_faces", "variation_faces", "orl_faces"):
        text = (SAMPLE_DIR / folder / "ATTRIBUTION.md").read_text()
        assert "Licence" in text or "Terms" in text
    assert len(FACE_SETS) == 4
