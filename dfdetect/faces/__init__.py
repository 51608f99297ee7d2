"""Face detection (a registry of detectors by name) and face cropping."""

from dfdetect.faces import blazeface  # noqa: F401  (registers the BlazeFace detectors)
from dfdetect.faces.base import DETECTORS, Face, FaceDetector, box_iou, create_detector, register_detector
from dfdetect.faces.crop import crop_face, crop_transform

DEFAULT_DETECTOR = "blazeface"


@register_detector("mtcnn")
def mtcnn(**kwargs) -> FaceDetector:
    """MTCNN is imported on first use: it needs torch, which a BlazeFace scan never has to load."""
    from dfdetect.faces.mtcnn import MtcnnDetector

    return MtcnnDetector(**kwargs)


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Face", "FaceDetector", "box_iou", "create_detector",
           "crop_face", "crop_transform", "register_detector"]
