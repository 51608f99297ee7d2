"""Provenance evidence: C2PA manifests signed here with a certificate made here, tampered and broken
copies of them, and dwtDct watermarks embedded by invisible-watermark (a kept file) and by the test."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import pywt

from dfdetect.media.io import read_image
from dfdetect.media.provenance import (
    KNOWN_MARKS,
    SCALE,
    decode_dwtdct,
    evidence_summary,
    provenance_evidence,
    read_c2pa,
    read_watermark,
)
from dfdetect.sample_data import london_images
from tests.media.c2pa_signing import sign_jpeg

DATA = Path(__file__).parent / "data"


def test_decodes_the_mark_invisible_watermark_embedded():
    image = read_image(DATA / "dwtdct_sdxl_mark.png")
    sdxl = next(mark for mark in KNOWN_MARKS if mark.name == "stable-diffusion-xl")
    bits = decode_dwtdct(np.ascontiguousarray(image[..., ::-1]), len(sdxl.bits))
    assert int((bits == np.asarray(sdxl.bits)).sum()) == 41  # what invisible-watermark 0.2.0 decodes too
    found = read_watermark(image)
    assert (found["status"], found["mark"]) == ("found", "stable-diffusion-xl")
    assert found["chance"] < 1e-6


def embed_dwtdct(rgb: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    """The dwtDct embedding written from its description: in each 4×4 block of the U channel's Haar
    approximation, the largest non-DC coefficient is moved to a quarter (bit 0) or three quarters (bit 1)
    of its quantisation step; block k carries bit k mod len(bits)."""
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2YUV)
    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    approximation, (horizontal, vertical, diagonal) = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    index = 0
    for top in range(0, approximation.shape[0] // 4 * 4, 4):
        for left in range(0, approximation.shape[1] // 4 * 4, 4):
            block = approximation[top:top + 4, left:left + 4]
            flat = int(np.argmax(np.abs(block.ravel()[1:]))) + 1
            value = block.flat[flat]
            level = abs(value) // SCALE + 0.25 + 0.5 * bits[index % len(bits)]
            block.flat[flat] = np.sign(value or 1.0) * level * SCALE
            index += 1
    yuv[:rows, :cols, 1] = np.clip(pywt.idwt2((approximation, (horizontal, vertical, diagonal)), "haar"), 0, 255)
    return np.ascontiguousarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)[..., ::-1])


def test_a_mark_embedded_in_a_face_is_found_and_a_plain_face_is_not():
    # at 512 px each of the 32 bits is spread over 128 blocks; at 256 px over 16, and the mark (ours and
    # invisible-watermark's alike) then loses 5 of 32 bits on this face
    face = cv2.resize(read_image(london_images()[3]), (512, 512), interpolation=cv2.INTER_CUBIC)
    sdv2 = next(mark for mark in KNOWN_MARKS if mark.name == "stable-diffusion-v2")
    marked = read_watermark(embed_dwtdct(face, sdv2.bits))
    assert (marked["status"], marked["mark"]) == ("found", "stable-diffusion-v2")
    assert marked["bit_agreement"]["stable-diffusion-v2"] >= 0.9
    plain = read_watermark(face)
    assert plain["status"] == "absent" and plain["mark"] is None
    assert max(plain["bit_agreement"].values()) < 0.8
    assert read_watermark(face[:200, :200])["status"] == "not_checked"


@pytest.fixture(scope="module")
def signed_jpeg(tmp_path_factory) -> Path:
    """A London face as JPEG with a C2PA manifest declaring it made by a trained model."""
    return sign_jpeg(london_images()[5], tmp_path_factory.mktemp("c2pa") / "signed.jpg")


def test_signed_manifest_gives_signer_generator_and_ai_declaration(signed_jpeg):
    evidence = read_c2pa(signed_jpeg)
    assert evidence["status"] == "valid"
    assert evidence["trusted"] is False  # our test CA is on no trust list
    assert evidence["problems"] == ["signingCredential.untrusted"]
    assert (evidence["signer"], evidence["issuer"]) == ("dfdetect test signer", "dfdetect tests")
    assert evidence["claim_generator"] == "dfdetect-test-generator 2.1"
    assert evidence["ai_generated"] is True and evidence["digital_source_types"] == ["trainedAlgorithmicMedia"]


def test_pixels_changed_after_signing_make_the_manifest_invalid(signed_jpeg, tmp_path):
    data = bytearray(signed_jpeg.read_bytes())
    data[-200] ^= 0xFF  # inside the image data, after the manifest
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(bytes(data))
    evidence = read_c2pa(tampered)
    assert evidence["status"] == "invalid"
    assert "assertion.dataHash.mismatch" in evidence["problems"]
    assert evidence["ai_generated"] is True  # the claim is still shown, as a claim that failed to verify


def test_a_broken_manifest_is_invalid_not_a_crash(signed_jpeg, tmp_path):
    data = bytearray(signed_jpeg.read_bytes())
    start = data.find(b"jumb")
    data[start + 100:start + 140] = bytes(40)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(bytes(data))
    evidence = read_c2pa(broken)
    assert evidence["status"] == "invalid" and evidence["problems"]


def test_files_without_a_manifest(tmp_path):
    assert read_c2pa(london_images()[0]) == {"status": "absent"}
    pgm = tmp_path / "face.pgm"
    cv2.imwrite(str(pgm), np.zeros((8, 8), np.uint8))
    assert read_c2pa(pgm)["status"] == "unsupported"


def test_scan_evidence_keeps_both_fields(signed_jpeg, tmp_path):
    evidence = provenance_evidence(signed_jpeg, "image")
    assert evidence["c2pa"]["ai_generated"] is True and evidence["watermark"]["status"] == "absent"
    video = provenance_evidence(signed_jpeg, "video")
    assert video["watermark"]["status"] == "not_checked"
    json.dumps(evidence)  # the record is written as JSON


def test_one_line_summary_for_reports(signed_jpeg, tmp_path):
    evidence = provenance_evidence(signed_jpeg, "image")
    assert evidence_summary(evidence) == ('C2PA valid, untrusted signer "dfdetect test signer", '
                                          "declares AI generation · no watermark")
    marked = provenance_evidence(DATA / "dwtdct_sdxl_mark.png", "image")
    assert evidence_summary(marked) == "no C2PA · watermark: stable-diffusion-xl"
    assert evidence_summary(None) == ""
