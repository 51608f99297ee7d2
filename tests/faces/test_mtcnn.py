import cv2
import numpy as np
import pytest
import torch

from dfdetect.faces import box_iou, create_detector, crop_face
from dfdetect.faces.mtcnn import nms_min, pyramid_scales, regress, square
from dfdetect.media import read_image
from dfdetect.sample_data import london_images, london_landmarks


@pytest.fixture(scope="module")
def detector():
    return create_detector("mtcnn", device="cpu")


def test_pyramid_covers_faces_from_the_minimum_size_to_the_whole_image():
    scales = pyramid_scales(256, 400, min_face=20)
    assert scales[0] == pytest.approx(12 / 20)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 256 * scales[-1] >= 12 > 256 * scales[-1] * 0.709  # the last level still holds one 12 px window


def test_box_helpers():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    assert square(boxes).tolist() == [[0.0, 20.0, 40.0, 60.0]]
    assert regress(boxes, torch.tensor([[0.1, -0.1, 0.5, 0.0]]))[0].tolist() == pytest.approx([12.0, 16.0, 40.0, 60.0])
    nested = torch.tensor([[0.0, 0.0, 100.0, 100.0], [10.0, 10.0, 30.0, 30.0], [200.0, 0.0, 250.0, 50.0]])
    # IoU of the nested pair is 0.04, but against the smaller box the overlap is total
    assert sorted(nms_min(nested, torch.tensor([0.9, 0.8, 0.7]), 0.7).tolist()) == [0, 2]


def test_finds_the_face_in_the_bundled_london_images_where_blazeface_does(detector):
    # every third image keeps the test short; benchmarks/detector_recall.py runs all 204
    paths = (london_images("neutral") + london_images("smiling"))[::3]
    blazeface = create_detector("blazeface")
    landmarks = london_landmarks()
    found, agree = 0, 0
    for start in range(0, len(paths), 16):
        images = [read_image(p) for p in paths[start : start + 16]]
        for path, faces, reference in zip(paths[start:], detector.detect(images), blazeface.detect(images)):
            if not faces:
                continue
            found += 1
            face = faces[0]
            agree += box_iou(np.array([face.box]), np.array([reference[0].box]))[0, 0] > 0.5
            assert face.landmarks.shape == (5, 2) and 0.9 < face.score <= 1.0
            x0, y0, x1, y1 = face.box
            eyes, nose, mouth = face.landmarks[:2], face.landmarks[2], face.landmarks[3:]
            assert eyes[0, 0] < nose[0] < eyes[1, 0]  # image-left eye first, as BlazeFace orders them
            assert y0 < eyes[:, 1].max() < nose[1] < mouth[:, 1].min() < y1
            if path.parent.name == "neutral":
                centre = landmarks[path.name[:3]].mean(0)
                assert x0 < centre[0] < x1 and y0 < centre[1] < y1, path.name
    assert found >= len(paths) - 1  # ≥ 98.5 % of 68
    assert agree >= found - 2


def test_batched_detection_equals_one_by_one(detector):
    images = [read_image(p) for p in london_images()[:3]]
    images.append(np.ascontiguousarray(images[0][:200, 20:]))  # another size in the same batch
    images.append(np.full((120, 160, 3), 127, np.uint8))  # and an image without a face
    together = detector.detect(images)
    alone = [detector.detect([im])[0] for im in images]
    assert [len(f) for f in together] == [len(f) for f in alone] == [1, 1, 1, 1, 0]
    for a, b in zip(together, alone):
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.box, fb.box, atol=1e-2)
            np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=1e-2)
            assert fa.score == pytest.approx(fb.score, abs=1e-4)


def test_landmarks_drive_alignment(detector):
    image = read_image(london_images()[5])
    matrix = cv2.getRotationMatrix2D((128, 128), 15, 1.0)
    tilted = cv2.warpAffine(image, matrix, (256, 256), borderMode=cv2.BORDER_REPLICATE)
    face = detector.detect([tilted])[0][0]
    eyes = face.landmarks[:2]
    assert abs(np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))) > 8  # the detector sees the tilt
    _, points = crop_face(tilted, face, size=128, margin=1.3, align=True)
    assert abs(points[0, 1] - points[1, 1]) < 1e-6
