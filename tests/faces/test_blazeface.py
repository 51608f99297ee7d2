import cv2
import numpy as np
import pytest

from dfdetect.faces import Face, create_detector, crop_face
from dfdetect.faces.blazeface import VARIANTS, BlazeFaceDetector, _tile_grid, make_anchors
from dfdetect.faces.tracking import IouTracker
from dfdetect.media import read_image
from dfdetect.sample_data import london_images, london_landmarks


@pytest.fixture(scope="module")
def detector():
    return create_detector("blazeface")


def test_anchor_counts_match_model_outputs():
    assert sum(len(a) for a in make_anchors(VARIANTS["short"])) == 896
    assert sum(len(a) for a in make_anchors(VARIANTS["full"])) == 2304


def test_finds_the_face_in_every_bundled_london_image(detector):
    paths = london_images("neutral") + london_images("smiling")
    assert len(paths) == 204
    landmarks = london_landmarks()
    missed = []
    for path in paths:
        faces = detector.detect([read_image(path)])[0]
        if not faces:
            missed.append(path.name)
            continue
        if path.parent.name == "neutral":  # the box must hold the annotated eyes and nose
            x0, y0, x1, y1 = faces[0].box
            points = landmarks[path.name[:3]]
            centre = points.mean(0)
            assert x0 < centre[0] < x1 and y0 < centre[1] < y1, path.name
    assert missed == []


def test_small_face_in_a_1080p_frame_is_found_by_tiling(detector):
    rng = np.random.default_rng(0)
    no_tiling = BlazeFaceDetector("full", tiling="never")
    found = found_without_tiling = 0
    for path in london_images()[:10]:
        face = cv2.resize(read_image(path), (200, 200))  # the face itself is ~10 % of the frame width
        frame = rng.integers(60, 140, (1080, 1920, 3), dtype=np.uint8)
        x, y = int(rng.integers(0, 1700)), int(rng.integers(0, 860))
        frame[y : y + 200, x : x + 200] = face
        faces = detector.detect([frame])[0]
        if faces and faces[0].box[0] >= x - 20 and faces[0].box[2] <= x + 220:
            found += 1
        found_without_tiling += bool(no_tiling.detect([frame])[0])
    assert found == 10
    assert found_without_tiling <= 5  # the whole-frame pass alone misses most: tiling is what finds them


def test_batched_detection_equals_one_by_one(detector):
    images = [read_image(p) for p in london_images()[:4]]
    together = detector.detect(images)
    alone = [detector.detect([im])[0] for im in images]
    for a, b in zip(together, alone):
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a[0].box, b[0].box, atol=1e-3)


def test_image_without_a_face_gives_no_detection(detector):
    flat = np.full((480, 640, 3), 127, np.uint8)
    assert detector.detect([flat]) == [[]]


def test_crop_is_square_centred_and_maps_landmarks():
    image = np.zeros((200, 300, 3), np.uint8)
    image[80:120, 130:170] = 255  # a 40×40 white "face"
    face = Face(box=(130, 80, 170, 120), score=1.0, landmarks=np.array([[140.0, 95.0], [160.0, 95.0]]))
    crop, points = crop_face(image, face, size=100, margin=2.0)
    assert crop.shape == (100, 100, 3)
    # margin 2 → the 40 px box fills the middle half of the crop
    assert crop[50, 50].min() == 255 and crop[10, 10].max() == 0
    np.testing.assert_allclose(points, [[37.5, 43.75], [62.5, 43.75]], atol=1e-6)


def test_crop_aligned_levels_the_eyes():
    image = np.zeros((200, 200, 3), np.uint8)
    face = Face(box=(60, 60, 140, 140), score=1.0, landmarks=np.array([[80.0, 90.0], [120.0, 110.0]]))
    _, points = crop_face(image, face, size=128, margin=1.3, align=True)
    assert abs(points[0, 1] - points[1, 1]) < 1e-6


def test_tracker_follows_faces_across_frames():
    tracker = IouTracker()
    a, b = Face((0, 0, 50, 50), 1.0), Face((100, 100, 160, 160), 1.0)
    assert tracker.assign([a, b]) == [0, 1]
    moved_b, moved_a = Face((104, 102, 164, 162), 1.0), Face((3, 2, 53, 52), 1.0)
    assert tracker.assign([moved_b, moved_a]) == [1, 0]
    assert tracker.assign([Face((300, 300, 340, 340), 1.0)]) == [2]


def test_close_up_low_resolution_faces_fall_back_to_the_short_range_model(detector):
    from dfdetect.sample_data import bundled_faces

    orl = [f.path for f in bundled_faces(("orl",))][::4]  # 100 of the 92×112 greyscale portraits
    found = sum(bool(detector.detect([read_image(p)])[0]) for p in orl)
    without_fallback = BlazeFaceDetector("full", tiling="never")
    found_by_full_range_alone = sum(bool(without_fallback._detect_whole([read_image(p)])[0]) for p in orl)
    assert found >= 90
    assert found_by_full_range_alone <= 10


class CountingDetector(BlazeFaceDetector):
    """Counts the images the model is run on, to see how much searching a detection cost."""

    images_run = 0

    def _run(self, batch):
        self.images_run += batch.shape[0]
        return super()._run(batch)


def test_a_hint_from_the_previous_frame_replaces_the_tiled_search():
    face = cv2.resize(read_image(london_images()[5]), (160, 160))  # too small for the whole-frame pass
    frame = np.random.default_rng(3).integers(60, 140, (1080, 1920, 3), dtype=np.uint8)
    frame[600:760, 1300:1460] = face
    blind, hinted = CountingDetector("full"), CountingDetector("full")
    found_blind = blind.detect([frame])[0]
    found_hinted = hinted.detect([frame], hints=[(1290.0, 590.0, 1440.0, 750.0)])[0]  # last frame's box, moved
    assert found_blind and found_hinted
    np.testing.assert_allclose(found_hinted[0].box, found_blind[0].box, atol=8)
    assert hinted.images_run == 2 and blind.images_run > 10  # whole frame + one window, vs whole frame + tiles


def test_in_a_batch_of_frames_each_face_found_is_the_hint_for_the_next_frame():
    """A face drifting across a batch of sampled frames: only the first frame is searched whole and in
    tiles; every later one in one window around the face found in the frame before it, not around a
    stale hint, and not whole first."""
    face = cv2.resize(read_image(london_images()[5]), (160, 160))
    background = np.random.default_rng(3).integers(60, 140, (1080, 1920, 3), dtype=np.uint8)
    frames = []
    for step in range(8):  # 60 px a frame (sampled every ~6th frame of a 10 px/frame drift): 420 px in all,
        frame = background.copy()  # far out of a window around the first frame's face by the end
        x = 300 + 60 * step
        frame[600:760, x : x + 160] = face
        frames.append(frame)
    chained, independent = CountingDetector("full"), CountingDetector("full")
    found = chained.detect(frames, hints=[None] * len(frames))
    independent.detect(frames)
    assert all(faces for faces in found)
    for step, faces in enumerate(found):
        assert abs((faces[0].box[0] + faces[0].box[2]) / 2 - (300 + 60 * step + 80)) < 20
    tiles = len(_tile_grid(frames[0].shape))
    assert chained.images_run == 1 + tiles + (len(frames) - 1)  # first frame whole + tiled, then one window each
    assert independent.images_run == len(frames) * (1 + tiles)
