"""Face detection (a registry of detectors by name) and face cropping."""

from dfdetect.faces import blazeface, mtcnn  # noqa: F401  (registers the detectors)
from dfdetect.faces.base import DETECTORS, Face, FaceDetector, box_iou, create_detector, register_detector
from dfdetect.faces.crop import crop_face, crop_transform

DEFAULT_DETECTOR = "blazeface"

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Face", "FaceDetector", "box_iou", "create_detector",
           "crop_face", "crop_transform", "register_detector"]
